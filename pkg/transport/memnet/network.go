package memnet

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/transport"
)

// DefaultQueueSize is the per-peer queue length when WithQueueSize is not
// given; it matches the gRPC transport's default.
const DefaultQueueSize = 4096

// stopTimeout bounds how long Stop waits for an endpoint's goroutines. They
// only block inside a receiver's Handler.Process, which gets a cancelled
// context on Stop, so this is reached only by a Handler that ignores it.
const stopTimeout = 5 * time.Second

// Option configures a Network.
type Option func(*Network)

// WithLogger sets the logger; the default discards logs.
func WithLogger(l *zap.Logger) Option {
	return func(n *Network) {
		if l != nil {
			n.log = l
		}
	}
}

// WithQueueSize sets every endpoint's per-peer queue length (minimum 1).
func WithQueueSize(size int) Option {
	return func(n *Network) {
		if size >= 1 {
			n.queueSize = size
		}
	}
}

// link is a directed connection from one node to another.
type link struct{ from, to uint64 }

// Network connects the endpoints created by Transport. All methods are safe
// for concurrent use.
type Network struct {
	seed      int64
	log       *zap.Logger
	queueSize int

	mu       sync.Mutex
	nodes    map[uint64]*endpoint
	group    map[uint64]int // partition group per node; nil when not partitioned
	isolated map[uint64]bool
	cut      map[link]bool
	dropRate float64
	minDelay time.Duration
	maxDelay time.Duration
	closed   bool
}

// New returns an empty, fully connected network without loss or delay.
// Release it with Close.
func New(seed int64, opts ...Option) *Network {
	n := &Network{
		seed:      seed,
		log:       zap.NewNop(),
		queueSize: DefaultQueueSize,
		nodes:     make(map[uint64]*endpoint),
		isolated:  make(map[uint64]bool),
		cut:       make(map[link]bool),
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// Transport creates node id's endpoint, delivering to h. Peers are added
// with AddPeer as with any transport; the address is ignored.
//
// Creating an endpoint for an id that already has a running one replaces it:
// the old endpoint is stopped first, as if the node had crashed and
// restarted. After Close the returned endpoint is already stopped.
func (n *Network) Transport(id uint64, h transport.Handler) transport.Transport {
	n.mu.Lock()
	old := n.nodes[id]
	n.mu.Unlock()
	if old != nil {
		n.log.Info("memnet: replacing running endpoint", zap.Uint64("id", id))
		old.Stop()
	}
	ep := newEndpoint(n, id, h)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.log.Warn("memnet: Transport called on a closed network", zap.Uint64("id", id))
		ep.Stop()
		return ep
	}
	n.nodes[id] = ep
	n.mu.Unlock()
	return ep
}

// Close stops every endpoint and waits, bounded, for their goroutines. It is
// idempotent.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	eps := make([]*endpoint, 0, len(n.nodes))
	for _, ep := range n.nodes {
		eps = append(eps, ep)
	}
	n.mu.Unlock()
	for _, ep := range eps {
		ep.Stop()
	}
}

// Partition splits the nodes into groups that cannot reach each other. Nodes
// named in no group form one more group together. It replaces any previous
// partition; isolation and disconnections are kept.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[uint64]int)
	for i, g := range groups {
		for _, id := range g {
			// Groups are numbered from 1 so that 0 is the implicit "rest".
			n.group[id] = i + 1
		}
	}
}

// Heal removes every partition, isolation and disconnection. Drop rate and
// delay are kept.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = nil
	n.isolated = make(map[uint64]bool)
	n.cut = make(map[link]bool)
}

// Isolate cuts id off from every other node in both directions until Heal.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
}

// Disconnect cuts the directed link from → to (to still reaches from).
func (n *Network) Disconnect(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{from, to}] = true
}

// Reconnect restores the directed link from → to cut by Disconnect.
func (n *Network) Reconnect(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, link{from, to})
}

// SetDropRate makes every message be lost with probability p, clamped to
// [0, 1].
func (n *Network) SetDropRate(p float64) {
	if p < 0 || p != p { // p != p: NaN
		p = 0
	}
	if p > 1 {
		p = 1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate = p
}

// SetDelay delays every message by a uniformly random duration in
// [lo, hi]. Messages between two nodes stay in order, as on a stream:
// each is delivered no earlier than its own deadline and after the previous
// one. Negative values are treated as zero; hi < lo is treated as lo.
func (n *Network) SetDelay(lo, hi time.Duration) {
	lo = max(lo, 0)
	hi = max(hi, lo)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.minDelay, n.maxDelay = lo, hi
}

// faults returns the loss and delay settings for a Send.
func (n *Network) faults() (drop float64, lo, hi time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropRate, n.minDelay, n.maxDelay
}

// route returns the destination endpoint if the link from → to is up now,
// or nil when the message must be dropped as unreachable.
func (n *Network) route(from, to uint64) *endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isolated[from] || n.isolated[to] || n.cut[link{from, to}] {
		return nil
	}
	if n.group != nil && n.group[from] != n.group[to] {
		return nil
	}
	return n.nodes[to]
}

// forget unregisters ep if it is still the endpoint registered for its id.
func (n *Network) forget(ep *endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[ep.id] == ep {
		delete(n.nodes, ep.id)
	}
}
