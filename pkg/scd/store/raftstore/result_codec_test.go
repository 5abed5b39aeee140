package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/scd"
)

// allResults returns one zero value of every result type an SCD operation
// returns (the list at the end of pkg/scd/operations.go).
func allResults() []any {
	return []any{
		scd.OperationalIntentResult{}, scd.ConstraintResult{}, scd.PutSubscriptionResult{},
		scd.SubscriptionView{}, scd.AvailabilityView{}, scd.OperationalIntentView{},
		[]scd.OperationalIntentView{}, &models.Constraint{}, []*models.Constraint{}, []scd.SubscriptionView{},
		scd.EvictionResult{}, scd.EvictionCounts{}, []*models.DSSInstance{},
	}
}

// filled returns a value of proto's type with every field set (fill).
func filled(rng *rand.Rand, proto any) any {
	v := reflect.New(reflect.TypeOf(proto)).Elem()
	fill(rng, v)
	return v.Interface()
}

// roundTrip encodes (res, opErr), decodes it, checks that re-encoding the
// decoded outcome gives the same bytes and that every strict prefix is
// refused, and returns the decoded outcome.
func roundTrip(t *testing.T, res any, opErr error) (any, error) {
	t.Helper()
	b, err := encodeResult(res, opErr)
	if err != nil {
		t.Fatalf("encoding %T, %v: %v", res, opErr, err)
	}
	got, gotErr, err := decodeResult(b)
	if err != nil {
		t.Fatalf("decoding the encoding of %T, %v: %v", res, opErr, err)
	}
	again, err := encodeResult(got, gotErr)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding %T, %v: %x, %v; first encoding %x", got, gotErr, again, err, b)
	}
	for n := range len(b) {
		if _, _, err := decodeResult(b[:n]); err == nil {
			t.Fatalf("%T: prefix of %d/%d bytes decoded", res, n, len(b))
		}
	}
	return got, gotErr
}

func TestResultCodecCoversEveryResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	kinds := map[byte]bool{}
	for _, proto := range allResults() {
		for range 50 {
			in := filled(rng, proto)
			out, outErr := roundTrip(t, in, nil)
			if outErr != nil {
				t.Fatalf("%T: decoded error %v, want none", in, outErr)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("%T round trip lost data:\n in  %+v\n out %+v", in, in, out)
			}
		}
		b, err := encodeResult(proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		kinds[b[2]] = true // version, no error, kind
		// The zero value (nil pointer, nil slice, empty struct) keeps its type.
		zero := reflect.Zero(reflect.TypeOf(proto)).Interface()
		if out, _ := roundTrip(t, zero, nil); !reflect.DeepEqual(out, zero) {
			t.Fatalf("zero %T decoded as %#v", zero, out)
		}
	}
	// A new result kind added without a test, or a test without a kind,
	// fails here.
	if len(kinds) != int(resultKinds)-1 || kinds[byte(resultNil)] {
		t.Fatalf("allResults covers kinds %v, want 1..%d", kinds, resultKinds-1)
	}
	if out, outErr := roundTrip(t, nil, nil); out != nil || outErr != nil {
		t.Fatalf("nil outcome decoded as %v, %v", out, outErr)
	}
}

// codedError returns an error of code with every field set.
func codedError(rng *rand.Rand, code models.Code) *models.Error {
	e := &models.Error{Code: code, Message: fmt.Sprintf("message of %s", code),
		Availabilities: map[string]models.Availability{
			"uss-b": models.AvailabilityDown, "uss-a": models.AvailabilityNormal, "uss-c": "",
		},
		Cause: fmt.Errorf("cause: %w", errors.New("inner")),
	}
	e.MissingOIRs = []*models.OperationalIntent{filled(rng, &models.OperationalIntent{}).(*models.OperationalIntent), nil}
	e.MissingCRs = []*models.Constraint{filled(rng, &models.Constraint{}).(*models.Constraint), nil}
	return e
}

