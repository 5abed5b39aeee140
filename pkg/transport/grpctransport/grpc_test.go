package grpctransport_test

import (
	"bytes"
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
	"github.com/raftdss/dss/pkg/transport/internal/transporttest"
	"github.com/raftdss/dss/pkg/transport/transportpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

// node starts a transport for id on a free loopback port.
func node(t testing.TB, id uint64, h *transporttest.Recorder, mod func(*grpctransport.GRPCConfig)) *grpctransport.GRPCTransport {
	t.Helper()
	cfg := grpctransport.GRPCConfig{ID: id, ListenAddr: "127.0.0.1:0", Handler: h}
	if tt, ok := t.(*testing.T); ok {
		cfg.Logger = zaptest.NewLogger(tt)
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := grpctransport.NewGRPC(cfg)
	if err != nil {
		t.Fatalf("NewGRPC(%d): %v", id, err)
	}
	t.Cleanup(tr.Stop)
	return tr
}

func indexes(msgs []*raftpb.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.GetIndex()
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	h := transporttest.NewRecorder()
	for name, cfg := range map[string]grpctransport.GRPCConfig{
		"zero id":        {ListenAddr: "127.0.0.1:0", Handler: h},
		"no handler":     {ID: 1, ListenAddr: "127.0.0.1:0"},
		"no addr":        {ID: 1, Handler: h},
		"tiny frames":    {ID: 1, ListenAddr: "127.0.0.1:0", Handler: h, MaxMessageBytes: 100},
		"negative":       {ID: 1, ListenAddr: "127.0.0.1:0", Handler: h, QueueSize: -1},
		"negative conns": {ID: 1, ListenAddr: "127.0.0.1:0", Handler: h, MaxInboundConnsPerIP: -1},
		"negative idle":  {ID: 1, ListenAddr: "127.0.0.1:0", Handler: h, IdleTimeout: -time.Second},
		"bad listen":     {ID: 1, ListenAddr: "256.0.0.1:0", Handler: h},
		"missing certs":  {ID: 1, ListenAddr: "127.0.0.1:0", Handler: h, TLS: &grpctransport.TLSConfig{CertFile: "/nonexistent"}},
	} {
		if tr, err := grpctransport.NewGRPC(cfg); err == nil {
			tr.Stop()
			t.Errorf("%s: NewGRPC succeeded", name)
		}
	}
}

func TestThreeNodesExchangeMessages(t *testing.T) {
	recs := map[uint64]*transporttest.Recorder{}
	trs := map[uint64]*grpctransport.GRPCTransport{}
	for id := uint64(1); id <= 3; id++ {
		recs[id] = transporttest.NewRecorder()
		trs[id] = node(t, id, recs[id], nil)
	}
	for id, tr := range trs {
		for peer, ptr := range trs {
			if peer != id {
				tr.AddPeer(peer, ptr.Addr())
			}
		}
	}
	const n = 300
	for from, tr := range trs {
		var msgs []*raftpb.Message
		for i := uint64(0); i < n; i++ {
			for to := range trs {
				if to != from {
					msgs = append(msgs, transporttest.Msg(from, to, i))
				}
			}
		}
		tr.Send(msgs)
	}
	for id, rec := range recs {
		got := rec.WaitMessages(t, 2*n, wait)
		// Per sender, order is preserved.
		bySender := map[uint64][]uint64{}
		for _, m := range got {
			if m.GetTo() != id {
				t.Fatalf("node %d got a message for %d", id, m.GetTo())
			}
			bySender[m.GetFrom()] = append(bySender[m.GetFrom()], m.GetIndex())
		}
		for from, idx := range bySender {
			if len(idx) != n || !slices.IsSorted(idx) {
				t.Fatalf("node %d from %d: %d messages, sorted=%v", id, from, len(idx), slices.IsSorted(idx))
			}
		}
		if e := got[0].GetEntries()[0]; string(e.GetData()) != "payload" {
			t.Fatalf("entry data %q", e.GetData())
		}
	}
}

func TestSnapshotChunkedAndReported(t *testing.T) {
	// Frames are limited to 2 MiB, so the 5 MiB snapshot can only arrive
	// in chunks.
	small := func(c *grpctransport.GRPCConfig) { c.MaxMessageBytes = 2 << 20 }
	r1, r2 := transporttest.NewRecorder(), transporttest.NewRecorder()
	t1, t2 := node(t, 1, r1, small), node(t, 2, r2, small)
	t1.AddPeer(2, t2.Addr())
	t2.AddPeer(1, t1.Addr())

	snap := transporttest.Snap(1, 2, 5<<20)
	want := bytes.Clone(snap.GetSnapshot().GetData())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, 1), snap, transporttest.Msg(1, 2, 2)})
	got := r2.WaitMessages(t, 3, wait)
	if got[1].GetType() != raftpb.MessageType_MsgSnap || !bytes.Equal(got[1].GetSnapshot().GetData(), want) {
		t.Fatalf("snapshot did not arrive intact (type %v, %d bytes)", got[1].GetType(), len(got[1].GetSnapshot().GetData()))
	}
	if !proto.Equal(got[1].GetSnapshot().GetMetadata(), snap.GetSnapshot().GetMetadata()) {
		t.Fatal("snapshot metadata changed in transit")
	}
	if !slices.Equal(indexes([]*raftpb.Message{got[0], got[2]}), []uint64{1, 2}) {
		t.Fatal("messages around the snapshot out of order")
	}
	r1.WaitFor(t, wait, "SnapshotFinish", func() bool {
		return slices.Equal(r1.Snapshots(2), []raft.SnapshotStatus{raft.SnapshotFinish})
	})
	if !bytes.Equal(snap.GetSnapshot().GetData(), want) {
		t.Fatal("sender's message was modified")
	}

	// A snapshot over the receiver's limit fails and is reported.
	r3 := transporttest.NewRecorder()
	t3 := node(t, 3, r3, func(c *grpctransport.GRPCConfig) { c.MaxSnapshotBytes = 1 << 20 })
	t3.AddPeer(1, t1.Addr())
	t1.AddPeer(3, t3.Addr())
	t1.Send([]*raftpb.Message{transporttest.Snap(1, 3, 2<<20)})
	r1.WaitFor(t, wait, "SnapshotFailure", func() bool {
		return slices.Equal(r1.Snapshots(3), []raft.SnapshotStatus{raft.SnapshotFailure})
	})
	if len(r3.Messages()) != 0 {
		t.Fatal("oversized snapshot was stepped")
	}
}

