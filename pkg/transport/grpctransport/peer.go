package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport/transportpb"
)

const (
	// keepaliveTime is how often an idle connection is pinged, so that a
	// peer that vanished without closing TCP is noticed.
	keepaliveTime = 10 * time.Second
	// keepaliveTimeout is how long a ping may go unanswered before the
	// connection is considered dead.
	keepaliveTimeout = 5 * time.Second
	// maxStreamsPerConn is the server's HTTP/2 concurrent stream limit.
	maxStreamsPerConn = 8
	// Fixed HTTP/2 flow-control windows, per stream and per connection.
	// With gRPC's defaults (64 KiB, grown by BDP estimation) the receiver
	// sends a WINDOW_UPDATE every few batches and the estimator a PING
	// with many data frames: extra frames, writes and wake-ups on every
	// node for each Raft round trip. Setting the windows turns both off;
	// 4 MiB in flight per stream still fills a WAN link of ~40 MB/s at a
	// 100 ms round trip, enough for snapshot transfers.
	streamWindow = 4 << 20
	connWindow   = 8 << 20
	// Redial backoff of the per-peer stream (and of gRPC's own reconnects):
	// short enough that a restarted peer is reached again well within a
	// typical 1 s election timeout, capped so a dead peer costs little.
	minRedial = 50 * time.Millisecond
	maxRedial = 2 * time.Second
	// A stream that lived this long resets the backoff.
	stableSession = time.Second
	// maxBatchMsgs bounds how many queued messages go into one Frame.
	maxBatchMsgs = 1024
)

// peerConn is the outbound side towards one peer: its queue, its client
// connection and the goroutine that owns the stream.
type peerConn struct {
	t    *GRPCTransport
	id   uint64
	addr string
	log  *zap.Logger
	q    chan *raftpb.Message
	cc   *grpc.ClientConn

	ctx    context.Context // cancelled by RemovePeer, AddPeer (new address) or Stop
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	// Reused between batches by run's goroutine only: gRPC has encoded the
	// Frame by the time Send returns.
	buf      []byte
	payloads [][]byte
}

func newPeerConn(t *GRPCTransport, id uint64, addr string) (*peerConn, error) {
	creds := insecure.NewCredentials()
	if t.serverTLS != nil {
		creds = credentials.NewTLS(t.peerTLS(id))
	}
	// passthrough: dial exactly the address we were given, no resolver.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(t.cfg.MaxMessageBytes),
			grpc.MaxCallRecvMsgSize(t.cfg.MaxMessageBytes)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: minRedial, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxRedial},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(t.ctx)
	p := &peerConn{
		t:      t,
		id:     id,
		addr:   addr,
		log:    t.log.With(zap.Uint64("peer", id), zap.String("peer_addr", addr)),
		q:      make(chan *raftpb.Message, t.cfg.QueueSize),
		cc:     cc,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go p.run()
	return p, nil
}

// run keeps one stream open to the peer, redialling with backoff.
func (p *peerConn) run() {
	defer close(p.done)
	defer func() {
		if err := p.cc.Close(); err != nil {
			p.log.Debug("grpctransport: close connection", zap.Error(err))
		}
	}()
	delay := minRedial
	failing := false
	for {
		start := time.Now()
		err := p.session()
		if p.ctx.Err() != nil {
			return
		}
		// Messages written just before the break may be lost without an
		// error from Send; tell raft so that it probes the peer again.
		p.t.rep.Unreachable(p.id)
		if time.Since(start) >= stableSession {
			delay = minRedial
			failing = false
		}
		// Log the first failure loudly, the retries of a dead peer quietly.
		if !failing {
			p.log.Warn("grpctransport: stream to peer broken; redialling", zap.Error(err), zap.Duration("backoff", delay))
			failing = true
		} else {
			p.log.Debug("grpctransport: redial failed", zap.Error(err), zap.Duration("backoff", delay))
		}
		if !p.idle(delay) {
			return
		}
		delay = min(2*delay, maxRedial)
	}
}

// idle waits d while dropping (and reporting) whatever is queued: raft
// messages are only useful fresh, and raft resends after the reports.
func (p *peerConn) idle(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case m := <-p.q:
			p.t.dropped(m)
		}
	}
}

// pendingSnapshots are transfers sent on the current stream and not yet
// acknowledged. Shared by the session and its ack reader.
type pendingSnapshots struct {
	mu   sync.Mutex
	seqs map[uint64]bool
}

func (ps *pendingSnapshots) add(seq uint64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.seqs[seq] = true
}

func (ps *pendingSnapshots) take(seq uint64) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ok := ps.seqs[seq]
	delete(ps.seqs, seq)
	return ok
}

func (ps *pendingSnapshots) takeAll() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := len(ps.seqs)
	ps.seqs = make(map[uint64]bool)
	return n
}

