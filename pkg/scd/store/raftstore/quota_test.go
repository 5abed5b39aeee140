package raftstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// TestQuotaTravelsInTheEntry: nodes proposing with different quotas (as
// nodes with different flags do) are each obeyed, on every replica alike:
// the replicas and a single memstore given the same operations agree on
// every answer and on the final state, also after replaying their logs.
func TestQuotaTravelsInTheEntry(t *testing.T) {
	c := newCluster(t, 3, nil)
	ref := memstore.New()
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sub := func(n int, quota uint32) *scd.PutSubscription {
		now = now.Add(time.Second)
		end := now.Add(time.Hour)
		return &scd.PutSubscription{Caller: "uss-a", Now: now, ID: models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)),
			Extents:    models.Volume4D{Cells: []models.CellID{1, 2}, StartTime: &now, EndTime: &end},
			USSBaseURL: "https://a.example", NotifyForOperationalIntents: true, MaxSubscriptionsPerCell: quota}
	}
	for i, step := range []struct {
		node  uint64
		op    *scd.PutSubscription
		quota bool // refused by the quota
	}{
		{1, sub(1, 2), false},
		{3, sub(2, 1), true}, // node 3's quota of 1 is full
		{2, sub(2, 2), false},
		{1, sub(3, 2), true},
		{3, sub(3, 0), false}, // a node without quota
		{2, sub(4, 3), true},  // three held: 1, 2 and 3
	} {
		_, err := c.stores[step.node].Transact(ctx, step.op)
		_, rerr := ref.Transact(ctx, step.op)
		if got := models.CodeOf(err) == models.CodeQuotaExceeded; got != step.quota || (err == nil) != (rerr == nil) ||
			models.CodeOf(err) != models.CodeOf(rerr) {
			t.Fatalf("step %d via node %d: cluster %v, single node %v, want refused by the quota: %v", i, step.node, err, rerr, step.quota)
		}
	}
	want := ref.Hash()
	idx, hash := c.converged(0)
	if hash != want {
		t.Fatalf("cluster hash %x at %d, single-node store %x", hash, idx, want)
	}
	for id := range c.peers {
		c.stop(id)
	}
	for id := range c.peers {
		if err := c.start(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, h := c.converged(idx); h != want {
		t.Fatalf("after replaying the logs: hash %x, want %x", h, want)
	}
}
