package kv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

// Concurrent clients on every member while members are replaced one after
// another (a random voter, the leader included, is removed and killed; a
// new node is added as a learner, joins, catches up and is promoted), under
// random short isolations: the history must stay linearizable. Every client
// picks a random current member for each operation.
func TestLinearizableAcrossMembershipChanges(t *testing.T) {
	seed := *linSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	replacements := 3
	if testing.Short() {
		replacements = 2
	}
	t.Logf("seed %d (rerun with -lin_seed=%d), %d replacements", seed, seed, replacements)

	lg := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	net := memnet.New(int64(seed))
	defer net.Close()
	var (
		mmu     sync.Mutex
		nodes   = map[uint64]*linNode{}
		members []uint64 // current voters, in the order they joined
	)
	open := func(n *linNode, peers []uint64, join bool) {
		t.Helper()
		addrs := map[uint64]string{}
		for _, id := range peers {
			addrs[id] = fmt.Sprintf("node-%d:1", id)
		}
		m := New()
		s, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{
				ID: n.id, Peers: addrs, DataDir: n.dir, Logger: lg, Join: join,
				TickInterval: 10 * time.Millisecond, ElectionTicks: 10,
				SnapshotEntries: 50, CatchUpEntries: 20,
			},
			StateMachine: m,
			NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(n.id, h), nil },
		})
		if err != nil {
			t.Fatalf("opening node %d: %v", n.id, err)
		}
		n.mu.Lock()
		n.store, n.machine = s, m
		n.mu.Unlock()
	}
	for id := uint64(1); id <= 3; id++ {
		n := &linNode{id: id, dir: t.TempDir()}
		nodes[id] = n
		members = append(members, id)
		open(n, []uint64{1, 2, 3}, false)
		defer n.crash()
	}
	pick := func(rng *rand.Rand) *linNode {
		mmu.Lock()
		defer mmu.Unlock()
		return nodes[members[rng.IntN(len(members))]]
	}

	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	var (
		hmu     sync.Mutex
		history []porcupine.Operation
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 6 {
		wg.Go(func() {
			runLinClient(t, seed, client, stop, pick, now, func(op porcupine.Operation) {
				hmu.Lock()
				history = append(history, op)
				hmu.Unlock()
			})
		})
	}

	rng := rand.New(rand.NewPCG(seed, 1<<32))
	// change runs a membership change through a random current member until
	// it is applied there; done says which refusal means an earlier try of
	// the same change already applied.
	change := func(what string, do func(*consensus.Node, context.Context) error, done error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mmu.Lock()
			n := nodes[members[rng.IntN(len(members))]]
			mmu.Unlock()
			s, _, _ := n.current()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := do(s.Node(), ctx)
			cancel()
			if err == nil || errors.Is(err, done) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fault := func() {
		if rng.IntN(2) == 0 {
			mmu.Lock()
			victim := members[rng.IntN(len(members))]
			mmu.Unlock()
			net.Isolate(victim)
			time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
			net.Heal()
		}
		time.Sleep(50 * time.Millisecond)
	}

	next := uint64(4)
	for range replacements {
		fault()
		mmu.Lock()
		old := members[rng.IntN(len(members))]
		mmu.Unlock()
		change(fmt.Sprintf("removing %d", old), func(n *consensus.Node, ctx context.Context) error {
			return n.RemoveMember(ctx, old)
		}, consensus.ErrMemberRemoved)
		mmu.Lock()
		members = slices.DeleteFunc(members, func(id uint64) bool { return id == old })
		peers := append(slices.Clone(members), next)
		mmu.Unlock()
		mmu.Lock()
		victim := nodes[old]
		mmu.Unlock()
		victim.crash()

		fault()
		id := next
		next++
		change(fmt.Sprintf("adding learner %d", id), func(n *consensus.Node, ctx context.Context) error {
			return n.AddLearner(ctx, id, fmt.Sprintf("node-%d:1", id))
		}, consensus.ErrMemberExists)
		n := &linNode{id: id, dir: t.TempDir()}
		mmu.Lock()
		nodes[id] = n
		mmu.Unlock()
		open(n, peers, true)
		defer n.crash()
		// Caught up: it applied what a member had committed when it joined.
		mmu.Lock()
		s, _, _ := nodes[peers[0]].current()
		mmu.Unlock()
		target := s.Status().Commit
		waitUntil(t, fmt.Sprintf("node %d to apply index %d", id, target), func() bool {
			s, _, _ := n.current()
			return s.Status().Applied >= target
		})
		fault()
		change(fmt.Sprintf("promoting %d", id), func(n *consensus.Node, ctx context.Context) error {
			err := n.PromoteMember(ctx, id)
			if errors.Is(err, consensus.ErrLearnerBehind) {
				return consensus.ErrOutcomeUnknown // retry
			}
			return err
		}, consensus.ErrMemberExists)
		mmu.Lock()
		members = append(members, id)
		mmu.Unlock()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	mmu.Lock()
	final := slices.Sorted(slices.Values(members))
	mmu.Unlock()
	for _, id := range final {
		mmu.Lock()
		s, _, _ := nodes[id].current()
		mmu.Unlock()
		waitUntil(t, fmt.Sprintf("node %d to see the voters %v", id, final), func() bool {
			var voters []uint64
			for _, mb := range s.Node().Members().Members {
				if !mb.Learner {
					voters = append(voters, mb.ID)
				}
			}
			return slices.Equal(voters, final)
		})
	}
	checkLinearizable(t, history, seed, fmt.Sprintf("members %v after %d replacements", final, replacements))
}

// waitUntil polls cond for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
