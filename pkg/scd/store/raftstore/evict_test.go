package raftstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// TestEvictionThroughTheLog evicts in small batches through a 3-node
// cluster, proposed by the leader, then by a follower, and across a leader
// stop: every batch answers as on a single-node memstore given the same
// operations, and the replicas end with the memstore's state hash.
func TestEvictionThroughTheLog(t *testing.T) {
	c := newCluster(t, 3, nil)
	ref := memstore.New()
	w := newWorkload(23)
	ctx := context.Background()
	for range 200 {
		op := w.op()
		res, err := c.stores[1].Transact(ctx, op)
		if _, rerr := ref.Transact(ctx, op); (err == nil) != (rerr == nil) {
			t.Fatalf("%T: cluster %v, single node %v", op, err, rerr)
		}
		w.learn(op, res, err)
	}
	leader := func() uint64 {
		for id, s := range c.stores {
			if st := s.Status(); st.Leader == id {
				return id
			}
		}
		return 0
	}
	before := time.Date(2026, 3, 1, 12, 45, 0, 0, time.UTC)
	var total scd.EvictionCounts
	batches := 0
	for batch := 0; ; batch++ {
		batches++
		var id uint64
		waitFor(t, "a leader", func() bool { id = leader(); return id != 0 })
		if batch == 2 {
			// A follower proposes: the log decides, not the proposer.
			for f := range c.stores {
				if f != id {
					id = f
					break
				}
			}
		}
		op := &scd.EvictExpired{Before: before, Limit: 7}
		res, err := c.stores[id].Transact(ctx, op)
		if err != nil {
			t.Fatalf("batch %d on node %d: %v", batch, id, err)
		}
		rres, rerr := ref.Transact(ctx, op)
		if rerr != nil || !reflect.DeepEqual(res, rres) {
			t.Fatalf("batch %d: cluster %+v, single node %+v (%v)", batch, res, rres, rerr)
		}
		r := res.(scd.EvictionResult)
		total.Add(r.Evicted)
		if batch == 3 {
			// The leader stops between batches; the next leader goes on
			// where the log says.
			c.stop(leader())
		}
		if !r.Full {
			break
		}
	}
	if batches < 5 || total.OperationalIntents == 0 || total.Subscriptions == 0 {
		t.Fatalf("too little to evict for the scenario: %d batches, %+v", batches, total)
	}
	left, err := ref.Transact(ctx, &scd.PreviewEviction{Before: before})
	if err != nil || left != (scd.EvictionCounts{}) {
		t.Fatalf("left after the batches: %+v %v", left, err)
	}
	if _, h := c.converged(0); h != ref.Hash() {
		t.Fatalf("cluster hash %x, single node %x", h, ref.Hash())
	}
}
