package memnet

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/internal/report"
)

// Errors returned to a sender's delivery goroutine (and logged) when a
// receiver refuses a message.
var (
	errStopped     = errors.New("memnet: receiver stopped")
	errUnknownPeer = errors.New("memnet: message from a node that is not a peer of the receiver")
	errForgedFrom  = errors.New("memnet: message From differs from the sending node")
)

// envelope is a queued message and the earliest time it may be delivered.
type envelope struct {
	m         *raftpb.Message
	deliverAt time.Time
}

// peer is one outbound queue and the goroutine draining it.
type peer struct {
	id     uint64
	q      chan envelope
	ctx    context.Context // cancelled by RemovePeer or Stop
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine returns
}

// endpoint is one node's transport.Transport on a Network.
type endpoint struct {
	net *Network
	id  uint64
	h   transport.Handler
	log *zap.Logger
	rep *report.Reporter

	ctx    context.Context // cancelled by Stop: unblocks Process calls into h
	cancel context.CancelFunc

	mu       sync.Mutex
	rng      *rand.Rand // per-endpoint so a node's draws follow its own Send order
	peers    map[uint64]*peer
	removed  map[uint64]bool
	stopped  bool
	inflight sync.WaitGroup // Process calls into h; Add only under mu while !stopped
}

var _ transport.Transport = (*endpoint)(nil)

func newEndpoint(n *Network, id uint64, h transport.Handler) *endpoint {
	ctx, cancel := context.WithCancel(context.Background())
	return &endpoint{
		net:     n,
		id:      id,
		h:       h,
		log:     n.log.With(zap.Uint64("node", id)),
		rep:     report.New(h),
		ctx:     ctx,
		cancel:  cancel,
		rng:     rand.New(rand.NewSource(n.seed ^ int64(id*0x9E3779B97F4A7C15))),
		peers:   make(map[uint64]*peer),
		removed: make(map[uint64]bool),
	}
}

func isSnap(m *raftpb.Message) bool { return m.GetType() == raftpb.MessageType_MsgSnap }

// Send implements transport.Transport.
func (e *endpoint) Send(msgs []*raftpb.Message) {
	drop, lo, hi := e.net.faults()
	for _, m := range msgs {
		if m == nil {
			continue
		}
		to := m.GetTo()
		e.mu.Lock()
		if e.stopped {
			e.mu.Unlock()
			return
		}
		p := e.peers[to]
		// Draw for every message, even unroutable ones, so that the
		// sequence of draws depends only on the sequence of Sends.
		lost := drop > 0 && e.rng.Float64() < drop
		delay := lo
		if hi > lo {
			delay += time.Duration(e.rng.Int63n(int64(hi-lo) + 1))
		}
		e.mu.Unlock()

		if p == nil {
			e.log.Debug("memnet: message to unknown peer dropped", zap.Uint64("to", to))
			e.dropped(m, true)
			continue
		}
		if lost {
			e.dropped(m, false)
			continue
		}
		env := envelope{m: proto.Clone(m).(*raftpb.Message), deliverAt: time.Now().Add(delay)}
		select {
		case p.q <- env:
		default:
			e.log.Debug("memnet: peer queue full, message dropped", zap.Uint64("to", to))
			e.dropped(m, true)
		}
	}
}

// dropped reports a message that will never arrive. Silent loss (unreachable
// false) is only reported for snapshots, which raft must hear about.
func (e *endpoint) dropped(m *raftpb.Message, unreachable bool) {
	switch {
	case isSnap(m):
		e.rep.Snapshot(m.GetTo(), raft.SnapshotFailure)
	case unreachable:
		e.rep.Unreachable(m.GetTo())
	}
}

