package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test timing: 10 ms ticks, so an election timeout is 100 ms.
const (
	testTick          = 10 * time.Millisecond
	testElectionTicks = 10
	electionTimeout   = testTick * testElectionTicks
)

// recorder is a test StateMachine that records every applied payload, so a
// test can count how often each one was applied. Its result is the number of
// payloads applied so far (an int, encodable through ResultCodec).
type recorder struct {
	mu       sync.RWMutex
	applied  []string
	restores int
}

var _ ResultCodec = (*recorder)(nil)

func (r *recorder) Apply(_ uint64, data []byte) (any, error) {
	if string(data) == "poison" {
		return nil, fmt.Errorf("%w: poison payload", ErrUndecodable)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, string(data))
	return len(r.applied), nil
}

func (r *recorder) Snapshot() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var b []byte
	for _, s := range r.applied {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

func (r *recorder) Restore(b []byte) error {
	var applied []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return errors.New("recorder: corrupt snapshot")
		}
		applied = append(applied, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = applied
	r.restores++
	return nil
}

func (r *recorder) EncodeResult(res any, err error) ([]byte, error) {
	n, ok := res.(int)
	if err != nil || !ok {
		return nil, fmt.Errorf("recorder: cannot encode %v, %v", res, err)
	}
	return binary.AppendUvarint(nil, uint64(n)), nil
}

func (r *recorder) DecodeResult(b []byte) (any, error, error) {
	v, k := binary.Uvarint(b)
	if k != len(b) || k <= 0 {
		return nil, nil, errors.New("recorder: bad result")
	}
	return int(v), nil, nil
}

// counts returns how many times each payload was applied.
func (r *recorder) counts() map[string]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := map[string]int{}
	for _, s := range r.applied {
		m[s]++
	}
	return m
}

func (r *recorder) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.applied)
}

func (r *recorder) restoreCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.restores
}

// cluster is an in-process raft cluster over memnet with real WALs in
// t.TempDir().
type cluster struct {
	t      *testing.T
	lg     *zap.Logger
	net    *memnet.Network
	peers  map[uint64]string
	dirs   map[uint64]string
	tune   func(*consensus.Config)
	newSM  func() StateMachine
	mu     sync.Mutex
	stores map[uint64]*Store
	sms    map[uint64]StateMachine
	// joining are the nodes added to the running cluster (join), which
	// start with consensus.Config.Join.
	joining map[uint64]bool
}

type clusterOption func(*cluster)

// withTuning adjusts every node's consensus config.
func withTuning(f func(*consensus.Config)) clusterOption {
	return func(c *cluster) { c.tune = f }
}

// withStateMachine selects the state machine built for each (re)start.
func withStateMachine(f func() StateMachine) clusterOption {
	return func(c *cluster) { c.newSM = f }
}

// makeCluster starts n nodes (IDs 1..n) and stops them all at cleanup.
func makeCluster(t *testing.T, n int, opts ...clusterOption) *cluster {
	t.Helper()
	c := &cluster{
		t:       t,
		lg:      zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		net:     memnet.New(1),
		peers:   map[uint64]string{},
		dirs:    map[uint64]string{},
		newSM:   func() StateMachine { return &recorder{} },
		stores:  map[uint64]*Store{},
		sms:     map[uint64]StateMachine{},
		joining: map[uint64]bool{},
	}
	for _, o := range opts {
		o(c)
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peers[id] = fmt.Sprintf("node-%d", id)
		c.dirs[id] = t.TempDir()
	}
	t.Cleanup(c.shutdown)
	for id := range c.peers {
		c.start(id)
	}
	return c
}

func (c *cluster) config(id uint64) Config {
	c.mu.Lock()
	peers := maps.Clone(c.peers) // each node's own: join adds to c.peers
	join := c.joining[id]
	c.mu.Unlock()
	cc := consensus.Config{
		ID:             id,
		Peers:          peers,
		Join:           join,
		DataDir:        c.dirs[id],
		TickInterval:   testTick,
		ElectionTicks:  testElectionTicks,
		HeartbeatTicks: 1,
		Logger:         c.lg,
	}
	if c.tune != nil {
		c.tune(&cc)
	}
	sm := c.newSM()
	c.mu.Lock()
	c.sms[id] = sm
	c.mu.Unlock()
	return Config{
		Consensus:    cc,
		StateMachine: sm,
		NewTransport: func(h transport.Handler) (transport.Transport, error) {
			return c.net.Transport(id, h), nil
		},
	}
}

func (c *cluster) start(id uint64) {
	c.t.Helper()
	s, err := Open(c.config(id))
	if err != nil {
		c.t.Fatalf("starting node %d: %v", id, err)
	}
	c.mu.Lock()
	c.stores[id] = s
	c.mu.Unlock()
}

// crash stops node id. Its WAL stays; acknowledged writes were fsynced.
func (c *cluster) crash(id uint64) {
	c.mu.Lock()
	s := c.stores[id]
	delete(c.stores, id)
	c.mu.Unlock()
	if s != nil {
		c.noRefusals(id, s)
		s.Stop()
	}
}

