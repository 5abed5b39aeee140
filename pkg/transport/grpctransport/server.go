package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/transportpb"
)

// server implements transportpb.RaftServer for one GRPCTransport.
type server struct {
	// UnsafeRaftServer: a method added to the service must be implemented
	// here before the build passes, rather than answer an error at run time.
	transportpb.UnsafeRaftServer
	t *GRPCTransport
}

// Stream receives one peer's frames until the peer closes the stream, the
// transport stops, or a frame is invalid.
func (s *server) Stream(stream transportpb.Raft_StreamServer) error {
	ctx := stream.Context()
	log := s.t.log
	if p, ok := peer.FromContext(ctx); ok {
		log = log.With(zap.Stringer("remote", p.Addr))
	}
	in := &inbound{t: s.t, asm: assembler{maxBytes: s.t.cfg.MaxSnapshotBytes}}
	if s.t.serverTLS != nil {
		id, err := tlsPeerID(ctx)
		if err != nil {
			log.Warn("grpctransport: rejected stream: peer certificate", zap.Error(err))
			return status.Error(codes.PermissionDenied, err.Error())
		}
		in.certID = id
	}
	if err := s.t.checkCluster(ctx); err != nil {
		log.Error("grpctransport: rejected stream from another cluster", zap.Error(err))
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	for {
		f, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			// gRPC enforces MaxRecvMsgSize inside Recv: an oversized frame
			// surfaces here as ResourceExhausted.
			log.Warn("grpctransport: inbound stream failed", zap.Uint64("from", in.from), zap.Error(err))
			return err
		}
		ack, err := in.handleFrame(ctx, f)
		if err != nil {
			log.Warn("grpctransport: rejected frame", zap.Uint64("frame_from", f.GetFrom()), zap.Uint64("stream_from", in.from), zap.Error(err))
			return err
		}
		if ack != nil {
			if err := stream.Send(ack); err != nil {
				return err
			}
		}
	}
}

// clusterIDKey is the stream metadata that carries the sender's cluster ID
// (hexadecimal), when it knows it.
const clusterIDKey = "raftdss-cluster-id"

// clusterID is this node's cluster ID, 0 when unknown (the Handler is not a
// transport.ClusterMember, or does not know it yet).
func (t *GRPCTransport) clusterID() uint64 {
	if c, ok := t.cfg.Handler.(transport.ClusterMember); ok {
		return c.ClusterID()
	}
	return 0
}

// checkCluster refuses a stream whose sender belongs to another cluster than
// this node. Either side not knowing its cluster (0, no metadata) passes.
func (t *GRPCTransport) checkCluster(ctx context.Context) error {
	local := t.clusterID()
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(clusterIDKey)
	if local == 0 || len(vals) == 0 {
		return nil
	}
	remote, err := strconv.ParseUint(vals[0], 16, 64)
	if err != nil {
		return fmt.Errorf("bad cluster ID %q", vals[0])
	}
	if remote != 0 && remote != local {
		return fmt.Errorf("the peer belongs to cluster %016x, this node to cluster %016x: a node started "+
			"without joining created a cluster of its own, or two clusters' nodes are wired together", remote, local)
	}
	return nil
}

// tlsPeerID returns the node ID bound to the client certificate of ctx's
// connection.
func tlsPeerID(ctx context.Context) (uint64, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return 0, errors.New("no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return 0, errors.New("connection has no client certificate")
	}
	return certNodeID(info.State.PeerCertificates[0])
}

// inbound is the receiving state of one stream. Only the stream's own
// goroutine uses it.
type inbound struct {
	t      *GRPCTransport
	certID uint64 // node bound to the client certificate; 0 without TLS
	from   uint64 // node ID pinned by the first frame
	asm    assembler
}

// handleFrame validates f and steps its messages. It returns an Ack to send
// when a snapshot was completed, and a gRPC status error when the frame is
// invalid and the stream must end.
func (in *inbound) handleFrame(ctx context.Context, f *transportpb.Frame) (*transportpb.Ack, error) {
	if err := in.checkSender(f.GetFrom()); err != nil {
		return nil, err
	}
	switch body := f.GetBody().(type) {
	case *transportpb.Frame_Batch:
		msgs, err := in.decodeBatch(body.Batch.GetMessages())
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			in.process(ctx, m)
		}
		return nil, nil
	case *transportpb.Frame_Chunk:
		m, err := in.asm.add(body.Chunk)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if m == nil {
			return nil, nil
		}
		if err := in.checkMessage(m); err != nil {
			return nil, err
		}
		ack := &transportpb.Ack{Seq: body.Chunk.GetSeq()}
		if err := in.t.cfg.Handler.Process(ctx, m); err != nil {
			ack.Error = err.Error()
			in.t.log.Info("grpctransport: handler refused snapshot", zap.Uint64("from", in.from), zap.Error(err))
		}
		return ack, nil
	default:
		return nil, status.Error(codes.InvalidArgument, "frame has no body")
	}
}

// checkSender enforces identity: the first frame pins the stream's node ID
// (which must match the certificate under TLS), later frames must repeat it,
// and the node must be a current peer.
func (in *inbound) checkSender(from uint64) error {
	switch {
	case from == 0:
		return status.Error(codes.InvalidArgument, "frame without sender ID")
	case in.from == 0 && in.certID != 0 && from != in.certID:
		return status.Errorf(codes.PermissionDenied, "frame claims node %d, certificate is bound to node %d", from, in.certID)
	case in.from != 0 && from != in.from:
		return status.Errorf(codes.InvalidArgument, "sender changed from %d to %d mid-stream", in.from, from)
	}
	in.from = from
	// Checked on every frame, so RemovePeer takes effect on open streams.
	if !in.t.isPeer(from) {
		return status.Errorf(codes.PermissionDenied, "node %d is not a peer", from)
	}
	return nil
}

// decodeBatch decodes and checks every message before any is stepped, so a
// bad frame is rejected whole.
func (in *inbound) decodeBatch(raw [][]byte) ([]*raftpb.Message, error) {
	msgs := make([]*raftpb.Message, len(raw))
	for i, b := range raw {
		m := new(raftpb.Message)
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "message %d: %v", i, err)
		}
		if m.GetType() == raftpb.MessageType_MsgSnap {
			// Snapshots must come chunked, where MaxSnapshotBytes applies.
			return nil, status.Errorf(codes.InvalidArgument, "message %d: MsgSnap outside a snapshot transfer", i)
		}
		if err := in.checkMessage(m); err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

func (in *inbound) checkMessage(m *raftpb.Message) error {
	if m.GetFrom() != in.from {
		return status.Errorf(codes.PermissionDenied, "message From %d on the stream of node %d", m.GetFrom(), in.from)
	}
	if m.GetTo() != in.t.cfg.ID {
		return status.Errorf(codes.InvalidArgument, "message To %d delivered to node %d", m.GetTo(), in.t.cfg.ID)
	}
	return nil
}

// process steps m. A refusal by the raft node (e.g. it is stopping) is not
// the peer's fault and does not end the stream.
func (in *inbound) process(ctx context.Context, m *raftpb.Message) {
	if err := in.t.cfg.Handler.Process(ctx, m); err != nil && ctx.Err() == nil {
		in.t.log.Debug("grpctransport: handler refused message", zap.Uint64("from", in.from), zap.Stringer("type", m.GetType()), zap.Error(err))
	}
}
