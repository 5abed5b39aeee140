// Package transporttest holds test helpers shared by the transport
// implementations' tests: a recording transport.Handler and message
// builders. It is imported only from _test files.
package transporttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Recorder is a transport.Handler that remembers everything it is given.
// Block, when non-nil, is received from before Process returns, so tests
// can hold the receiver.
type Recorder struct {
	Block chan struct{}

	mu          sync.Mutex
	msgs        []*raftpb.Message
	unreachable map[uint64]int
	snapshots   map[uint64][]raft.SnapshotStatus
	changed     chan struct{} // closed and replaced on every change
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		unreachable: make(map[uint64]int),
		snapshots:   make(map[uint64][]raft.SnapshotStatus),
		changed:     make(chan struct{}),
	}
}

func (r *Recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Process records m.
func (r *Recorder) Process(ctx context.Context, m *raftpb.Message) error {
	if r.Block != nil {
		select {
		case <-r.Block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	r.notifyLocked()
	return nil
}

// ReportUnreachable records a report.
func (r *Recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[id]++
	r.notifyLocked()
}

// ReportSnapshot records a report.
func (r *Recorder) ReportSnapshot(id uint64, st raft.SnapshotStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapshots[id] = append(r.snapshots[id], st)
	r.notifyLocked()
}

// Messages returns a copy of the received messages, in arrival order.
func (r *Recorder) Messages() []*raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*raftpb.Message(nil), r.msgs...)
}

// Unreachable returns how many unreachable reports named id.
func (r *Recorder) Unreachable(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

// Snapshots returns the snapshot outcomes reported for id.
func (r *Recorder) Snapshots(id uint64) []raft.SnapshotStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raft.SnapshotStatus(nil), r.snapshots[id]...)
}

// WaitFor waits until cond (called without locks held) is true, failing the
// test after timeout.
func (r *Recorder) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// WaitMessages waits until at least n messages have arrived and returns them.
func (r *Recorder) WaitMessages(t testing.TB, n int, timeout time.Duration) []*raftpb.Message {
	t.Helper()
	r.WaitFor(t, timeout, "messages", func() bool { return len(r.Messages()) >= n })
	return r.Messages()
}

// Msg builds a MsgApp-like message from → to carrying index as Index.
func Msg(from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:  raftpb.MessageType_MsgApp.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index),
		Entries: []*raftpb.Entry{{
			Term:  proto.Uint64(1),
			Index: proto.Uint64(index + 1),
			Data:  []byte("payload"),
		}},
	}
}

// Snap builds a MsgSnap from → to whose snapshot data is size bytes of a
// deterministic pattern.
func Snap(from, to uint64, size int) *raftpb.Message {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(),
		From: proto.Uint64(from),
		To:   proto.Uint64(to),
		Term: proto.Uint64(3),
		Snapshot: &raftpb.Snapshot{
			Data: data,
			Metadata: &raftpb.SnapshotMetadata{
				Index:     proto.Uint64(100),
				Term:      proto.Uint64(3),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
			},
		},
	}
}
