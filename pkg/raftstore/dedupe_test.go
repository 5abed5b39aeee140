package raftstore

import (
	"bytes"
	"errors"
	"testing"
)

func env(node, epoch, seq, minPending uint64) envelope {
	return envelope{id: proposalID{node, epoch, seq}, minPending: minPending, payload: []byte("p")}
}

func TestDedupeTable(t *testing.T) {
	type step struct {
		e    envelope
		want verdict
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first apply, then duplicate", []step{{env(1, 1, 1, 1), verdictApply}, {env(1, 1, 1, 1), verdictDuplicate}}},
		{"re-proposal with a higher watermark is still a duplicate", []step{
			{env(1, 1, 1, 1), verdictApply}, {env(1, 1, 2, 1), verdictApply}, {env(1, 1, 2, 2), verdictDuplicate}}},
		{"below the watermark is stale", []step{
			{env(1, 1, 1, 1), verdictApply}, {env(1, 1, 3, 3), verdictApply}, {env(1, 1, 1, 1), verdictStale}, {env(1, 1, 2, 2), verdictStale}}},
		{"an older epoch is stale once a newer one applied", []step{
			{env(1, 1, 5, 5), verdictApply}, {env(1, 2, 1, 1), verdictApply}, {env(1, 1, 6, 5), verdictStale}}},
		{"nodes are independent", []step{{env(1, 1, 1, 1), verdictApply}, {env(2, 1, 1, 1), verdictApply}, {env(2, 1, 1, 1), verdictDuplicate}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newDedupeTable()
			for i, s := range tc.steps {
				v, o := tb.admit(s.e)
				if v != s.want {
					t.Fatalf("step %d (%v): verdict %d, want %d", i, s.e.id, v, s.want)
				}
				if v == verdictApply {
					tb.record(s.e.id, outcome{result: int(s.e.id.seq)})
				}
				if v == verdictDuplicate && o.result != int(s.e.id.seq) {
					t.Fatalf("step %d: duplicate outcome %v, want the first apply's", i, o.result)
				}
			}
		})
	}
}

func TestDedupeTableSnapshotRoundTrip(t *testing.T) {
	tb := newDedupeTable()
	for _, e := range []envelope{env(1, 3, 7, 7), env(1, 3, 8, 7), env(2, 1, 1, 1)} {
		tb.admit(e)
		tb.record(e.id, outcome{result: int(e.id.seq)})
	}
	codec := &recorder{}
	b := tb.encode(codec)
	got, err := decodeDedupeTable(b, codec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.encode(codec), b) {
		t.Fatal("round trip changed the table")
	}
	if v, o := got.admit(env(1, 3, 8, 7)); v != verdictDuplicate || o.result != 8 {
		t.Fatalf("restored table: verdict %d outcome %v", v, o)
	}
	// Without a codec the outcome is kept as lost, and a waiter is told so.
	lost, err := decodeDedupeTable(tb.encode(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, o := lost.admit(env(1, 3, 8, 7))
	if _, err := o.unwrap(); !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("lost outcome: %v", err)
	}
	for i := range b {
		if _, err := decodeDedupeTable(b[:i], codec); err == nil {
			t.Fatalf("truncated table of %d/%d bytes decoded", i, len(b))
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(env(1, 2, 3, 1).encode())
	f.Add([]byte{})
	f.Add([]byte{1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := decodeEnvelope(e.encode())
		if err != nil || again.id != e.id || again.minPending != e.minPending || !bytes.Equal(again.payload, e.payload) {
			t.Fatalf("re-decode of %x: %+v, %v", b, again, err)
		}
	})
}

func FuzzDecodeDedupeTable(f *testing.F) {
	tb := newDedupeTable()
	tb.admit(env(1, 1, 1, 1))
	tb.record(proposalID{1, 1, 1}, outcome{result: 1})
	f.Add(tb.encode(&recorder{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeDedupeTable(b, &recorder{}) // must not panic
	})
}