func TestUnknownPeerAndQueueOverflow(t *testing.T) {
	r1, r2 := transporttest.NewRecorder(), transporttest.NewRecorder()
	t1 := node(t, 1, r1, func(c *grpctransport.GRPCConfig) { c.QueueSize = 2 })
	t2 := node(t, 2, r2, nil)
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 7, 1), transporttest.Snap(1, 7, 10)})
	r1.WaitFor(t, wait, "unknown peer reports", func() bool {
		return r1.Unreachable(7) > 0 && len(r1.Snapshots(7)) == 1
	})

	t2.AddPeer(1, t1.Addr())
	r2.Block = make(chan struct{})
	t1.AddPeer(2, t2.Addr())
	var msgs []*raftpb.Message
	for i := uint64(0); i < 5000; i++ {
		msgs = append(msgs, transporttest.Msg(1, 2, i))
	}
	t1.Send(msgs)
	r1.WaitFor(t, wait, "queue overflow report", func() bool { return r1.Unreachable(2) > 0 })
	close(r2.Block)
}

func TestRedialAfterPeerRestart(t *testing.T) {
	r1, r2 := transporttest.NewRecorder(), transporttest.NewRecorder()
	t1, t2 := node(t, 1, r1, nil), node(t, 2, r2, nil)
	addr := t2.Addr()
	t1.AddPeer(2, addr)
	t2.AddPeer(1, t1.Addr())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	r2.WaitMessages(t, 1, wait)

	t2.Stop()
	t2.Stop() // idempotent
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, 2)})
	r1.WaitFor(t, wait, "unreachable while down", func() bool { return r1.Unreachable(2) > 0 })

	r2b := transporttest.NewRecorder()
	t2b := node(t, 2, r2b, func(c *grpctransport.GRPCConfig) { c.ListenAddr = addr })
	t2b.AddPeer(1, t1.Addr())
	// Messages sent while the stream is down are dropped; keep sending
	// until one gets through on the redialled stream.
	deadline := time.Now().Add(wait)
	for i := uint64(10); len(r2b.Messages()) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no message reached the restarted peer")
		}
		t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, i)})
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRemovePeerRejectsItsFrames(t *testing.T) {
	r1, r2 := transporttest.NewRecorder(), transporttest.NewRecorder()
	t1, t2 := node(t, 1, r1, nil), node(t, 2, r2, nil)
	t1.AddPeer(2, t2.Addr())
	t2.AddPeer(1, t1.Addr())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	r2.WaitMessages(t, 1, wait)
	t2.RemovePeer(1)
	t2.RemovePeer(1)
	t2.AddPeer(1, t1.Addr()) // removed IDs stay removed
	for i := uint64(2); i < 20; i++ {
		t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, i)})
		time.Sleep(5 * time.Millisecond)
	}
	r1.WaitFor(t, wait, "unreachable after removal", func() bool { return r1.Unreachable(2) > 0 })
	if n := len(r2.Messages()); n != 1 {
		t.Fatalf("removed peer's messages processed: %d", n)
	}
}

