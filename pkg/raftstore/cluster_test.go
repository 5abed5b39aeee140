package raftstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

func TestElectAndReplicate(t *testing.T) {
	c := makeCluster(t, 3)
	c.waitLeader(5 * time.Second)
	// Every node accepts writes; followers forward to the leader.
	for id := uint64(1); id <= 3; id++ {
		for i := range 5 {
			c.mustPut(id, fmt.Sprintf("w-%d-%d", id, i))
		}
	}
	idx := c.store(1).Status().Applied
	c.waitApplied(5*time.Second, idx)
	// A read on any node, after its barrier, sees every acknowledged write.
	for id := uint64(1); id <= 3; id++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := c.store(id).Read(ctx, func() (any, error) { return c.rec(id).len(), nil })
		cancel()
		if err != nil {
			t.Fatalf("read on %d: %v", id, err)
		}
		if got.(int) != 15 {
			t.Fatalf("node %d sees %d writes after barrier, want 15", id, got)
		}
		for p, n := range c.rec(id).counts() {
			if n != 1 {
				t.Fatalf("node %d applied %q %d times", id, p, n)
			}
		}
	}
}

// Reads on followers, many at once so that several ReadIndex rounds are in
// flight, each see every write acknowledged before the read began, although
// a follower learns that a write committed only from a later message. The
// writes go on meanwhile, so an answer to a round issued before a write
// must not serve a read that began after it.
func TestFollowerReadsSeeAcknowledgedWrites(t *testing.T) {
	c := makeCluster(t, 3)
	leader := c.waitLeader(5 * time.Second)
	followers := others([]uint64{1, 2, 3}, leader)
	const writes, readersPerFollower = 300, 8
	var acked atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(followers)*readersPerFollower)
	for _, f := range followers {
		for range readersPerFollower {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					before := int(acked.Load())
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					got, err := c.store(f).Read(ctx, func() (any, error) { return c.rec(f).len(), nil })
					cancel()
					if err != nil {
						errs <- fmt.Errorf("read on %d: %w", f, err)
						return
					}
					if got.(int) < before {
						errs <- fmt.Errorf("read on %d saw %d writes, begun after %d were acknowledged", f, got, before)
						return
					}
				}
			})
		}
	}
	for i := range writes {
		if _, err := c.put(leader, fmt.Sprintf("ack-%d", i), 10*time.Second); err != nil {
			t.Errorf("put %d: %v", i, err)
			break
		}
		acked.Store(int64(i + 1))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// gatedRecorder is a recorder whose applies block while it is gated, like a
// node whose state machine is slow.
type gatedRecorder struct {
	recorder
	gated atomic.Bool
	gate  <-chan struct{}
}

func (g *gatedRecorder) Apply(index uint64, data []byte) (any, error) {
	if g.gated.Load() {
		<-g.gate
	}
	return g.recorder.Apply(index, data)
}

// Applying runs beside the Ready loop: while both followers' state machines
// are stuck, they still persist and acknowledge entries and answer
// heartbeats, so the leader keeps committing writes and confirming reads,
// and the followers catch up once their applies resume.
func TestStuckFollowerAppliesDoNotHoldUpCommits(t *testing.T) {
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	c := makeCluster(t, 3, withStateMachine(func() StateMachine { return &gatedRecorder{gate: gate} }))
	t.Cleanup(release) // runs before the cluster's shutdown
	leader := c.waitLeader(5 * time.Second)
	c.mustPut(leader, "before")
	c.waitApplied(5*time.Second, c.store(leader).Status().Applied)
	followers := others([]uint64{1, 2, 3}, leader)
	for _, f := range followers {
		c.sm(f).(*gatedRecorder).gated.Store(true)
	}
	// No more writes than the apply queue holds batches, with the one being
	// applied (each write commits in a batch of its own at most).
	for i := range 2 {
		if _, err := c.put(leader, fmt.Sprintf("stuck-%d", i), 3*time.Second); err != nil {
			t.Fatalf("put %d while the followers' applies are stuck: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	got, err := c.store(leader).Read(ctx, func() (any, error) { return c.sm(leader).(*gatedRecorder).len(), nil })
	cancel()
	if err != nil || got.(int) != 3 {
		t.Fatalf("leader read while the followers' applies are stuck: %v, %v; want 3 entries", got, err)
	}
	for _, f := range followers {
		if n := c.sm(f).(*gatedRecorder).len(); n != 1 {
			t.Fatalf("follower %d applied %d entries through a closed gate", f, n)
		}
		c.sm(f).(*gatedRecorder).gated.Store(false)
	}
	release()
	c.waitApplied(5*time.Second, c.store(leader).Status().Applied)
	for _, f := range followers {
		if n := c.sm(f).(*gatedRecorder).len(); n != 3 {
			t.Fatalf("follower %d applied %d entries, want 3", f, n)
		}
	}
}

// A leader killed while writes are in flight: every acknowledged write
// survives on the remaining majority, every in-flight write either completes
// exactly once or ends in ErrIndeterminate, and none hangs.
func TestLeaderKilledDuringWrites(t *testing.T) {
	c := makeCluster(t, 3)
	leader := c.waitLeader(5 * time.Second)

	stop := c.runWriters(6, func(w, _ int) *Store { return c.store(uint64(w%3) + 1) })
	time.Sleep(300 * time.Millisecond)
	c.crash(leader)
	rest := others([]uint64{1, 2, 3}, leader)
	newLeader := c.waitLeader(5*time.Second, rest...)
	time.Sleep(300 * time.Millisecond)
	log := stop()

	// Drain: one more write through the new leader commits everything before.
	c.mustPut(newLeader, "final")
	c.waitApplied(5*time.Second, c.store(newLeader).Status().Applied, rest...)
	c.appliedOnce(log.acked, rest...)
	t.Logf("leader %d killed: %d acknowledged, %d indeterminate", leader, len(log.acked), log.indet)
	if len(log.acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
}

// A leader isolated in a minority acknowledges no write and serves no read;
// the majority elects a new leader and the old one steps down.
func TestLeaderIsolatedInMinority(t *testing.T) {
	c := makeCluster(t, 3)
	old := c.waitLeader(5 * time.Second)
	c.mustPut(old, "before")
	rest := others([]uint64{1, 2, 3}, old)

	isolatedAt := time.Now()
	c.net.Isolate(old)

	// The majority elects a new leader: within about two election timeouts
	// (logged; the bound asserted is loose because a shared 2-core machine
	// under -race can delay ticks).
	newLeader := c.waitLeader(20*electionTimeout, rest...)
	if newLeader == old {
		t.Fatalf("majority elected the isolated node %d", old)
	}
	t.Logf("new leader %d after %v (election timeout %v)", newLeader, time.Since(isolatedAt), electionTimeout)

	// CheckQuorum: the old leader steps down.
	waitFor(t, 5*time.Second, "old leader to step down", func() bool {
		return !c.store(old).Status().IsLeader
	})

	// No write acknowledged and no read served on the isolated node.
	_, err := c.put(old, "isolated-write", 4*electionTimeout)
	if !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("write in minority: got %v, want ErrIndeterminate", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*electionTimeout)
	_, err = c.store(old).Read(ctx, func() (any, error) { return nil, nil })
	cancel()
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("read in minority: got %v, want ErrNoQuorum", err)
	}
	c.mustPut(newLeader, "majority-write")

	// After healing, the old leader catches up; its abandoned write applied
	// at most once (a late re-proposal may land, but never twice).
	c.net.Heal()
	c.mustPut(newLeader, "after-heal")
	c.waitApplied(5*time.Second, c.store(newLeader).Status().Applied)
	for id := uint64(1); id <= 3; id++ {
		counts := c.rec(id).counts()
		if counts["majority-write"] != 1 || counts["after-heal"] != 1 || counts["isolated-write"] > 1 {
			t.Fatalf("node %d counts %v", id, counts)
		}
	}
}

func TestFollowerRestartFromWAL(t *testing.T) {
	c := makeCluster(t, 3)
	leader := c.waitLeader(5 * time.Second)
	for i := range 10 {
		c.mustPut(leader, fmt.Sprintf("a%d", i))
	}
	follower := others([]uint64{1, 2, 3}, leader)[0]
	c.waitApplied(5*time.Second, c.store(leader).Status().Applied, follower)
	c.crash(follower)
	for i := range 10 {
		c.mustPut(leader, fmt.Sprintf("b%d", i))
	}
	c.start(follower)
	if n := c.rec(follower).restoreCount(); n != 0 {
		t.Fatalf("no snapshot expected yet, got %d restores", n)
	}
	c.waitApplied(5*time.Second, c.store(leader).Status().Applied, follower)
	if got := c.rec(follower).len(); got != 20 {
		t.Fatalf("restarted follower has %d entries, want 20", got)
	}
}

// A follower that falls behind the leader's compacted log is caught up by a
// snapshot, which restores its state machine.
func TestLaggingFollowerCaughtUpBySnapshot(t *testing.T) {
	c := makeCluster(t, 3, withTuning(func(cc *consensus.Config) {
		cc.SnapshotEntries = 20
		cc.CatchUpEntries = 5
	}))
	leader := c.waitLeader(5 * time.Second)
	c.mustPut(leader, "first")
	follower := others([]uint64{1, 2, 3}, leader)[0]
	c.waitApplied(5*time.Second, c.store(leader).Status().Applied, follower)
	c.crash(follower)
	for i := range 100 {
		c.mustPut(leader, fmt.Sprintf("x%d", i))
	}
	c.start(follower)
	c.waitApplied(10*time.Second, c.store(leader).Status().Applied, follower)
	if c.rec(follower).restoreCount() == 0 {
		t.Fatal("lagging follower caught up without a snapshot")
	}
	counts := c.rec(follower).counts()
	if len(counts) != 101 {
		t.Fatalf("follower has %d distinct entries, want 101", len(counts))
	}
	// Old snapshot files and WAL segments are purged.
	if n := dirEntries(t, filepath.Join(c.dirs[leader], "snap")); n > 3 {
		t.Fatalf("leader keeps %d snapshot files, want ≤ 3", n)
	}
}

// A 1-node cluster killed and restarted repeatedly loses no acknowledged
// write, and its disk use stays bounded by snapshots and purging.
func TestSingleNodeRestartLoop(t *testing.T) {
	c := makeCluster(t, 1, withTuning(func(cc *consensus.Config) {
		cc.SnapshotEntries = 15
		cc.CatchUpEntries = 5
	}))
	var acked []string
	for round := range 5 {
		c.waitLeader(5 * time.Second)
		for i := range 12 {
			p := fmt.Sprintf("r%d-%d", round, i)
			c.mustPut(1, p)
			acked = append(acked, p)
		}
		c.restart(1)
		c.waitLeader(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.store(1).Read(ctx, func() (any, error) { return nil, nil })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		counts := c.rec(1).counts()
		for _, p := range acked {
			if counts[p] != 1 {
				t.Fatalf("round %d: acknowledged %s applied %d times after restart", round, p, counts[p])
			}
		}
	}
	if n := dirEntries(t, filepath.Join(c.dirs[1], "snap")); n > 3 {
		t.Fatalf("%d snapshot files kept, want ≤ 3", n)
	}
}

// An entry the state machine cannot decode halts the node with a clear
// error instead of being skipped: it stays up, applies nothing more, answers
// ErrHalted at once, and halts again at the same index after a restart.
func TestUndecodableEntryHaltsNode(t *testing.T) {
	c := makeCluster(t, 1)
	c.waitLeader(5 * time.Second)
	c.mustPut(1, "fine")
	_, err := c.put(1, "poison", 5*time.Second)
	if !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("poison write: got %v, want ErrIndeterminate", err)
	}
	select {
	case <-c.store(1).Node().Halted():
	case <-time.After(5 * time.Second):
		t.Fatal("node did not halt on an undecodable entry")
	}
	st := c.store(1).Status()
	if st.HaltedIndex == 0 || st.Applied >= st.HaltedIndex || !strings.Contains(st.HaltedReason, "poison") {
		t.Fatalf("status after halt: %+v", st)
	}
	select {
	case <-c.store(1).Done():
		t.Fatalf("halted node stopped: %v", c.store(1).Err())
	default:
	}
	start := time.Now()
	if _, err := c.put(1, "after", 5*time.Second); !errors.Is(err, ErrHalted) {
		t.Fatalf("write on a halted node: %v, want ErrHalted", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = c.store(1).Read(ctx, func() (any, error) { return nil, nil })
	cancel()
	if !errors.Is(err, ErrHalted) || time.Since(start) > 2*time.Second {
		t.Fatalf("read on a halted node: %v after %v, want ErrHalted at once", err, time.Since(start))
	}
	c.restart(1)
	select {
	case <-c.store(1).Node().Halted():
	case <-time.After(5 * time.Second):
		t.Fatal("restarted node did not halt again")
	}
	if st2 := c.store(1).Status(); st2.HaltedIndex != st.HaltedIndex || st2.Applied != st.Applied {
		t.Fatalf("after restart: %+v, before: %+v", st2, st)
	}
	if n := c.rec(1).counts()["fine"]; n != 1 {
		t.Fatalf("entry before the halt applied %d times", n)
	}
}
