package raftstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is an in-process cluster of SCD stores over memnet, with real
// WALs in temporary directories.
type cluster struct {
	t     *testing.T
	lg    *zap.Logger
	net   *memnet.Network
	peers map[uint64]string
	dirs  map[uint64]string
	tune  func(*consensus.Config)
	// readsViaLog, when set, says which nodes run with Config.ReadsViaLog.
	readsViaLog func(id uint64) bool
	stores      map[uint64]*Store
}

func newCluster(t *testing.T, n int, tune func(*consensus.Config)) *cluster {
	t.Helper()
	return newClusterReadsViaLog(t, n, tune, nil)
}

// newClusterReadsViaLog is newCluster whose nodes for which readsViaLog
// holds run with Config.ReadsViaLog.
func newClusterReadsViaLog(t *testing.T, n int, tune func(*consensus.Config), readsViaLog func(id uint64) bool) *cluster {
	t.Helper()
	c := &cluster{
		t:           t,
		lg:          zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		net:         memnet.New(1),
		peers:       map[uint64]string{},
		dirs:        map[uint64]string{},
		tune:        tune,
		readsViaLog: readsViaLog,
		stores:      map[uint64]*Store{},
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peers[id] = fmt.Sprintf("node-%d", id)
		c.dirs[id] = t.TempDir()
	}
	t.Cleanup(func() {
		for _, s := range c.stores {
			s.Stop()
		}
		c.net.Close()
	})
	for id := range c.peers {
		if err := c.start(id); err != nil {
			t.Fatal(err)
		}
	}
	// A node stopped before its first Ready is persisted (the bootstrap
	// membership entries) restarts without voters and never elects a
	// leader (consensus starts a fresh member only when no WAL exists), so
	// tests stop nodes only after the cluster has formed.
	waitFor(t, "every node to know a leader", func() bool {
		for _, s := range c.stores {
			if s.Status().Leader == 0 {
				return false
			}
		}
		return true
	})
	return c
}

func (c *cluster) config(id uint64) Config {
	cc := consensus.Config{
		ID: id, Peers: c.peers, DataDir: c.dirs[id],
		// 20 ms ticks: elections in ~200 ms, yet slow enough that -race on a
		// loaded 2-core machine does not miss heartbeats.
		TickInterval: 20 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
		Logger: c.lg,
	}
	if c.tune != nil {
		c.tune(&cc)
	}
	return Config{
		Consensus: cc,
		NewTransport: func(h transport.Handler) (transport.Transport, error) {
			return c.net.Transport(id, h), nil
		},
		ReadsViaLog: c.readsViaLog != nil && c.readsViaLog(id),
	}
}

func (c *cluster) start(id uint64) error {
	s, err := Open(c.config(id))
	if err != nil {
		return err
	}
	c.stores[id] = s
	return nil
}