func TestResultCodecErrors(t *testing.T) {
	// A code added to pkg/models after maxCode must be taught to the codec
	// (and to this test) first.
	if s := (maxCode + 1).String(); !strings.HasPrefix(s, "Code(") {
		t.Fatalf("models.Code %d is %q, newer than the codec's maxCode %s", maxCode+1, s, maxCode)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for code := models.Code(0); code <= maxCode; code++ {
		in := codedError(rng, code)
		res := filled(rng, scd.ConstraintResult{})
		gotRes, gotErr := roundTrip(t, res, in)
		if !reflect.DeepEqual(gotRes, res) {
			t.Fatalf("%s: result %+v, want %+v", code, gotRes, res)
		}
		var me *models.Error
		if !errors.As(gotErr, &me) {
			t.Fatalf("%s: decoded %T, want *models.Error", code, gotErr)
		}
		if models.CodeOf(gotErr) != code || gotErr.Error() != in.Error() ||
			!reflect.DeepEqual(me.MissingOIRs, in.MissingOIRs) || !reflect.DeepEqual(me.MissingCRs, in.MissingCRs) ||
			!reflect.DeepEqual(me.Availabilities, in.Availabilities) || me.Message != in.Message {
			t.Fatalf("%s: decoded %+v, want %+v", code, me, in)
		}
		if me.Cause == nil || me.Cause.Error() != in.Cause.Error() {
			t.Fatalf("%s: cause %v, want %v", code, me.Cause, in.Cause)
		}
		// Minimal: no lists, no cause.
		bare := &models.Error{Code: code, Message: "m"}
		if _, e := roundTrip(t, nil, bare); !reflect.DeepEqual(e, error(bare)) {
			t.Fatalf("%s: bare error decoded as %#v", code, e)
		}
		// Wrapped: the text and the coded error survive.
		wrapped := fmt.Errorf("context: %w", in)
		_, e := roundTrip(t, nil, wrapped)
		if !errors.As(e, &me) || models.CodeOf(e) != code || e.Error() != wrapped.Error() || me.Message != in.Message {
			t.Fatalf("%s wrapped: decoded %v, want %v", code, e, wrapped)
		}
	}

	bad := fmt.Errorf("%w: entry 7: %v", generic.ErrBadOperation, "codec PutConstraint: truncated")
	if _, e := roundTrip(t, nil, bad); !errors.Is(e, generic.ErrBadOperation) || e.Error() != bad.Error() ||
		models.CodeOf(e) != models.CodeInternal {
		t.Fatalf("bad operation decoded as %v", e)
	}
	other := errors.New("something else")
	if _, e := roundTrip(t, nil, other); e == nil || e.Error() != other.Error() ||
		errors.Is(e, generic.ErrBadOperation) || models.CodeOf(e) != models.CodeInternal {
		t.Fatalf("other error decoded as %v", e)
	}
}

func TestResultCodecRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  any
		err  error
	}{
		{"unknown result type", struct{ X int }{1}, nil},
		{"unknown result pointer", &scd.AvailabilityView{}, nil},
		{"nil coded error", nil, (*models.Error)(nil)},
		{"wrapped nil coded error", nil, fmt.Errorf("x: %w", (*models.Error)(nil))},
		{"oversized", scd.AvailabilityView{USS: strings.Repeat("u", maxResultBytes)}, nil},
	} {
		if b, err := encodeResult(tc.res, tc.err); err == nil {
			t.Errorf("%s: encoded as %d bytes", tc.name, len(b))
		}
	}

	good, err := encodeResult(scd.AvailabilityView{USS: "u", Availability: "Normal", Version: "v"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	coded := func(code uint64, rest ...byte) []byte {
		b := binary.AppendUvarint([]byte{resultVersion, errCoded}, code)
		return append(b, rest...)
	}
	// Availabilities "b" then "a": out of order.
	unsorted := coded(1, 0, 0, 0, 2, 1, 'b', 0, 1, 'a', 0, 0, byte(resultNil))
	sorted := coded(1, 0, 0, 0, 2, 1, 'a', 0, 1, 'b', 0, 0, byte(resultNil))
	if _, e, err := decodeResult(sorted); err != nil || models.CodeOf(e) != models.CodeBadRequest {
		t.Fatalf("sorted availabilities: %v, %v", e, err)
	}
	bigIndex := binary.AppendVarint([]byte{resultVersion, errNone, byte(resultConstraint), 0, 1, 0, 1, 0}, 1<<31)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version 2", append([]byte{2}, good[1:]...), "unknown outcome version 2"},
		{"trailing byte", append(bytes.Clone(good), 0), "trailing"},
		{"unknown result kind", []byte{resultVersion, errNone, byte(resultKinds)}, "unknown result kind"},
		{"unknown error kind", []byte{resultVersion, 9, byte(resultNil)}, "unknown error kind 9"},
		{"unknown code", coded(uint64(maxCode)+1, 0, 0, 0, 0, 0, byte(resultNil)), "unknown error code"},
		{"unsorted availabilities", unsorted, "strictly increasing"},
		{"int32 overflow", bigIndex, "out of int32 range"},
		{"non-minimal varint", []byte{resultVersion, errCoded, 0x81, 0x00}, "non-minimal"},
		{"huge count", binary.AppendUvarint([]byte{resultVersion, errNone, byte(resultConstraints)}, 1<<40), "exceeds"},
		{"boolean 2", []byte{resultVersion, errNone, byte(resultConstraintPtr), 2}, "boolean byte 2"},
		{"oversized", make([]byte, maxResultBytes+1), "exceeds"},
	} {
		_, _, err := decodeResult(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// FuzzResultCodec: outcomes round-trip (seeds), arbitrary bytes never panic
// the decoder, and whatever decodes re-encodes to exactly the same bytes.
func FuzzResultCodec(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, proto := range allResults() {
		b, err := encodeResult(filled(rng, proto), nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for code := models.Code(0); code <= maxCode; code++ {
		for _, e := range []error{codedError(rng, code), fmt.Errorf("w: %w", codedError(rng, code))} {
			b, err := encodeResult(nil, e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, e := range []error{fmt.Errorf("%w: x", generic.ErrBadOperation), errors.New("other")} {
		b, err := encodeResult(nil, e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, resErr, err := decodeResult(b)
		if err != nil {
			return
		}
		again, err := encodeResult(res, resErr)
		if err != nil {
			t.Fatalf("decoded %T, %v does not encode: %v", res, resErr, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%T, %v: re-encoding %x gave %x", res, resErr, b, again)
		}
	})
}
