package kv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
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

var (
	linDuration = flag.Duration("lin_duration", 2*time.Second, "workload duration of TestLinearizableUnderPartitionsAndCrashes")
	linSeed     = flag.Uint64("lin_seed", 1, "random seed of TestLinearizableUnderPartitionsAndCrashes (0: pick one from the clock)")
)

type kvInput struct {
	put   bool
	key   string
	value string
}

type kvOutput struct{ value string }

// kvModel is a register per key: a get returns the last put's value.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(kvInput)
		if in.put {
			return true, in.value
		}
		return output.(kvOutput).value == state.(string), state
	},
	Equal: func(a, b any) bool { return a == b },
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.put {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) → %s", in.key, output.(kvOutput).value)
	},
}

// Concurrent clients on every node under random partitions and crashes: the
// history of operations must be linearizable.
//
// The nemesis runs in one goroutine. Every step it changes the network (heal,
// isolate a node, or split one node from the rest) and, independently, may
// crash one node (Store.Stop, dropping every answer that node had not yet
// given, as a killed process would) or restart the crashed one from its data
// directory with a fresh state machine. At most one of the three nodes is
// down at a time. Snapshots are taken every few dozen entries, so restarts
// replay a snapshot plus a WAL tail and lagging nodes are caught up by
// snapshot.
//
// Outcomes: a put that fails with ErrIndeterminate, or whose node crashed
// before it answered, has an unknown outcome and is recorded with Return =
// math.MaxInt64 (porcupine then lets it take effect at any time after its
// call, or never: its Step ignores the output). A read that fails or is lost
// is dropped: it has no effect. Any other error fails the test.
//
// The run is bounded by -lin_duration (2 s by default); -lin_seed picks the
// nemesis', clients' and network's random choices (timing is not
// deterministic, but the sequence of choices is). The seed is logged.
func TestLinearizableUnderPartitionsAndCrashes(t *testing.T) {
	seed := *linSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -lin_seed=%d), workload %v", seed, seed, *linDuration)

	lg := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	net := memnet.New(int64(seed))
	defer net.Close()
	peers := map[uint64]string{1: "a", 2: "b", 3: "c"}
	nodes := map[uint64]*linNode{}
	open := func(n *linNode) error {
		m := New()
		s, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{
				ID: n.id, Peers: peers, DataDir: n.dir, Logger: lg,
				TickInterval: 10 * time.Millisecond, ElectionTicks: 10,
				SnapshotEntries: 50, CatchUpEntries: 20,
			},
			StateMachine: m,
			NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(n.id, h), nil },
		})
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.store, n.machine = s, m
		n.mu.Unlock()
		return nil
	}
	for id := range peers {
		nodes[id] = &linNode{id: id, dir: t.TempDir()}
		if err := open(nodes[id]); err != nil {
			t.Fatal(err)
		}
		defer nodes[id].crash()
	}

	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 6 {
		n := nodes[uint64(client%3)+1]
		wg.Go(func() {
			runLinClient(t, seed, client, stop, func(*rand.Rand) *linNode { return n }, now, func(op porcupine.Operation) {
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			})
		})
	}

	rng := rand.New(rand.NewPCG(seed, 1<<32))
	var down *linNode
	downSteps, crashes := 0, 0
	restart := func() {
		if err := open(down); err != nil {
			t.Errorf("restarting node %d: %v", down.id, err)
		}
		down = nil
	}
	for deadline := time.Now().Add(*linDuration); time.Now().Before(deadline); {
		switch rng.IntN(3) {
		case 0:
			net.Heal()
		case 1:
			net.Isolate(uint64(rng.IntN(3)) + 1)
		case 2:
			net.Partition([]uint64{uint64(rng.IntN(3)) + 1})
		}
		switch {
		case down == nil && rng.IntN(2) == 0:
			down = nodes[uint64(rng.IntN(3))+1]
			down.crash()
			downSteps = 0
			crashes++
		case down != nil && downSteps >= 1 && rng.IntN(2) == 0:
			restart()
		case down != nil:
			downSteps++
		}
		time.Sleep(150 * time.Millisecond)
	}
	// Recover everything and let the clients run a little longer, so the
	// history ends with reads of the state the faults left behind.
	net.Heal()
	if down != nil {
		restart()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	checkLinearizable(t, history, seed, fmt.Sprintf("%d crashes", crashes))
}

