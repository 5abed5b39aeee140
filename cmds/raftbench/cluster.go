package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/raftstore/kv"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// opGet is the bench's own opcode for a Get proposed through the log. It
// lies outside kv's opcodes, which benchMachine passes through unchanged.
const opGet byte = 0xB0

// encodeGet is the payload of a read that goes through the log, the way the
// existing DSS's Raft prototype served reads (one WAL fsync per read).
func encodeGet(key string) []byte { return append([]byte{opGet}, key...) }

// benchMachine is the kv state machine plus a Get that can be proposed, so
// "reads through the log" do exactly the lookup a ReadIndex read does.
type benchMachine struct{ *kv.Machine }

var (
	_ raftstore.StateMachine = benchMachine{}
	_ raftstore.ResultCodec  = benchMachine{}
)

// getResult is a logged Get's result. A named type keeps it distinct from
// kv's own results in the result codec.
type getResult []byte

func (m benchMachine) Apply(index uint64, data []byte) (any, error) {
	if len(data) > 0 && data[0] == opGet {
		v, _ := m.Get(string(data[1:]))
		return getResult(v), nil
	}
	return m.Machine.Apply(index, data)
}

// resultGet tags an encoded getResult; kv's encodings are one byte ≤ 2.
const resultGet byte = 0xB0

func (m benchMachine) EncodeResult(result any, err error) ([]byte, error) {
	if r, ok := result.(getResult); ok && err == nil {
		return append([]byte{resultGet}, r...), nil
	}
	return m.Machine.EncodeResult(result, err)
}

func (m benchMachine) DecodeResult(b []byte) (any, error, error) {
	if len(b) > 0 && b[0] == resultGet {
		return getResult(b[1:]), nil, nil
	}
	return m.Machine.DecodeResult(b)
}

// node is one cluster member.
type node struct {
	id    uint64
	store *raftstore.Store
	sm    benchMachine
}

// cluster is a 3-node kv cluster over gRPC on loopback, WAL in real files.
type cluster struct {
	nodes []*node
}

// startCluster opens size stores in dir. Listen ports are reserved by
// binding :0 and releasing just before the stores bind them; another process
// can take one in between, so a bind failure retries with fresh ports.
func startCluster(dir string, size int, tick time.Duration, lg *zap.Logger) (*cluster, error) {
	var lastErr error
	for attempt := range 3 {
		addrs, err := reservePorts(size)
		if err != nil {
			return nil, err
		}
		c, err := openCluster(filepath.Join(dir, fmt.Sprintf("cluster%d", attempt)), addrs, tick, lg)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func reservePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserving a port: %w", err)
		}
		addrs = append(addrs, l.Addr().String())
		if err := l.Close(); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

func openCluster(dir string, addrs []string, tick time.Duration, lg *zap.Logger) (*cluster, error) {
	peers := map[uint64]string{}
	for i, a := range addrs {
		peers[uint64(i+1)] = a
	}
	c := &cluster{}
	for i, addr := range addrs {
		id := uint64(i + 1)
		sm := benchMachine{kv.New()}
		st, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{
				ID:           id,
				Peers:        peers,
				DataDir:      filepath.Join(dir, fmt.Sprintf("node%d", id)),
				TickInterval: tick,
				Logger:       lg,
			},
			StateMachine: sm,
			NewTransport: func(h transport.Handler) (transport.Transport, error) {
				return grpctransport.NewGRPC(grpctransport.GRPCConfig{ID: id, ListenAddr: addr, Handler: h, Logger: lg})
			},
		})
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("opening node %d: %w", id, err)
		}
		c.nodes = append(c.nodes, &node{id: id, store: st, sm: sm})
	}
	return c, nil
}

// stop stops every member; each Stop is bounded.
func (c *cluster) stop() {
	for _, n := range c.nodes {
		n.store.Stop()
	}
}

// leader waits until a member is leader and every member agrees on it.
func (c *cluster) leader(ctx context.Context) (*node, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		var lead *node
		agreed := true
		for _, n := range c.nodes {
			st := n.store.Status()
			if st.IsLeader {
				lead = n
			}
			if st.Leader == 0 || (lead != nil && st.Leader != lead.id) {
				agreed = false
			}
		}
		if lead != nil && agreed {
			return lead, nil
		}
		for _, n := range c.nodes {
			select {
			case <-n.store.Done():
				return nil, fmt.Errorf("node %d stopped: %w", n.id, n.store.Err())
			default:
			}
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("no leader elected in time")
		case <-t.C:
		}
	}
}

// stats returns every member's consensus counters, in node order.
func (c *cluster) stats() []consensus.Stats {
	out := make([]consensus.Stats, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.store.Node().Stats()
	}
	return out
}
