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

var linDuration = flag.Duration("lin_duration", 2*time.Second, "workload duration of TestLinearizableUnderPartitions")

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

// Concurrent clients on every node under random partitions: the history of
// acknowledged operations must be linearizable. Writes with an unknown
// outcome may take effect at any later time; failed reads are dropped (a
// read has no effect).
func TestLinearizableUnderPartitions(t *testing.T) {
	lg := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	net := memnet.New(7)
	defer net.Close()
	peers := map[uint64]string{1: "a", 2: "b", 3: "c"}
	stores := map[uint64]*raftstore.Store{}
	machines := map[uint64]*Machine{}
	for id := range peers {
		m := New()
		s, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{
				ID: id, Peers: peers, DataDir: t.TempDir(), Logger: lg,
				TickInterval: 10 * time.Millisecond, ElectionTicks: 10,
			},
			StateMachine: m,
			NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(id, h), nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		stores[id], machines[id] = s, m
		defer s.Stop()
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
		id := uint64(client%3) + 1
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(client), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvInput{key: fmt.Sprintf("k%d", rng.IntN(2))}
				if rng.IntN(2) == 0 {
					in.put, in.value = true, fmt.Sprintf("c%d-%d", client, i)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				call := now()
				var out kvOutput
				var err error
				if in.put {
					_, err = stores[id].Transact(ctx, EncodePut(in.key, []byte(in.value)))
				} else {
					var v any
					v, err = stores[id].Read(ctx, func() (any, error) {
						b, _ := machines[id].Get(in.key)
						return string(b), nil
					})
					if err == nil {
						out.value = v.(string)
					}
				}
				ret := now()
				cancel()
				switch {
				case err == nil:
				case in.put && errors.Is(err, raftstore.ErrIndeterminate):
					ret = math.MaxInt64 // may take effect at any later time
				case !in.put && errors.Is(err, raftstore.ErrNoQuorum):
					continue
				default:
					t.Errorf("client %d: %v", client, err)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	rng := rand.New(rand.NewPCG(42, 42))
	for deadline := time.Now().Add(*linDuration); time.Now().Before(deadline); {
		switch rng.IntN(3) {
		case 0:
			net.Heal()
		case 1:
			net.Isolate(uint64(rng.IntN(3)) + 1)
		case 2:
			a := uint64(rng.IntN(3)) + 1
			net.Partition([]uint64{a})
		}
		time.Sleep(150 * time.Millisecond)
	}
	net.Heal()
	close(stop)
	wg.Wait()

	res, info := porcupine.CheckOperationsVerbose(kvModel, history, 30*time.Second)
	if res == porcupine.Illegal {
		path := t.TempDir() + "/lin.html"
		_ = porcupine.VisualizePath(kvModel, info, path)
		t.Fatalf("history of %d operations is not linearizable (visualisation: %s)", len(history), path)
	}
	acked := 0
	for _, op := range history {
		if op.Return != math.MaxInt64 {
			acked++
		}
	}
	t.Logf("%d operations (%d with a known outcome): %s", len(history), acked, res)
	if acked == 0 {
		t.Fatal("no operation completed")
	}
}