// checkLinearizable fails the test unless history is linearizable and some
// operation in it completed.
func checkLinearizable(t *testing.T, history []porcupine.Operation, seed uint64, what string) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, 30*time.Second)
	if res == porcupine.Illegal {
		path := t.TempDir() + "/lin.html"
		_ = porcupine.VisualizePath(kvModel, info, path)
		t.Fatalf("history of %d operations is not linearizable (seed %d, visualisation: %s)", len(history), seed, path)
	}
	acked := 0
	for _, op := range history {
		if op.Return != math.MaxInt64 {
			acked++
		}
	}
	t.Logf("%s; %d operations (%d with a known outcome): %s", what, len(history), acked, res)
	if acked == 0 {
		t.Fatal("no operation completed")
	}
}

// linNode is one member of the linearizability test's cluster: its data
// directory outlives crashes, its store and state machine do not.
type linNode struct {
	id  uint64
	dir string

	mu      sync.Mutex
	store   *raftstore.Store // nil while crashed
	machine *Machine
	inc     uint64 // incarnation: bumped at each crash
}

// current returns the running store, its state machine and incarnation; the
// store is nil while the node is down.
func (n *linNode) current() (*raftstore.Store, *Machine, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.store, n.machine, n.inc
}

// alive reports whether incarnation inc has not crashed.
func (n *linNode) alive(inc uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inc == inc && n.store != nil
}

// crash kills the running incarnation: from now on its answers are lost,
// then it is stopped without any further coordination (its WAL keeps what it
// had written; everything it acknowledged to raft was fsynced). Idempotent.
func (n *linNode) crash() {
	n.mu.Lock()
	s := n.store
	n.store, n.machine = nil, nil
	n.inc++
	n.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

// runLinClient runs one client of a linearizability test until stop: each
// operation, a put or a read of one of three keys, goes to the node pick
// returns, and is recorded with its outcome (a put without a known outcome
// as one that may take effect at any later time; a failed read not at all).
func runLinClient(t *testing.T, seed uint64, client int, stop <-chan struct{}, pick func(*rand.Rand) *linNode,
	now func() int64, record func(porcupine.Operation)) {
	rng := rand.New(rand.NewPCG(seed, uint64(client)))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		n := pick(rng)
		s, m, inc := n.current()
		if s == nil { // the node is down
			time.Sleep(5 * time.Millisecond)
			continue
		}
		in := kvInput{key: fmt.Sprintf("k%d", rng.IntN(3))}
		if rng.IntN(2) == 0 {
			in.put, in.value = true, fmt.Sprintf("c%d-%d", client, i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		call := now()
		var out kvOutput
		var err error
		if in.put {
			_, err = s.Transact(ctx, EncodePut(in.key, []byte(in.value)))
		} else {
			var v any
			v, err = s.Read(ctx, func() (any, error) {
				b, _ := m.Get(in.key)
				return string(b), nil
			})
			if err == nil {
				out.value = v.(string)
			}
		}
		ret := now()
		cancel()
		// An answer the node gave after it was killed never reached the
		// client.
		lost := !n.alive(inc)
		switch {
		case in.put && err == nil && !lost:
		case in.put && (lost || errors.Is(err, raftstore.ErrIndeterminate)):
			ret = math.MaxInt64 // may take effect at any later time, or never
		case !in.put && (lost || errors.Is(err, raftstore.ErrNoQuorum) || errors.Is(err, raftstore.ErrStopped)):
			continue // a read has no effect
		case !in.put && err == nil:
		default:
			t.Errorf("client %d on node %d: %v", client, n.id, err)
			return
		}
		record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	}
}
