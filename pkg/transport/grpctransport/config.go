package grpctransport

import (
	"errors"
	"fmt"
	"time"

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

	// DefaultMaxInboundConns bounds the inbound connections open at once.
	// A node needs one per other member (plus, briefly, a redialling
	// member's replacement); 64 covers any sane cluster many times over
	// while a stranger's connections cost at most 64 sockets and their
	// gRPC buffers.
	DefaultMaxInboundConns = 64
	// DefaultMaxInboundConnsPerIP bounds the inbound connections from one
	// IP: a member needs one, more during a redial; one host cannot take
	// all of DefaultMaxInboundConns.
	DefaultMaxInboundConnsPerIP = 16
	// DefaultHandshakeTimeout bounds the time from accepting a connection
	// to a finished TLS handshake and HTTP/2 preface (gRPC's connection
	// timeout; 120 s by default there). A real peer needs one or two round
	// trips, milliseconds even across a continent; 10 s leaves slack for a
	// loaded node and still frees the slot of a silent stranger soon.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout closes an established connection that has had no
	// stream for this long (gRPC MaxConnectionIdle, a GOAWAY). A real peer
	// always holds its one stream open and reopens it within maxRedial
	// (2 s) of a break, so only a connection that opened none, or a peer
	// refused for minutes, is ever idle this long; gRPC pings do not count
	// as activity, so pinging does not keep a stranger's connection.
	DefaultIdleTimeout = 30 * time.Second
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
	// MaxInboundConns is the most inbound connections open at once, from
	// all addresses; MaxInboundConnsPerIP the most from one remote IP. A
	// connection over either is closed on arrival, before the TLS
	// handshake, counted (InboundStats) and logged at most once per IP per
	// 30 s. 0 means DefaultMaxInboundConns and DefaultMaxInboundConnsPerIP.
	// Outbound connections (to peers) do not count.
	MaxInboundConns      int
	MaxInboundConnsPerIP int
	// HandshakeTimeout is how long an inbound connection may take to finish
	// the TLS handshake (with TLS) and send the HTTP/2 preface before it is
	// closed; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout is how long an established inbound connection may go
	// without a stream before it is closed; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
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
	if out.MaxInboundConns < 0 || out.MaxInboundConnsPerIP < 0 || out.HandshakeTimeout < 0 || out.IdleTimeout < 0 {
		return out, errors.New("grpctransport: MaxInboundConns, MaxInboundConnsPerIP, HandshakeTimeout and IdleTimeout must not be negative")
	}
	if out.MaxInboundConns == 0 {
		out.MaxInboundConns = DefaultMaxInboundConns
	}
	if out.MaxInboundConnsPerIP == 0 {
		out.MaxInboundConnsPerIP = DefaultMaxInboundConnsPerIP
	}
	if out.HandshakeTimeout == 0 {
		out.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if out.IdleTimeout == 0 {
		out.IdleTimeout = DefaultIdleTimeout
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
