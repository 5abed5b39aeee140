package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
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
	b := tb.encode(codec, maxSnapshotResultBytes)
	got, undecodable, err := decodeDedupeTable(b, codec)
	if err != nil || undecodable != 0 {
		t.Fatal(undecodable, err)
	}
	if !bytes.Equal(got.encode(codec, maxSnapshotResultBytes), b) {
		t.Fatal("round trip changed the table")
	}
	if v, o := got.admit(env(1, 3, 8, 7)); v != verdictDuplicate || o.result != 8 {
		t.Fatalf("restored table: verdict %d outcome %v", v, o)
	}
	// Without a codec the outcome is kept as lost, and a waiter is told so.
	lost, _, err := decodeDedupeTable(tb.encode(nil, maxSnapshotResultBytes), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, o := lost.admit(env(1, 3, 8, 7))
	if _, err := o.unwrap(); !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("lost outcome: %v", err)
	}
	for i := range b {
		if _, _, err := decodeDedupeTable(b[:i], codec); err == nil {
			t.Fatalf("truncated table of %d/%d bytes decoded", i, len(b))
		}
	}
}

// A table written without a codec (by a state machine without ResultCodec,
// or by a build before it had one) loads in a build with a codec: its
// outcomes are lost, not misread, and a waiter gets ErrIndeterminate.
func TestDedupeTableWithoutResultsLoadsWithACodec(t *testing.T) {
	tb := newDedupeTable()
	e := env(1, 3, 7, 7)
	tb.admit(e)
	tb.record(e.id, outcome{result: 7})
	// The bytes of that table, as a build without a codec writes them:
	// 1 session: node 1, epoch 3, watermark 7, 1 outcome: seq 7, flag 0.
	old := []byte{1, 1, 3, 7, 1, 7, 0}
	if b := tb.encode(nil, maxSnapshotResultBytes); !bytes.Equal(b, old) {
		t.Fatalf("table without codec encodes as %x, want %x", b, old)
	}
	got, undecodable, err := decodeDedupeTable(old, &recorder{})
	if err != nil || undecodable != 0 {
		t.Fatal(undecodable, err)
	}
	v, o := got.admit(e)
	if _, err := o.unwrap(); v != verdictDuplicate || !o.lost || !o.restored || !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("verdict %d, outcome %+v, %v", v, o, err)
	}
}

// An outcome whose bytes the codec refuses (a newer build's result
// encoding, or damage) is kept as lost and counted; the rest of the table
// loads.
func TestDedupeTableUndecodableResultIsLost(t *testing.T) {
	tb := newDedupeTable()
	for _, e := range []envelope{env(1, 3, 7, 7), env(1, 3, 8, 7)} {
		tb.admit(e)
		tb.record(e.id, outcome{result: int(e.id.seq)})
	}
	b := tb.encode(&recorder{}, maxSnapshotResultBytes)
	// Seq 7's result is the last byte of its outcome: 1 session (1), node,
	// epoch, watermark, count (1, 3, 7, 2), seq 7, flag 1, length 1, result.
	const resultAt = 8
	if b[resultAt] != 7 {
		t.Fatalf("table %x: byte %d is not seq 7's result", b, resultAt)
	}
	b[resultAt] = 0x80 // a truncated uvarint: recorder.DecodeResult refuses it
	got, undecodable, err := decodeDedupeTable(b, &recorder{})
	if err != nil || undecodable != 1 {
		t.Fatalf("undecodable %d, %v; want 1, nil", undecodable, err)
	}
	if _, o := got.admit(env(1, 3, 7, 7)); !o.lost {
		t.Fatalf("seq 7: %+v, want lost", o)
	}
	if _, o := got.admit(env(1, 3, 8, 7)); o.lost || o.result != 8 || !o.restored {
		t.Fatalf("seq 8: %+v, want its result", o)
	}
}

// Results past the budget are carried as lost, in (node, seq) order.
func TestDedupeTableResultsBudget(t *testing.T) {
	tb := newDedupeTable()
	for seq := uint64(1); seq <= 5; seq++ {
		e := env(1, 1, seq, 1)
		tb.admit(e)
		tb.record(e.id, outcome{result: int(seq)})
	}
	// Each recorder result is 1 byte: a budget of 3 carries seqs 1 to 3.
	got, _, err := decodeDedupeTable(tb.encode(&recorder{}, 3), &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		_, o := got.admit(env(1, 1, seq, 1))
		if want := seq > 3; o.lost != want || (!o.lost && o.result != int(seq)) {
			t.Fatalf("seq %d: %+v, want lost=%v", seq, o, want)
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
	f.Add(tb.encode(&recorder{}, maxSnapshotResultBytes))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = decodeDedupeTable(b, &recorder{}) // must not panic
	})
}

// TestForgedEpochIsOvertaken: a member proposes, in node 1's name, an entry
// from a boot epoch far ahead of node 1's (the fake-peer tests found that
// this made every later write through node 1 stale, for good). Node 1
// moves to an epoch above it when the entry is applied: its writes apply
// again, each exactly once, and a restart keeps the new epoch.
func TestForgedEpochIsOvertaken(t *testing.T) {
	c := makeCluster(t, 3)
	c.waitLeader(10 * time.Second)
	c.mustPut(1, "before")
	forgedEpoch := c.store(1).epoch.Load() + 1000
	forged := envelope{id: proposalID{node: 1, epoch: forgedEpoch, seq: 1}, minPending: 1,
		payload: []byte("forged")}.encode()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.node(2).Propose(ctx, forged); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the forged entry applied on node 1", func() bool {
		return c.rec(1).counts()["forged"] == 1
	})
	if got := c.store(1).epoch.Load(); got <= forgedEpoch {
		t.Fatalf("node 1 at epoch %d after applying epoch %d in its name", got, forgedEpoch)
	}
	for i := range 5 {
		c.mustPut(1, fmt.Sprintf("after-%d", i))
	}
	c.restart(1)
	c.waitLeader(10 * time.Second)
	if got := c.store(1).epoch.Load(); got <= forgedEpoch+1 {
		t.Fatalf("after a restart node 1 is at epoch %d, want above %d", got, forgedEpoch+1)
	}
	c.mustPut(1, "after-restart")
	var last uint64
	for _, id := range c.running() {
		last = max(last, c.store(id).Status().Commit)
	}
	c.waitApplied(10*time.Second, last)
	for _, id := range c.running() {
		counts := c.rec(id).counts()
		for _, p := range []string{"before", "forged", "after-0", "after-4", "after-restart"} {
			if counts[p] != 1 {
				t.Errorf("node %d applied %q %d times, want once", id, p, counts[p])
			}
		}
	}
}
