package grpctransport

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport/transportpb"
)

// checkingHandler fails the fuzz run if a message that should have been
// rejected reaches Process.
type checkingHandler struct {
	t *testing.T
}

func (h *checkingHandler) Process(_ context.Context, m *raftpb.Message) error {
	if m.GetFrom() != 2 || m.GetTo() != 1 {
		h.t.Fatalf("stepped a message %d→%d on a stream from node 2 to node 1", m.GetFrom(), m.GetTo())
	}
	if m.GetType() == raftpb.MessageType_MsgSnap && int64(len(m.GetSnapshot().GetData())) > 1<<16 {
		h.t.Fatalf("stepped a %d-byte snapshot over the limit", len(m.GetSnapshot().GetData()))
	}
	return nil
}
func (h *checkingHandler) ReportUnreachable(uint64)                   {}
func (h *checkingHandler) ReportSnapshot(uint64, raft.SnapshotStatus) {}

func frameBytes(t testing.TB, f *transportpb.Frame) []byte {
	b, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzHandleFrames feeds two arbitrary frames, in order, to one inbound
// stream of node 1 whose only peer is node 2: decoding and validation must
// never panic, and nothing invalid may reach the Handler.
func FuzzHandleFrames(f *testing.F) {
	msg, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(4)})
	hdr, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(2), To: proto.Uint64(1),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(1)}}})
	batchFrame := frameBytes(f, &transportpb.Frame{From: 2, Body: &transportpb.Frame_Batch{Batch: &transportpb.Batch{Messages: [][]byte{msg, msg}}}})
	first := frameBytes(f, &transportpb.Frame{From: 2, Body: &transportpb.Frame_Chunk{Chunk: &transportpb.SnapshotChunk{Seq: 1, Message: hdr, TotalSize: 6, Data: []byte("abc")}}})
	last := frameBytes(f, &transportpb.Frame{From: 2, Body: &transportpb.Frame_Chunk{Chunk: &transportpb.SnapshotChunk{Seq: 1, Index: 1, Data: []byte("def"), Last: true}}})
	f.Add(batchFrame, batchFrame)
	f.Add(first, last)
	f.Add(first, batchFrame)
	f.Add([]byte{}, []byte{0x12, 0x00})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		tr := &GRPCTransport{
			cfg:   GRPCConfig{ID: 1, Handler: &checkingHandler{t: t}, MaxSnapshotBytes: 1 << 16},
			log:   zap.NewNop(),
			peers: map[uint64]*peerConn{2: {}},
		}
		in := &inbound{t: tr, asm: assembler{maxBytes: tr.cfg.MaxSnapshotBytes}}
		for _, raw := range [][]byte{a, b} {
			fr := new(transportpb.Frame)
			if err := proto.Unmarshal(raw, fr); err != nil {
				return
			}
			if _, err := in.handleFrame(context.Background(), fr); err != nil {
				return
			}
		}
	})
}

func TestAssemblerRejectsInterleavedTransfers(t *testing.T) {
	hdr, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{}}})
	a := assembler{maxBytes: 100}
	if m, err := a.add(&transportpb.SnapshotChunk{Seq: 1, Message: hdr, TotalSize: 4, Data: []byte("ab")}); m != nil || err != nil {
		t.Fatalf("first chunk: %v %v", m, err)
	}
	if _, err := a.add(&transportpb.SnapshotChunk{Seq: 2, Message: hdr, TotalSize: 4}); !errors.Is(err, errChunkOrder) {
		t.Fatalf("interleaved transfer: %v", err)
	}
	// After the error the assembler accepts a fresh transfer.
	m, err := a.add(&transportpb.SnapshotChunk{Seq: 3, Message: hdr, TotalSize: 2, Data: []byte("xy"), Last: true})
	if err != nil || string(m.GetSnapshot().GetData()) != "xy" {
		t.Fatalf("fresh transfer: %v %v", m, err)
	}
}

func TestSplitSnapshotRoundTrip(t *testing.T) {
	data := make([]byte, 10_000)
	for i := range data {
		data[i] = byte(i)
	}
	m := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(9),
		Snapshot: &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(50), Term: proto.Uint64(8)}}}
	for _, size := range []int{1 << 20, 4096, 1000, 1} {
		chunks, err := splitSnapshot(m, 7, max(size, 200))
		if err != nil {
			t.Fatal(err)
		}
		a := assembler{maxBytes: 1 << 20}
		var out *raftpb.Message
		for i, c := range chunks {
			got, err := a.add(c)
			if err != nil {
				t.Fatalf("chunk size %d, chunk %d: %v", size, i, err)
			}
			if (got != nil) != (i == len(chunks)-1) {
				t.Fatalf("chunk size %d: message completed at chunk %d of %d", size, i, len(chunks))
			}
			out = got
		}
		if !proto.Equal(out, m) {
			t.Fatalf("chunk size %d: round trip changed the message", size)
		}
	}
	empty := proto.Clone(m).(*raftpb.Message)
	empty.Snapshot.Data = nil
	chunks, err := splitSnapshot(empty, 1, 1024)
	if err != nil || len(chunks) != 1 || !chunks[0].GetLast() {
		t.Fatalf("empty snapshot: %d chunks, %v", len(chunks), err)
	}
}
