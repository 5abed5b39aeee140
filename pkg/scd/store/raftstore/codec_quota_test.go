package raftstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/store"
)

// Entries as the build before per-USS quotas wrote them (hex of the
// payload, type separately). They must keep decoding, as PUTs without a
// quota: that is how every replica applied them.
var preQuotaEntries = []struct {
	typ store.OpType
	hex string
}{
	{scd.OpPutSubscription, "0475737331cad6b9950d060173017602090e01cad6b9950d0601ea8eba950d0601412000000141a000000968747470733a2f2f750100"},
	{scd.OpPutOperationalIntent, "0475737331cad6b9950d06016f0008416363657074656402090e01cad6b9950d0601ea8eba950d0601412000000141a0000001016b0968747470733a2f2f7500010968747470733a2f2f6e00016e00"},
	{scd.OpPutConstraint, "0475737331cad6b9950d060163017802090e01cad6b9950d0601ea8eba950d0601412000000141a000000968747470733a2f2f75"},
}

// preQuotaOps are the operations preQuotaEntries encode.
func preQuotaOps() []scd.Operation {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	end := now.Add(time.Hour)
	lo, hi := float32(10), float32(20)
	vol := models.Volume4D{Cells: []models.CellID{-5, 7}, StartTime: &now, EndTime: &end, AltitudeLower: &lo, AltitudeUpper: &hi}
	return []scd.Operation{
		&scd.PutSubscription{Caller: "uss1", Now: now, ID: "s", Version: "v", Extents: vol, USSBaseURL: "https://u",
			NotifyForOperationalIntents: true},
		&scd.PutOperationalIntent{Caller: "uss1", Now: now, ID: "o", State: models.StateAccepted, Extents: vol,
			Key: []models.OVN{"k"}, USSBaseURL: "https://u", NewSubscription: &scd.NewSubscription{USSBaseURL: "https://n"},
			NewSubscriptionID: "n"},
		&scd.PutConstraint{Caller: "uss1", Now: now, ID: "c", OVN: "x", Extents: vol, USSBaseURL: "https://u"},
	}
}

func TestCodecReadsEntriesFromBeforeQuotas(t *testing.T) {
	reg := NewRegistry()
	want := preQuotaOps()
	for i, e := range preQuotaEntries {
		b, err := hex.DecodeString(e.hex)
		if err != nil {
			t.Fatal(err)
		}
		op, err := reg.Decode(e.typ, b)
		if err != nil {
			t.Fatalf("type %d: %v", e.typ, err)
		}
		if !reflect.DeepEqual(op, want[i]) {
			t.Fatalf("type %d decoded to\n %+v\nwant (no quota)\n %+v", e.typ, op, want[i])
		}
		// And a PUT without a quota is still written exactly so.
		again, err := reg.Encode(want[i])
		if err != nil || !bytes.Equal(again, b) || want[i].Type() != e.typ {
			t.Fatalf("type %d: encoding without a quota changed: %x (type %d), err %v", e.typ, again, want[i].Type(), err)
		}
	}
}

// TestCodecWithoutQuota: a PUT with quota 0 round-trips under its original
// type, and its quota variant is that encoding plus the quota.
func TestCodecWithoutQuota(t *testing.T) {
	reg := NewRegistry()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, proto := range []scd.Operation{&scd.PutOperationalIntent{}, &scd.PutConstraint{}, &scd.PutSubscription{}} {
		for range 20 {
			op := reflect.New(reflect.TypeOf(proto).Elem())
			fill(rng, op.Elem())
			with := op.Interface().(scd.Operation)
			quota := setQuota(with, 0)
			without := with
			b, err := reg.Encode(without)
			if err != nil {
				t.Fatal(err)
			}
			if without.Type() != proto.Type() {
				t.Fatalf("%T with quota 0 has type %d, want %d", without, without.Type(), proto.Type())
			}
			out, err := reg.Decode(without.Type(), b)
			if err != nil || !reflect.DeepEqual(out, without) {
				t.Fatalf("%T without quota: round trip gave %+v, %v", without, out, err)
			}
			setQuota(with, quota)
			bq, err := reg.Encode(with)
			if err != nil {
				t.Fatal(err)
			}
			if want := binary.AppendUvarint(bytes.Clone(b), uint64(quota)); !bytes.Equal(bq, want) {
				t.Fatalf("%T: quota variant %x, want the original encoding plus the quota %x", with, bq, want)
			}
		}
	}
}

// setQuota sets op's quota field to q and returns the previous value.
func setQuota(op scd.Operation, q uint32) uint32 {
	var p *uint32
	switch o := op.(type) {
	case *scd.PutOperationalIntent:
		p = &o.MaxEntitiesPerCell
	case *scd.PutConstraint:
		p = &o.MaxEntitiesPerCell
	case *scd.PutSubscription:
		p = &o.MaxSubscriptionsPerCell
	default:
		panic("setQuota: no quota in " + reflect.TypeOf(op).String())
	}
	old := *p
	*p = q
	return old
}

func TestCodecRefusesQuotaZeroOrTooLarge(t *testing.T) {
	reg := NewRegistry()
	base, err := reg.Encode(&scd.PutSubscription{Caller: "a", ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []uint64{0, 1 << 32} {
		b := binary.AppendUvarint(bytes.Clone(base), q)
		_, err := reg.Decode(scd.OpPutSubscriptionWithQuota, b)
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("quota %d: error %v, want out of range", q, err)
		}
	}
	// The original type does not take a quota: it is trailing bytes there.
	if _, err := reg.Decode(scd.OpPutSubscription, binary.AppendUvarint(bytes.Clone(base), 5)); err == nil {
		t.Error("a PutSubscription of the original type decoded with a quota appended")
	}
}