// AddPeer implements transport.Transport. addr is ignored: the network
// routes by raft ID.
func (e *endpoint) AddPeer(id uint64, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.stopped:
		return
	case id == 0 || id == e.id:
		e.log.Warn("memnet: AddPeer ignored: invalid peer id", zap.Uint64("peer", id))
		return
	case e.removed[id]:
		// Raft IDs are used once for all time; a removed ID coming back is a
		// bug in the caller, not a reconnect.
		e.log.Warn("memnet: AddPeer ignored: peer was removed", zap.Uint64("peer", id))
		return
	case e.peers[id] != nil:
		return
	}
	ctx, cancel := context.WithCancel(e.ctx)
	p := &peer{id: id, q: make(chan envelope, e.net.queueSize), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	e.peers[id] = p
	go e.runPeer(p)
}

// RemovePeer implements transport.Transport. It waits, bounded, for the
// peer's goroutine.
func (e *endpoint) RemovePeer(id uint64) {
	e.mu.Lock()
	p := e.peers[id]
	delete(e.peers, id)
	if !e.stopped {
		e.removed[id] = true
	}
	e.mu.Unlock()
	if p != nil {
		p.cancel()
		e.waitBounded(p.done, "peer goroutine")
	}
}

// Stop implements transport.Transport.
func (e *endpoint) Stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	e.stopped = true
	peers := e.peers
	e.peers = make(map[uint64]*peer)
	e.mu.Unlock()

	e.net.forget(e)
	e.cancel()
	for _, p := range peers {
		e.waitBounded(p.done, "peer goroutine")
	}
	inflight := make(chan struct{})
	go func() { e.inflight.Wait(); close(inflight) }()
	e.waitBounded(inflight, "deliveries into the handler")
	e.rep.Close()
}

func (e *endpoint) waitBounded(done <-chan struct{}, what string) {
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		e.log.Error("memnet: stop timed out; a Handler is ignoring context cancellation", zap.String("waiting_for", what))
	}
}

func (e *endpoint) runPeer(p *peer) {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var env envelope
		select {
		case <-p.ctx.Done():
			return
		case env = <-p.q:
		}
		if wait := time.Until(env.deliverAt); wait > 0 {
			timer.Reset(wait)
			select {
			case <-p.ctx.Done():
				return
			case <-timer.C:
			}
		}
		e.deliver(p, env.m)
	}
}

// deliver hands m to its destination if the link is up at this moment.
func (e *endpoint) deliver(p *peer, m *raftpb.Message) {
	dst := e.net.route(e.id, p.id)
	if dst == nil {
		e.dropped(m, true)
		return
	}
	// Process must stop blocking when either side stops.
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	stopWatch := context.AfterFunc(dst.ctx, cancel)
	defer stopWatch()

	err := dst.receive(ctx, e.id, m)
	switch {
	case err == nil:
		if isSnap(m) {
			e.rep.Snapshot(p.id, raft.SnapshotFinish)
		}
	case errors.Is(err, errStopped) || errors.Is(err, errUnknownPeer) || errors.Is(err, errForgedFrom):
		e.dropped(m, true)
	default:
		// The receiver's raft node refused the message (e.g. it is
		// stopping). That is not a network fault; only a snapshot's sender
		// needs to know.
		if isSnap(m) {
			e.rep.Snapshot(p.id, raft.SnapshotFailure)
		}
	}
}

// receive is the receiving side: it enforces the contract that only known
// peers reach Process.
func (e *endpoint) receive(ctx context.Context, from uint64, m *raftpb.Message) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return errStopped
	}
	var reject error
	switch {
	case e.peers[from] == nil:
		reject = errUnknownPeer
	case m.GetFrom() != from:
		reject = errForgedFrom
	}
	if reject != nil {
		e.mu.Unlock()
		e.log.Warn("memnet: rejected message", zap.Uint64("from", from), zap.Uint64("msg_from", m.GetFrom()), zap.Error(reject))
		return reject
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	defer e.inflight.Done()
	if err := e.h.Process(ctx, m); err != nil {
		e.log.Debug("memnet: handler refused message", zap.Uint64("from", from), zap.Error(err))
		return err
	}
	return nil
}