// noRefusals fails the test if node id refused a message of a correct
// peer: the peer check (consensus.checkPeerMessage) must accept everything
// raft itself sends, through elections, restarts, snapshots and membership
// changes. A removed member's messages are the one expected refusal.
func (c *cluster) noRefusals(id uint64, s *Store) {
	for reason, n := range s.Node().PeerRejections() {
		if n != 0 && reason != consensus.RejectSender {
			c.t.Errorf("node %d refused %d messages of correct peers (%s)", id, n, reason)
		}
	}
}

func (c *cluster) restart(id uint64) { c.crash(id); c.start(id) }

// join starts node id, already added with AddMember, on an empty data
// directory as a new member.
func (c *cluster) join(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	c.peers[id] = fmt.Sprintf("node-%d", id)
	c.dirs[id] = c.t.TempDir()
	c.joining[id] = true
	c.mu.Unlock()
	c.start(id)
}

func (c *cluster) store(id uint64) *Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[id]
}

func (c *cluster) sm(id uint64) StateMachine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sms[id]
}

func (c *cluster) rec(id uint64) *recorder { return c.sm(id).(*recorder) }

func (c *cluster) running() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint64
	for id := range c.stores {
		ids = append(ids, id)
	}
	return ids
}

func (c *cluster) shutdown() {
	for _, id := range c.running() {
		c.crash(id)
	}
	c.net.Close()
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(testTick / 2)
	}
}

// waitLeader waits until every node in ids agrees on one leader among ids
// that believes it leads, and returns it.
func (c *cluster) waitLeader(timeout time.Duration, ids ...uint64) uint64 {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.running()
	}
	var leader uint64
	waitFor(c.t, timeout, "a leader", func() bool {
		leader = 0
		for _, id := range ids {
			st := c.store(id).Status()
			if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return false
			}
			leader = st.Leader
		}
		for _, id := range ids {
			if id == leader {
				return c.store(id).Status().IsLeader
			}
		}
		return false
	})
	return leader
}

// waitApplied waits until every node in ids has applied index.
func (c *cluster) waitApplied(timeout time.Duration, index uint64, ids ...uint64) {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.running()
	}
	waitFor(c.t, timeout, fmt.Sprintf("applied index %d on %v", index, ids), func() bool {
		for _, id := range ids {
			if c.store(id).Status().Applied < index {
				return false
			}
		}
		return true
	})
}

// put proposes payload through node id with a timeout.
func (c *cluster) put(id uint64, payload string, timeout time.Duration) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.store(id).Transact(ctx, []byte(payload))
}

func (c *cluster) mustPut(id uint64, payload string) any {
	c.t.Helper()
	res, err := c.put(id, payload, 10*time.Second)
	if err != nil {
		c.t.Fatalf("put %q via %d: %v", payload, id, err)
	}
	return res
}

func others(ids []uint64, not uint64) []uint64 {
	var out []uint64
	for _, id := range ids {
		if id != not {
			out = append(out, id)
		}
	}
	return out
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// writeLog is what concurrent writers (runWriters) got back.
type writeLog struct {
	mu    sync.Mutex
	acked []string // payloads whose write was acknowledged
	indet int      // writes without a known outcome
}

// runWriters starts n writers; writer w's i-th write, of payload
// "w<w>-<i>", goes through pick(w, i) (nil: skip a beat). Every write has a
// 3 s deadline; an error other than ErrIndeterminate fails the test. The returned stop ends them and returns what they got back.
func (c *cluster) runWriters(n int, pick func(w, i int) *Store) (stop func() *writeLog) {
	log := &writeLog{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				s := pick(w, i)
				if s == nil {
					time.Sleep(testTick)
					continue
				}
				p := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := s.Transact(ctx, []byte(p))
				cancel()
				log.mu.Lock()
				switch {
				case err == nil:
					log.acked = append(log.acked, p)
				case errors.Is(err, ErrIndeterminate):
					log.indet++
				default:
					c.t.Errorf("write %s: unexpected error %v", p, err)
				}
				log.mu.Unlock()
			}
		})
	}
	return func() *writeLog {
		close(done)
		wg.Wait() // bounded: every Transact has a 3 s deadline
		return log
	}
}

// appliedOnce fails the test unless every node in ids applied every payload
// in acked, and every payload at all, exactly once.
func (c *cluster) appliedOnce(acked []string, ids ...uint64) {
	c.t.Helper()
	for _, id := range ids {
		counts := c.rec(id).counts()
		for _, p := range acked {
			if counts[p] != 1 {
				c.t.Fatalf("node %d applied acknowledged %s %d times", id, p, counts[p])
			}
		}
		for p, n := range counts {
			if n != 1 {
				c.t.Fatalf("node %d applied %s %d times", id, p, n)
			}
		}
	}
}

// snapshotApplied returns a copy of the payloads applied so far, in order.
func (r *recorder) snapshotApplied() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.applied)
}
