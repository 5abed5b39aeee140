package grpctransport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/internal/report"
	"github.com/raftdss/dss/pkg/transport/transportpb"
)

// stopTimeout bounds Stop. Goroutines only outlive it when a Handler ignores
// the cancellation of the context it was given.
const stopTimeout = 10 * time.Second

// GRPCTransport is a transport.Transport over gRPC. Create it with NewGRPC.
type GRPCTransport struct {
	cfg       GRPCConfig
	log       *zap.Logger
	rep       *report.Reporter
	lis       net.Listener
	limits    *limitListener // lis
	srv       *grpc.Server
	serverTLS *tls.Config                 // nil: plaintext
	tls       atomic.Pointer[tlsMaterial] // nil: plaintext; replaced by ReloadTLS
	snapSeq   atomic.Uint64

	ctx    context.Context // parent of every peer's context; cancelled by Stop
	cancel context.CancelFunc

	serveDone chan struct{}
	stopOnce  sync.Once

	mu      sync.RWMutex
	peers   map[uint64]*peerConn
	removed map[uint64]bool
	retired []*peerConn // replaced by AddPeer with a new address; Stop waits for them
	stopped bool
}

var _ transport.Transport = (*GRPCTransport)(nil)

// NewGRPC validates cfg, listens on cfg.ListenAddr and starts serving. The
// caller owns the result and must call Stop.
func NewGRPC(cfg GRPCConfig) (*GRPCTransport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &GRPCTransport{
		cfg:       cfg,
		log:       cfg.Logger.With(zap.Uint64("raft_node", cfg.ID)),
		peers:     make(map[uint64]*peerConn),
		removed:   make(map[uint64]bool),
		serveDone: make(chan struct{}),
	}
	if cfg.TLS != nil {
		m, err := loadTLS(cfg.TLS, cfg.ID)
		if err != nil {
			return nil, err
		}
		t.tls.Store(m)
		t.serverTLS = t.serverTLSConfig()
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		// Stop must not return while a handler can still call Process.
		grpc.WaitForHandlers(true),
		// Peers ping every keepaliveTime to detect half-open connections;
		// allow it even when no stream is open. A client pinging more often
		// than every keepaliveTime/2 is sent GOAWAY and closed after two
		// strikes, so pings cannot be used to flood the node.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
		// Stranger-proofing of the inbound side (the listener adds the
		// connection limits):
		//  - HandshakeTimeout bounds the TLS handshake and HTTP/2 preface
		//    (gRPC's default is 120 s, during which a silent connection
		//    holds a slot);
		//  - IdleTimeout closes a connection that holds no stream: real
		//    peers always hold one (see DefaultIdleTimeout);
		//  - the server pings too (Time, Timeout), so the slot of a peer
		//    that vanished without closing TCP is freed in ~15 s instead of
		//    the kernel's hours, and a restarting member is not refused for
		//    its own dead connections.
		grpc.ConnectionTimeout(cfg.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: cfg.IdleTimeout,
			Time:              keepaliveTime,
			Timeout:           keepaliveTimeout,
		}),
		// A member opens one stream per connection (two for a moment when
		// it reopens one); more is not a peer, and each stream costs a
		// goroutine and buffers.
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
	}
	if t.serverTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.serverTLS)))
	}
	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("grpctransport: listen on %s: %w", cfg.ListenAddr, err)
	}
	t.limits = newLimitListener(lis, cfg.MaxInboundConns, cfg.MaxInboundConnsPerIP, t.log)
	t.lis = t.limits
	t.srv = grpc.NewServer(opts...)
	transportpb.RegisterRaftServer(t.srv, &server{t: t})
	t.rep = report.New(cfg.Handler)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(t.serveDone)
		if err := t.srv.Serve(t.lis); err != nil {
			t.log.Error("grpctransport: server stopped", zap.Error(err))
		}
	}()
	t.log.Info("grpctransport: listening", zap.Stringer("addr", t.lis.Addr()), zap.Bool("tls", t.serverTLS != nil))
	return t, nil
}

