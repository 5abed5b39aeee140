package grpctransport_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// counter is a Handler that only counts.
type counter struct {
	n    atomic.Int64
	lost atomic.Int64
}

func (c *counter) Process(context.Context, *raftpb.Message) error { c.n.Add(1); return nil }
func (c *counter) ReportUnreachable(uint64)                       { c.lost.Add(1) }
func (c *counter) ReportSnapshot(uint64, raft.SnapshotStatus)     {}

// BenchmarkLoopbackMessages measures raft messages per second from one node
// to another over loopback gRPC: MsgApp messages with one 256-byte entry,
// sent in Ready-sized groups of 64, with at most 2048 in flight so the
// queue never overflows.
func BenchmarkLoopbackMessages(b *testing.B) {
	send, recv := &counter{}, &counter{}
	mk := func(id uint64, h *counter) *grpctransport.GRPCTransport {
		tr, err := grpctransport.NewGRPC(grpctransport.GRPCConfig{ID: id, ListenAddr: "127.0.0.1:0", Handler: h, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(tr.Stop)
		return tr
	}
	t1, t2 := mk(1, send), mk(2, recv)
	t1.AddPeer(2, t2.Addr())
	t2.AddPeer(1, t1.Addr())

	const group, window = 64, 2048
	msgs := make([]*raftpb.Message, group)
	for i := range msgs {
		msgs[i] = &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
			Term: proto.Uint64(2), Index: proto.Uint64(uint64(i)), Commit: proto.Uint64(1),
			Entries: []*raftpb.Entry{{Term: proto.Uint64(2), Index: proto.Uint64(uint64(i + 1)), Data: make([]byte, 256)}}}
	}
	// Warm up the stream.
	t1.Send(msgs[:1])
	for recv.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	base := recv.n.Load()
	b.ResetTimer()
	start := time.Now()
	sent := int64(0)
	for sent < int64(b.N) {
		for sent-(recv.n.Load()-base) > window {
			time.Sleep(50 * time.Microsecond)
		}
		n := min(int64(group), int64(b.N)-sent)
		t1.Send(msgs[:n])
		sent += n
	}
	for recv.n.Load()-base < int64(b.N) {
		if send.lost.Load() > 0 {
			b.Fatalf("%d messages reported unreachable", send.lost.Load())
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
