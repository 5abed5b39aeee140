package raftstore

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/pool"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/store"
)

// allOps returns one zero value of every SCD operation type.
func allOps() []scd.Operation {
	return []scd.Operation{
		&scd.QueryOperationalIntents{}, &scd.GetOperationalIntent{}, &scd.PutOperationalIntent{},
		&scd.DeleteOperationalIntent{}, &scd.QueryConstraints{}, &scd.GetConstraint{}, &scd.PutConstraint{},
		&scd.DeleteConstraint{}, &scd.QuerySubscriptions{}, &scd.GetSubscription{}, &scd.PutSubscription{},
		&scd.DeleteSubscription{}, &scd.GetUssAvailability{}, &scd.PutUssAvailability{},
		// The quota variants of the PUTs (fill sets the quota, so the PUTs
		// above are filled as quota variants too; TestCodecWithoutQuota
		// covers the zero quota).
		&scd.PutOperationalIntent{MaxEntitiesPerCell: 1}, &scd.PutConstraint{MaxEntitiesPerCell: 1},
		&scd.PutSubscription{MaxSubscriptionsPerCell: 1},
		&scd.EvictExpired{}, &scd.PreviewEviction{},
		// The pool's operations (codec_pool.go).
		&pool.PutHeartbeat{}, &pool.ListDSSInstances{},
	}
}

func TestRegistryHoldsEveryOperation(t *testing.T) {
	reg := NewRegistry()
	ops := allOps()
	if got := len(reg.Types()); got != len(ops) {
		t.Fatalf("registry has %d types, want %d", got, len(ops))
	}
	types := map[store.OpType]bool{}
	for _, op := range ops {
		if _, err := reg.Encode(op); err != nil {
			t.Errorf("%T: %v", op, err)
		}
		types[op.Type()] = true
	}
	if len(types) != len(ops) {
		t.Errorf("allOps covers %d distinct types, want %d", len(types), len(ops))
	}
	// The last declared OpType must be covered: a new operation added to
	// pkg/scd without a codec fails here.
	if _, err := reg.Decode(scd.OpPreviewEviction+1, nil); err == nil {
		t.Errorf("OpType %d after the last known one decodes; is it a new operation without a test?", scd.OpPreviewEviction+1)
	}
}

// fill sets every field reachable from v to a random non-zero value, so a
// field the codec forgets is lost in a round trip.
func fill(rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(rng, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(rng.Int64N(1<<40)-(1<<39), rng.Int64N(1e9)).UTC()))
			return
		}
		for i := range v.NumField() {
			fill(rng, v.Field(i))
		}
	case reflect.Slice:
		n := 1 + rng.IntN(4)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fill(rng, v.Index(i))
		}
	case reflect.String:
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		v.SetString(string(b))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int64, reflect.Int32, reflect.Int:
		v.SetInt(rng.Int64() - rng.Int64())
	case reflect.Uint32:
		v.SetUint(1 + rng.Uint64N(1<<32-1))
	case reflect.Float32:
		v.SetFloat(float64(rng.Float32()*1e4 - 5e3))
	default:
		panic("fill: unhandled kind " + v.Kind().String() + " in " + v.Type().String())
	}
}

func TestCodecCoversEveryField(t *testing.T) {
	reg := NewRegistry()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, proto := range allOps() {
		for range 50 {
			op := reflect.New(reflect.TypeOf(proto).Elem())
			fill(rng, op.Elem())
			in := op.Interface().(scd.Operation)
			b, err := reg.Encode(in)
			if err != nil {
				t.Fatalf("%T: %v", in, err)
			}
			out, err := reg.Decode(in.Type(), b)
			if err != nil {
				t.Fatalf("%T: decoding its own encoding: %v", in, err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("%T round trip lost data:\n in  %+v\n out %+v", in, in, out)
			}
			b2, _ := reg.Encode(out)
			if !bytes.Equal(b, b2) {
				t.Fatalf("%T: re-encoding differs", in)
			}
			// Every strict prefix is truncated input and must be refused.
			for n := range len(b) {
				if _, err := reg.Decode(in.Type(), b[:n]); err == nil {
					t.Fatalf("%T: prefix of %d/%d bytes decoded", in, n, len(b))
				}
			}
		}
	}
}

func TestCodecKeepsTheInstantNotTheZone(t *testing.T) {
	reg := NewRegistry()
	zone := time.FixedZone("X", 3*3600)
	now := time.Date(2026, 3, 1, 15, 4, 5, 123456789, zone)
	b, err := reg.Encode(&scd.PutUssAvailability{Now: now, USS: "u"})
	if err != nil {
		t.Fatal(err)
	}
	op, err := reg.Decode(scd.OpPutUssAvailability, b)
	if err != nil {
		t.Fatal(err)
	}
	got := op.(*scd.PutUssAvailability).Now
	if !got.Equal(now) || got.Location() != time.UTC {
		t.Fatalf("decoded %v (%v), want %v in UTC", got, got.Location(), now)
	}
}

func TestCodecRejectsNonCanonicalInput(t *testing.T) {
	reg := NewRegistry()
	good, err := reg.Encode(&scd.DeleteSubscription{Caller: "a", ID: "b", Version: "c"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		typ  store.OpType
		b    []byte
		want string
	}{
		{"trailing byte", scd.OpDeleteSubscription, append(bytes.Clone(good), 0), "trailing"},
		{"non-minimal varint", scd.OpDeleteSubscription, append([]byte{0x81, 0x00}, good[1:]...), "non-minimal"},
		{"huge count", scd.OpDeleteSubscription, binary.AppendUvarint(nil, 1<<40), "exceeds"},
		{"boolean 2", scd.OpPutSubscription, append(make([]byte, 11), 2, 0), "boolean byte 2"},
		{"nanoseconds 1e9", scd.OpPutUssAvailability,
			append(append([]byte{0}, binary.AppendUvarint(nil, 1e9)...), 0, 0, 0), "out of range"},
	} {
		_, err := reg.Decode(tc.typ, tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// FuzzDecode: arbitrary entry bytes never panic the decoder, and whatever
// decodes re-encodes to exactly the same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	reg := NewRegistry()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, proto := range allOps() {
		op := reflect.New(reflect.TypeOf(proto).Elem())
		fill(rng, op.Elem())
		in := op.Interface().(scd.Operation)
		b, err := reg.Encode(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(in.Type()), b)
	}
	f.Fuzz(func(t *testing.T, typ uint16, b []byte) {
		op, err := reg.Decode(store.OpType(typ), b)
		if err != nil {
			return
		}
		again, err := reg.Encode(op)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", op, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%T: re-encoding %x gave %x", op, b, again)
		}
	})
}
