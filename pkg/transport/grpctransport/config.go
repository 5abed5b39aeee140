package grpctransport

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/transport"
)

// Defaults for the zero values of GRPCConfig's tuning fields.
const (
	// DefaultQueueSize matches etcd's rafthttp stream buffer: enough for a
	// burst of appends to a slow follower, small enough that a dead peer's
	// queue holds little memory.
	DefaultQueueSize = 4096
	// DefaultMaxMessageBytes bounds one Frame on the wire. It must exceed
	// raft's MaxSizePerMsg (typically 1 MiB) plus one maximal entry.
	DefaultMaxMessageBytes = 16 << 20
	// DefaultMaxSnapshotBytes bounds a reassembled snapshot.
	DefaultMaxSnapshotBytes = 1 << 30
	// minMaxMessageBytes keeps room for a snapshot chunk's header next to its
	// data (see chunkSize).
	minMaxMessageBytes = 16 << 10
	// maxChunkBytes is the snapshot chunk size when MaxMessageBytes allows:
	// large enough to amortise per-frame cost, small enough that a heartbeat
	// queued behind a snapshot waits only milliseconds.
	maxChunkBytes = 1 << 20
)

// TLSConfig enables mutual TLS. All files are PEM. Every node's certificate
// must be signed by the CA in CAFile and must name the node: a DNS SAN (or
// CommonName) NodeName(id). It is used both to serve and to dial.
type TLSConfig struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// GRPCConfig configures NewGRPC.
type GRPCConfig struct {
	// ID is this node's raft ID (non-zero). It is sent in every frame.
	ID uint64
	// ListenAddr is the host:port to listen on; port 0 picks a free port
	// (see GRPCTransport.Addr).
	ListenAddr string
	// Handler receives inbound messages and send outcomes. Required.
	Handler transport.Handler
	// TLS enables mutual TLS when non-nil; otherwise connections are
	// plaintext and frame sender IDs are trusted.
	TLS *TLSConfig
	// QueueSize is the per-peer queue length in messages; 0 means
	// DefaultQueueSize. A full queue drops and reports unreachable.
	QueueSize int
	// MaxMessageBytes is the largest Frame accepted or sent, in bytes (gRPC
	// MaxRecvMsgSize). A single raft message larger than this, less a small
	// framing allowance, is dropped and reported unreachable; MsgSnap is
	// chunked to fit. 0 means DefaultMaxMessageBytes; minimum 16 KiB.
	MaxMessageBytes int
	// MaxSnapshotBytes is the largest snapshot (snapshot data) the receiver
	// reassembles, in bytes; 0 means DefaultMaxSnapshotBytes.
	MaxSnapshotBytes int64
	// Logger receives the transport's logs; nil means no logging.
	Logger *zap.Logger
}

func (c *GRPCConfig) withDefaults() (GRPCConfig, error) {
	out := *c
	if out.ID == 0 {
		return out, errors.New("grpctransport: ID must be non-zero")
	}
	if out.Handler == nil {
		return out, errors.New("grpctransport: Handler is required")
	}
	if out.ListenAddr == "" {
		return out, errors.New("grpctransport: ListenAddr is required")
	}
	if out.QueueSize < 0 || out.MaxMessageBytes < 0 || out.MaxSnapshotBytes < 0 {
		return out, errors.New("grpctransport: QueueSize, MaxMessageBytes and MaxSnapshotBytes must not be negative")
	}
	if out.QueueSize == 0 {
		out.QueueSize = DefaultQueueSize
	}
	if out.MaxMessageBytes == 0 {
		out.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if out.MaxMessageBytes < minMaxMessageBytes {
		return out, fmt.Errorf("grpctransport: MaxMessageBytes %d is below the minimum %d", out.MaxMessageBytes, minMaxMessageBytes)
	}
	if out.MaxSnapshotBytes == 0 {
		out.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out, nil
}

// chunkSize is the snapshot data carried per chunk. Half the frame limit
// leaves the other half for chunk 0's message header, which holds the
// snapshot metadata (its ConfState grows with the cluster, but stays tiny).
func (c *GRPCConfig) chunkSize() int {
	return min(maxChunkBytes, c.MaxMessageBytes/2)
}

// maxBatchBytes is the most message bytes put into one batch Frame; the rest
// of MaxMessageBytes is slack for per-message framing (a tag and a length,
// at most 11 bytes each) and the Frame header.
func (c *GRPCConfig) maxBatchBytes() int {
	return c.MaxMessageBytes - c.MaxMessageBytes/16
}