func (c *cluster) stop(id uint64) {
	c.stores[id].Stop()
	delete(c.stores, id)
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// converged waits until every running node reports the same applied index
// and hash, and returns them.
func (c *cluster) converged(atLeast uint64) (uint64, [32]byte) {
	c.t.Helper()
	var idx uint64
	var hash [32]byte
	waitFor(c.t, "equal state hashes at equal applied index", func() bool {
		first := true
		for _, s := range c.stores {
			i, h := s.StateHash()
			if i < atLeast {
				return false
			}
			if first {
				idx, hash, first = i, h, false
			} else if i != idx || h != hash {
				return false
			}
		}
		return true
	})
	return idx, hash
}

// TestClusterReplicasAgree drives SCD writes through every node of a 3-node
// cluster and checks that the replicas end with the same state hash at the
// same applied index, equal to a single-node memstore given the same
// operations in the same order; then that a node restarted from its data
// directory (with snapshots and compaction along the way) ends with it too.
func TestClusterReplicasAgree(t *testing.T) {
	c := newCluster(t, 3, func(cc *consensus.Config) { cc.SnapshotEntries = 64; cc.CatchUpEntries = 16 })
	ref := memstore.New()
	w := newWorkload(11)
	ctx := context.Background()
	for i := range 300 {
		op := w.op()
		s := c.stores[uint64(1+i%3)] // followers propose too
		if s == nil {
			s = c.stores[1]
		}
		res, err := s.Transact(ctx, op)
		rres, rerr := ref.Transact(ctx, op)
		if (err == nil) != (rerr == nil) || models.CodeOf(err) != models.CodeOf(rerr) {
			t.Fatalf("op %d %T: cluster said %v, single node %v", i, op, err, rerr)
		}
		if err == nil && !reflect.DeepEqual(res, rres) {
			t.Fatalf("op %d %T: cluster result %v, single node %v", i, op, res, rres)
		}
		w.learn(op, res, err)
		if i == 150 {
			c.stop(3) // node 3 misses the rest and catches up on restart
		}
	}
	want := ref.Hash()
	idx, hash := c.converged(0)
	if hash != want {
		t.Fatalf("cluster hash %x at %d, single-node store %x", hash, idx, want)
	}

	if err := c.start(3); err != nil {
		t.Fatal(err)
	}
	idx3, hash3 := c.converged(idx)
	if hash3 != want {
		t.Fatalf("after restarting node 3: hash %x at %d, want %x", hash3, idx3, want)
	}
	// And a whole-cluster restart from the data directories.
	for id := range c.peers {
		c.stop(id)
	}
	for id := range c.peers {
		if err := c.start(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, h := c.converged(idx3); h != want {
		t.Fatalf("after restarting every node: hash %x, want %x", h, want)
	}
}

// TestReadsDoNotAppendToTheLog: GETs and queries on every node leave the
// applied and commit indexes alone (they use ReadIndex, never the log).
func TestReadsDoNotAppendToTheLog(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	w := newWorkload(5)
	var oid models.ID
	for oid == "" {
		op := w.op()
		res, err := c.stores[1].Transact(ctx, op)
		w.learn(op, res, err)
		if p, ok := op.(*scd.PutOperationalIntent); ok && err == nil {
			oid = p.ID
		}
	}
	area := models.Volume4D{Cells: []models.CellID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}}
	reads := []scd.Operation{
		&scd.GetOperationalIntent{Caller: "uss-a", ID: oid},
		&scd.QueryOperationalIntents{Caller: "uss-a", Area: area},
		&scd.QueryConstraints{Caller: "uss-a", Area: area},
		&scd.QuerySubscriptions{Caller: "uss-a", Now: w.now, Area: area},
		&scd.GetUssAvailability{USS: "uss-a"},
	}
	type snap struct{ term, commit, applied uint64 }
	status := func() map[uint64]snap {
		m := map[uint64]snap{}
		for id, s := range c.stores {
			st := s.Status()
			m[id] = snap{st.Term, st.Commit, st.Applied}
		}
		return m
	}
	// An election (a spurious one on a loaded machine) appends a no-op
	// entry: only a round without a term change is evidence, so retry.
	for attempt := 0; ; attempt++ {
		c.converged(0)
		before := status()
		for range 20 {
			for id, s := range c.stores {
				for _, op := range reads {
					if _, err := s.Transact(ctx, op); err != nil {
						t.Fatalf("node %d %T: %v", id, op, err)
					}
				}
			}
		}
		after := status()
		termChanged := false
		for id := range before {
			termChanged = termChanged || before[id].term != after[id].term
		}
		if termChanged && attempt < 3 {
			continue
		}
		for id := range before {
			if before[id] != after[id] {
				t.Fatalf("node %d: %+v before 500 reads, %+v after", id, before[id], after[id])
			}
		}
		return
	}
}

// TestUndecodableEntryHaltsNodeAndKeepsData: a committed entry the node
// cannot decode halts it with a clear error, before applying anything of it;
// it stays up and answers 503 at once; a restart halts at the same entry
// again (nothing was skipped or repaired).
func TestUndecodableEntryHaltsNodeAndKeepsData(t *testing.T) {
	c := newCluster(t, 1, nil)
	s := c.stores[1]
	w := newWorkload(3)
	for range 20 {
		op := w.op()
		res, err := s.Transact(context.Background(), op)
		w.learn(op, res, err)
	}
	_, hashBefore := s.StateHash()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A payload of a newer version with an unknown operation type.
	_, _ = s.gen.Transact(ctx, []byte{0x7f, 0xff, 1, 2, 3})
	select {
	case <-s.Node().Halted():
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not halt")
	}
	st := s.Status()
	if st.HaltedIndex == 0 || !strings.Contains(st.HaltedReason, "unregistered operation type 32767") {
		t.Fatalf("Status() = %+v, want the halted index and a reason naming the type", st)
	}
	if _, h := s.StateHash(); h != hashBefore {
		t.Fatal("the undecodable entry changed the state")
	}
	start := time.Now()
	_, err := s.Transact(context.Background(), &scd.GetUssAvailability{USS: "uss-a"})
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.CodeUnavailable || !strings.Contains(me.Message, "halted") ||
		time.Since(start) > time.Second {
		t.Fatalf("read on a halted node: %v after %v, want 503 at once", err, time.Since(start))
	}
	c.stop(1)
	if err := c.start(1); err != nil {
		t.Fatal(err)
	}
	s = c.stores[1]
	select {
	case <-s.Node().Halted():
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted node did not halt at the undecodable entry")
	}
	if st2 := s.Status(); st2.HaltedIndex != st.HaltedIndex {
		t.Fatalf("restarted node halted at %d, first at %d", st2.HaltedIndex, st.HaltedIndex)
	}
	if _, h := s.StateHash(); h != hashBefore {
		t.Fatal("the restarted node's state differs")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newCluster(t, 1, nil)
	c.stop(1)
	cfg := c.config(1)
	cfg.Registerer = reg
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.stores[1] = s
	w := newWorkload(1)
	for range 10 {
		op := w.op()
		res, err := s.Transact(context.Background(), op)
		w.learn(op, res, err)
	}
	if got := counter(t, s.metrics.proposalsCommitted); got != 10 {
		t.Errorf("proposals committed %v, want 10", got)
	}
	waitFor(t, "a leader change to be counted", func() bool { return counter(t, s.metrics.leaderChanges) >= 1 })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"dss_raft_apply_duration_seconds", "dss_raft_is_leader", "dss_raft_applied_index",
		"dss_raft_proposals_committed_total", "dss_raft_leader_changes_seen_total",
		"dss_raft_snapshot_results_total", "dss_raft_snapshot_results_lost_total"} {
		if !names[want] {
			t.Errorf("metric %s not gathered (have %v)", want, names)
		}
	}
	// A second store on the same registry is refused, not silently merged.
	c.stop(1)
	if s2, err := Open(cfg); err == nil {
		s2.Stop()
		t.Fatal("opening a second store on the same registry succeeded")
	}

	// Writes whose outcome is unknown count as failed and answer 503.
	if err := c.start(1); err != nil {
		t.Fatal(err)
	}
	s = c.stores[1]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Transact(ctx, w.op())
	if models.CodeOf(err) != models.CodeUnavailable || counter(t, s.metrics.proposalsFailed) != 1 {
		t.Fatalf("cancelled write: %v, failed count %v", err, counter(t, s.metrics.proposalsFailed))
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestWriteTimesIncreaseThroughTheLog: State.Apply raises a write time that
// does not advance (spec §10); on the Raft path it must see the operation
// itself, not a closure around it, for that to happen.
func TestWriteTimesIncreaseThroughTheLog(t *testing.T) {
	c := newCluster(t, 1, nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var last time.Time
	for i := range 3 {
		w := newWorkload(uint64(i))
		v := w.volume(false)
		res, err := c.stores[1].Transact(context.Background(), &scd.PutConstraint{Caller: "uss-a", Now: now,
			ID: models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1)), Extents: v, USSBaseURL: "https://a.example"})
		if err != nil {
			t.Fatal(err)
		}
		got := res.(scd.ConstraintResult).CR.UpdatedAt
		if !got.After(last) {
			t.Fatalf("write %d: updated at %v, not after %v", i, got, last)
		}
		last = got
	}
}

// A node that applied its own removal from the cluster answers every
// operation 503 at once instead of waiting for a quorum it no longer has.
func TestRemovedNodeAnswersUnavailableAtOnce(t *testing.T) {
	c := newCluster(t, 3, nil)
	var leader uint64
	waitFor(t, "a leader", func() bool { leader = c.stores[1].Status().Leader; return leader != 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.stores[leader].Node().RemoveMember(ctx, leader); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed leader to know it", func() bool { return c.stores[leader].Status().Removed })
	for _, op := range []scd.Operation{
		&scd.GetUssAvailability{USS: "uss-a"},
		&scd.QueryConstraints{Caller: "uss-a", Area: models.Volume4D{Cells: []models.CellID{1}}},
	} {
		start := time.Now()
		_, err := c.stores[leader].Transact(context.Background(), op)
		var me *models.Error
		if !errors.As(err, &me) || me.Code != models.CodeUnavailable || !strings.Contains(me.Message, "removed") {
			t.Fatalf("%T on the removed node: %v, want 503 saying it was removed", op, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("%T on the removed node took %v", op, took)
		}
	}
}
