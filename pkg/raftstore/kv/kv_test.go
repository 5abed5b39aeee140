package kv

import (
	"bytes"
	"errors"
	"testing"

	"github.com/raftdss/dss/pkg/raftstore"
)

func TestPutGetDelete(t *testing.T) {
	m := New()
	if _, err := m.Apply(1, EncodePut("a", []byte("1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(2, EncodePut("b", nil)); err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Get("a"); !ok || string(v) != "1" {
		t.Fatalf("Get(a) = %q, %v", v, ok)
	}
	if v, ok := m.Get("b"); !ok || len(v) != 0 {
		t.Fatalf("Get(b) = %q, %v", v, ok)
	}
	res, err := m.Apply(3, EncodeDelete("a"))
	if err != nil || res != true {
		t.Fatalf("delete existing: %v, %v", res, err)
	}
	res, err = m.Apply(4, EncodeDelete("a"))
	if err != nil || res != false {
		t.Fatalf("delete missing: %v, %v", res, err)
	}
	if _, ok := m.Get("a"); ok {
		t.Fatal("a still present")
	}
}

func TestSnapshotRestore(t *testing.T) {
	m := New()
	for _, k := range []string{"z", "a", "m"} {
		if _, err := m.Apply(1, EncodePut(k, []byte("v-"+k))); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := New()
	if err := m2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	snap2, _ := m2.Snapshot()
	if !bytes.Equal(snap, snap2) || m2.Len() != 3 {
		t.Fatal("snapshot round trip differs")
	}
	for i := 1; i < len(snap); i++ {
		if err := New().Restore(snap[:i]); err == nil {
			t.Fatalf("truncated snapshot (%d/%d bytes) restored", i, len(snap))
		}
	}
	if err := m2.Restore(nil); err != nil || m2.Len() != 0 {
		t.Fatalf("empty restore: %v, len %d", err, m2.Len())
	}
}

func TestUndecodableCommands(t *testing.T) {
	m := New()
	put := EncodePut("k", []byte("v"))
	for _, bad := range [][]byte{nil, {9}, {opPut}, put[:len(put)-1], append(append([]byte{}, put...), 0), append(EncodeDelete("k"), 1)} {
		if _, err := m.Apply(1, bad); !errors.Is(err, raftstore.ErrUndecodable) {
			t.Fatalf("Apply(%x) = %v, want ErrUndecodable", bad, err)
		}
	}
	if m.Len() != 0 {
		t.Fatal("an undecodable command changed the state")
	}
}

func TestResultCodec(t *testing.T) {
	m := New()
	for _, r := range []any{nil, true, false} {
		b, err := m.EncodeResult(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, resErr, err := m.DecodeResult(b)
		if err != nil || resErr != nil || got != r {
			t.Fatalf("round trip of %v: %v, %v, %v", r, got, resErr, err)
		}
	}
	if _, err := m.EncodeResult(42, nil); err == nil {
		t.Fatal("encoded an unexpected result type")
	}
}

func FuzzApply(f *testing.F) {
	f.Add(EncodePut("k", []byte("v")))
	f.Add(EncodeDelete("k"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := New()
		if _, err := m.Apply(1, b); err != nil && !errors.Is(err, raftstore.ErrUndecodable) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
