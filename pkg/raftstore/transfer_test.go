package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

func transfer(n *consensus.Node, to uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.TransferLeadership(ctx, to)
}

// TestTransferLeadershipUnderWrites moves the leadership twice while
// writers propose through every node: each transfer lands on the chosen
// voter, every acknowledged write is applied exactly once on every node, and
// no node refused a message of the transfer (the peer check must accept
// what raft sends for it: cluster.noRefusals at shutdown).
func TestTransferLeadershipUnderWrites(t *testing.T) {
	c := makeCluster(t, 3)
	leader := c.waitLeader(10 * time.Second)

	var (
		acked   sync.Map // payload → true
		nAcked  atomic.Int64
		nFailed atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("w%d-%d", w, i)
				if _, err := c.put(uint64(w%3+1), p, 5*time.Second); err != nil {
					nFailed.Add(1)
					continue
				}
				acked.Store(p, true)
				nAcked.Add(1)
			}
		})
	}
	waitFor(t, 10*time.Second, "writes before the transfer", func() bool { return nAcked.Load() > 20 })

	for _, to := range []uint64{leader%3 + 1, (leader+1)%3 + 1} {
		from := c.waitLeader(10 * time.Second)
		if from == to {
			t.Fatalf("leader is already %d", to)
		}
		before := nAcked.Load()
		if err := transfer(c.node(from), to); err != nil {
			t.Fatalf("transfer %d → %d: %v", from, to, err)
		}
		if got := c.waitLeader(10 * time.Second); got != to {
			t.Fatalf("after transfer to %d: leader %d", to, got)
		}
		waitFor(t, 10*time.Second, "writes after the transfer", func() bool { return nAcked.Load() > before+20 })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged, %d failed", nAcked.Load(), nFailed.Load())

	var last uint64
	for _, id := range c.running() {
		last = max(last, c.store(id).Status().Commit)
	}
	c.waitApplied(10*time.Second, last)
	for _, id := range c.running() {
		counts := c.rec(id).counts()
		acked.Range(func(k, _ any) bool {
			if n := counts[k.(string)]; n != 1 {
				t.Errorf("node %d applied acknowledged write %s %d times", id, k, n)
			}
			return true
		})
	}
}

func TestTransferLeadershipRefusals(t *testing.T) {
	c := makeCluster(t, 3)
	leader := c.waitLeader(10 * time.Second)
	follower := others(c.running(), leader)[0]
	for _, tc := range []struct {
		name string
		on   uint64
		to   uint64
		want error
	}{
		{"on a follower", follower, leader, consensus.ErrNotLeader},
		{"to a non-member", leader, 9, consensus.ErrNoSuchMember},
		{"to ID 0", leader, 0, consensus.ErrInvalidMember},
	} {
		if err := transfer(c.node(tc.on), tc.to); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := transfer(c.node(leader), leader); err != nil {
		t.Errorf("to itself: %v, want nil (nothing to do)", err)
	}
	if got := c.waitLeader(10 * time.Second); got != leader {
		t.Errorf("leader changed from %d to %d", leader, got)
	}
}