// Addr returns the address the transport listens on (with the real port
// when ListenAddr had port 0).
func (t *GRPCTransport) Addr() string { return t.lis.Addr().String() }

// InboundStats returns the state of the inbound connection limits.
func (t *GRPCTransport) InboundStats() InboundStats { return t.limits.stats() }

// Send implements transport.Transport. It takes ownership of msgs: the
// caller must not modify them afterwards (they are marshalled later, on the
// peer's goroutine, to keep that work off the raft Ready loop).
func (t *GRPCTransport) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return
	}
	for _, m := range msgs {
		if m == nil {
			continue
		}
		p := t.peers[m.GetTo()]
		if p == nil {
			t.log.Debug("grpctransport: message to unknown peer dropped", zap.Uint64("to", m.GetTo()))
			t.dropped(m)
			continue
		}
		select {
		case p.q <- m:
		default:
			t.log.Debug("grpctransport: peer queue full, message dropped", zap.Uint64("to", m.GetTo()))
			t.dropped(m)
		}
	}
}

// dropped reports a message that will not be delivered.
func (t *GRPCTransport) dropped(m *raftpb.Message) {
	if m.GetType() == raftpb.MessageType_MsgSnap {
		t.rep.Snapshot(m.GetTo(), raft.SnapshotFailure)
		return
	}
	t.rep.Unreachable(m.GetTo())
}

// AddPeer implements transport.Transport. Adding a known peer with a new
// address redials it there; with the same address it is a no-op. IDs that
// were removed are refused (raft never reuses an ID).
func (t *GRPCTransport) AddPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.stopped:
		return
	case id == 0 || id == t.cfg.ID:
		t.log.Warn("grpctransport: AddPeer ignored: invalid peer id", zap.Uint64("peer", id))
		return
	case t.removed[id]:
		t.log.Warn("grpctransport: AddPeer ignored: peer was removed", zap.Uint64("peer", id))
		return
	}
	if old := t.peers[id]; old != nil {
		if old.addr == addr {
			return
		}
		// The old goroutine exits on its own; waiting here would hold mu.
		old.cancel()
		delete(t.peers, id)
		t.retired = append(t.retired, old)
	}
	p, err := newPeerConn(t, id, addr)
	if err != nil {
		t.log.Error("grpctransport: AddPeer failed", zap.Uint64("peer", id), zap.String("addr", addr), zap.Error(err))
		return
	}
	t.peers[id] = p
	t.log.Info("grpctransport: peer added", zap.Uint64("peer", id), zap.String("addr", addr))
}

// RemovePeer implements transport.Transport. It waits, bounded, for the
// peer's goroutine; the peer's inbound stream is closed on its next frame.
func (t *GRPCTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	if !t.stopped {
		t.removed[id] = true
	}
	t.mu.Unlock()
	if p != nil {
		p.cancel()
		t.waitBounded(p.done, "peer goroutine")
		t.log.Info("grpctransport: peer removed", zap.Uint64("peer", id))
	}
}

func (t *GRPCTransport) isPeer(id uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return !t.stopped && t.peers[id] != nil
}

// Stop implements transport.Transport.
func (t *GRPCTransport) Stop() {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.stopped = true
		peers := t.retired
		for _, p := range t.peers {
			peers = append(peers, p)
		}
		t.peers = make(map[uint64]*peerConn)
		t.retired = nil
		t.mu.Unlock()

		t.cancel()
		// srv.Stop closes the listener and every connection, cancels the
		// handlers' contexts and (WaitForHandlers) waits for them.
		srvDone := make(chan struct{})
		go func() { t.srv.Stop(); close(srvDone) }()
		t.waitBounded(srvDone, "gRPC server handlers")
		t.waitBounded(t.serveDone, "gRPC Serve")
		for _, p := range peers {
			t.waitBounded(p.done, "peer goroutine")
		}
		t.rep.Close()
		t.log.Info("grpctransport: stopped")
	})
}

func (t *GRPCTransport) waitBounded(done <-chan struct{}, what string) {
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.log.Error("grpctransport: gave up waiting; a Handler is ignoring context cancellation", zap.String("waiting_for", what))
	}
}