// session opens one stream and pumps the queue into it until it breaks or
// the peer is stopped. It always returns a non-nil error.
func (p *peerConn) session() (err error) {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	if id := p.t.clusterID(); id != 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, clusterIDKey, strconv.FormatUint(id, 16))
	}
	stream, err := transportpb.NewRaftClient(p.cc).Stream(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	pending := &pendingSnapshots{seqs: make(map[uint64]bool)}
	recvErr := make(chan error, 1)
	go func() { recvErr <- p.readAcks(stream, pending) }()
	defer func() {
		cancel()
		<-recvErr // buffered; readAcks returns once ctx is cancelled
		// Unacknowledged snapshots may never have been stepped.
		for range pending.takeAll() {
			p.t.rep.Snapshot(p.id, raft.SnapshotFailure)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			recvErr <- err // for the deferred wait
			if err == nil {
				err = errors.New("peer closed the stream")
			}
			return err
		case m := <-p.q:
			if err := p.sendFrom(stream, m, pending); err != nil {
				p.t.rep.Unreachable(p.id)
				if errors.Is(err, io.EOF) {
					// The stream is gone; its status comes from Recv.
					if rerr := <-recvErr; rerr != nil {
						err = rerr
					}
					recvErr <- err
				}
				return err
			}
		}
	}
}

// readAcks turns snapshot acknowledgements into ReportSnapshot calls until
// the stream ends. It returns nil on a clean end of stream.
func (p *peerConn) readAcks(stream transportpb.Raft_StreamClient, pending *pendingSnapshots) error {
	for {
		ack, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !pending.take(ack.GetSeq()) {
			p.log.Warn("grpctransport: acknowledgement for an unknown snapshot transfer", zap.Uint64("seq", ack.GetSeq()))
			continue
		}
		if ack.GetError() != "" {
			p.log.Warn("grpctransport: peer refused snapshot", zap.String("error", ack.GetError()))
			p.t.rep.Snapshot(p.id, raft.SnapshotFailure)
			continue
		}
		p.t.rep.Snapshot(p.id, raft.SnapshotFinish)
	}
}

// sendFrom writes first and whatever else is queued right now, batching
// consecutive ordinary messages into Frames and sending a MsgSnap as chunks.
func (p *peerConn) sendFrom(stream transportpb.Raft_StreamClient, first *raftpb.Message, pending *pendingSnapshots) error {
	maxBytes := p.t.cfg.maxBatchBytes()
	marshal := proto.MarshalOptions{UseCachedSize: true}
	p.buf, p.payloads = p.buf[:0], p.payloads[:0]
	flush := func() error {
		if len(p.payloads) == 0 {
			return nil
		}
		f := &transportpb.Frame{From: p.t.cfg.ID, Body: &transportpb.Frame_Batch{Batch: &transportpb.Batch{Messages: p.payloads}}}
		err := stream.Send(f)
		p.buf, p.payloads = p.buf[:0], p.payloads[:0]
		return err
	}
	m := first
	for sent := 0; ; sent++ {
		if m.GetType() == raftpb.MessageType_MsgSnap {
			if err := flush(); err != nil {
				return err
			}
			if err := p.sendSnapshot(stream, m, pending); err != nil {
				return err
			}
		} else if size := proto.Size(m); size > maxBytes {
			p.log.Error("grpctransport: message larger than MaxMessageBytes dropped", zap.Int("bytes", size), zap.Stringer("type", m.GetType()))
			p.t.dropped(m)
		} else {
			if len(p.buf)+size > maxBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			off := len(p.buf)
			var err error
			if p.buf, err = marshal.MarshalAppend(p.buf, m); err != nil {
				p.log.Error("grpctransport: marshal message", zap.Error(err))
				p.buf = p.buf[:off]
				p.t.dropped(m)
			} else {
				// Earlier payloads may alias a previous array if append
				// grew p.buf; that array stays valid and unchanged.
				p.payloads = append(p.payloads, p.buf[off:len(p.buf):len(p.buf)])
			}
		}
		if sent+1 >= maxBatchMsgs {
			return flush()
		}
		select {
		case m = <-p.q:
		default:
			return flush()
		}
	}
}

// sendSnapshot writes MsgSnap m as chunks. Its outcome is reported when the
// peer acknowledges it, or as a failure when the stream ends first.
func (p *peerConn) sendSnapshot(stream transportpb.Raft_StreamClient, m *raftpb.Message, pending *pendingSnapshots) error {
	seq := p.t.snapSeq.Add(1)
	chunks, err := splitSnapshot(m, seq, p.t.cfg.chunkSize())
	if err != nil {
		p.log.Error("grpctransport: cannot send snapshot", zap.Error(err))
		p.t.rep.Snapshot(p.id, raft.SnapshotFailure)
		return nil
	}
	pending.add(seq)
	start := time.Now()
	for _, c := range chunks {
		if err := stream.Send(&transportpb.Frame{From: p.t.cfg.ID, Body: &transportpb.Frame_Chunk{Chunk: c}}); err != nil {
			return fmt.Errorf("send snapshot chunk %d/%d: %w", c.GetIndex(), len(chunks), err)
		}
	}
	p.log.Info("grpctransport: snapshot sent", zap.Uint64("seq", seq), zap.Int("bytes", len(m.GetSnapshot().GetData())),
		zap.Int("chunks", len(chunks)), zap.Duration("took", time.Since(start)))
	return nil
}