// rawStream opens a Stream with the generated client, bypassing the
// transport's sender, so tests can write arbitrary frames.
func rawStream(t *testing.T, addr string, creds credentials.TransportCredentials) transportpb.Raft_StreamClient {
	t.Helper()
	s, err := openRawStream(t, addr, creds)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openRawStream(t *testing.T, addr string, creds credentials.TransportCredentials) (transportpb.Raft_StreamClient, error) {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return transportpb.NewRaftClient(cc).Stream(ctx)
}

func marshal(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func batch(from uint64, msgs ...[]byte) *transportpb.Frame {
	return &transportpb.Frame{From: from, Body: &transportpb.Frame_Batch{Batch: &transportpb.Batch{Messages: msgs}}}
}

// expectRejected sends frames and expects the server to end the stream with
// code.
func expectRejected(t *testing.T, s transportpb.Raft_StreamClient, code codes.Code, frames ...*transportpb.Frame) {
	t.Helper()
	for _, f := range frames {
		if err := s.Send(f); err != nil {
			break // the server may already have closed the stream
		}
	}
	_, err := s.Recv()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
}

func TestServerRejectsBadFrames(t *testing.T) {
	rec := transporttest.NewRecorder()
	srv := node(t, 1, rec, func(c *grpctransport.GRPCConfig) {
		c.MaxMessageBytes = 1 << 20
		c.MaxSnapshotBytes = 1 << 20
	})
	srv.AddPeer(2, "127.0.0.1:1") // known peer; never dialled successfully
	good := marshal(t, transporttest.Msg(2, 1, 1))
	snapHdr := marshal(t, func() *raftpb.Message { m := transporttest.Snap(2, 1, 0); return m }())
	chunk := func(seq, idx uint64, hdr []byte, total uint64, data []byte, last bool) *transportpb.Frame {
		return &transportpb.Frame{From: 2, Body: &transportpb.Frame_Chunk{Chunk: &transportpb.SnapshotChunk{
			Seq: seq, Index: idx, Message: hdr, TotalSize: total, Data: data, Last: last}}}
	}
	cases := []struct {
		name   string
		code   codes.Code
		frames []*transportpb.Frame
	}{
		{"garbage bytes", codes.InvalidArgument, []*transportpb.Frame{batch(2, []byte{0xff, 0xff, 0xff})}},
		{"unknown node", codes.PermissionDenied, []*transportpb.Frame{batch(9, marshal(t, transporttest.Msg(9, 1, 1)))}},
		{"zero node", codes.InvalidArgument, []*transportpb.Frame{batch(0, good)}},
		{"From mismatch", codes.PermissionDenied, []*transportpb.Frame{batch(2, marshal(t, transporttest.Msg(3, 1, 1)))}},
		{"wrong To", codes.InvalidArgument, []*transportpb.Frame{batch(2, marshal(t, transporttest.Msg(2, 5, 1)))}},
		{"sender changes", codes.InvalidArgument, []*transportpb.Frame{batch(2, good), batch(3, marshal(t, transporttest.Msg(3, 1, 1)))}},
		{"oversized frame", codes.ResourceExhausted, []*transportpb.Frame{batch(2, make([]byte, 2<<20))}},
		{"empty frame", codes.InvalidArgument, []*transportpb.Frame{{From: 2}}},
		{"MsgSnap in batch", codes.InvalidArgument, []*transportpb.Frame{batch(2, marshal(t, transporttest.Snap(2, 1, 10)))}},
		{"chunk out of order", codes.InvalidArgument, []*transportpb.Frame{chunk(1, 0, snapHdr, 20, make([]byte, 10), false), chunk(1, 2, nil, 0, make([]byte, 10), true)}},
		{"chunk without start", codes.InvalidArgument, []*transportpb.Frame{chunk(1, 1, nil, 0, nil, true)}},
		{"snapshot too large", codes.InvalidArgument, []*transportpb.Frame{chunk(1, 0, snapHdr, 2<<20, nil, false)}},
		{"snapshot longer than declared", codes.InvalidArgument, []*transportpb.Frame{chunk(1, 0, snapHdr, 5, make([]byte, 10), true)}},
		{"snapshot shorter than declared", codes.InvalidArgument, []*transportpb.Frame{chunk(1, 0, snapHdr, 50, make([]byte, 10), true)}},
		{"chunk header not MsgSnap", codes.InvalidArgument, []*transportpb.Frame{chunk(1, 0, good, 0, nil, true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRejected(t, rawStream(t, srv.Addr(), nil), tc.code, tc.frames...)
		})
	}
	if n := len(rec.Messages()); n != 1 { // only the "sender changes" case's first, valid frame
		t.Fatalf("%d messages stepped from bad streams, want 1", n)
	}

	// The server still serves a well-behaved peer, including a raw snapshot.
	s := rawStream(t, srv.Addr(), nil)
	if err := s.Send(batch(2, good)); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(chunk(7, 0, snapHdr, 3, []byte("ab"), false)); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(chunk(7, 1, nil, 0, []byte("c"), true)); err != nil {
		t.Fatal(err)
	}
	ack, err := s.Recv()
	if err != nil || ack.GetSeq() != 7 || ack.GetError() != "" {
		t.Fatalf("ack %v, err %v", ack, err)
	}
	got := rec.WaitMessages(t, 3, wait)
	if string(got[2].GetSnapshot().GetData()) != "abc" {
		t.Fatalf("reassembled %q", got[2].GetSnapshot().GetData())
	}
}

// clusterRecorder is a Recorder whose node knows (or not: 0) its cluster.
type clusterRecorder struct {
	*transporttest.Recorder
	cluster atomic.Uint64
}

func (c *clusterRecorder) ClusterID() uint64 { return c.cluster.Load() }

// Nodes of different clusters never exchange messages; a node that does not
// know its cluster (0) talks to any; once a node learns its cluster, the
// streams opened after that are checked.
func TestStreamsBetweenClustersAreRefused(t *testing.T) {
	recs := map[uint64]*clusterRecorder{}
	trs := map[uint64]*grpctransport.GRPCTransport{}
	for id, cluster := range map[uint64]uint64{1: 0xA, 2: 0xB, 3: 0} {
		recs[id] = &clusterRecorder{Recorder: transporttest.NewRecorder()}
		recs[id].cluster.Store(cluster)
		tr, err := grpctransport.NewGRPC(grpctransport.GRPCConfig{ID: id, ListenAddr: "127.0.0.1:0",
			Handler: recs[id], Logger: zaptest.NewLogger(t, zaptest.Level(zap.FatalLevel))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Stop)
		trs[id] = tr
	}
	for id, tr := range trs {
		for peer, ptr := range trs {
			if peer != id {
				tr.AddPeer(peer, ptr.Addr())
			}
		}
	}
	// 1 (cluster A) and 3 (unknown) talk both ways.
	trs[1].Send([]*raftpb.Message{transporttest.Msg(1, 3, 1)})
	trs[3].Send([]*raftpb.Message{transporttest.Msg(3, 1, 1)})
	recs[3].WaitMessages(t, 1, wait)
	recs[1].WaitMessages(t, 1, wait)

	// 1 (A) and 2 (B): every message is reported unreachable, none arrives.
	for i := uint64(1); recs[1].Unreachable(2) == 0 || recs[2].Unreachable(1) == 0; i++ {
		if i > 500 {
			t.Fatal("messages between clusters A and B were never reported unreachable")
		}
		trs[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, i)})
		trs[2].Send([]*raftpb.Message{transporttest.Msg(2, 1, i)})
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range recs[2].Messages() {
		if m.GetFrom() == 1 {
			t.Fatal("node 2 of cluster B received a message from cluster A")
		}
	}
	for _, m := range recs[1].Messages() {
		if m.GetFrom() == 2 {
			t.Fatal("node 1 of cluster A received a message from cluster B")
		}
	}

	// Node 2 finds it is in cluster A after all: 1's next stream gets through.
	recs[2].cluster.Store(0xA)
	deadline := time.Now().Add(3 * wait) // the redial backs off
	for !slices.ContainsFunc(recs[2].Messages(), func(m *raftpb.Message) bool { return m.GetFrom() == 1 }) {
		if time.Now().After(deadline) {
			t.Fatal("no message from node 1 reached node 2 after their clusters agreed")
		}
		trs[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1000)})
		time.Sleep(20 * time.Millisecond)
	}
}
