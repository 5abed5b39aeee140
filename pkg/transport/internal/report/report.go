// Package report delivers a transport's ReportUnreachable and ReportSnapshot
// calls to the raft Handler from a goroutine the transport owns.
//
// Why a separate goroutine: Send is called from the consensus node's Ready
// loop, and a Handler may implement ReportUnreachable by handing the report
// to that same loop. Calling the Handler synchronously from Send would then
// deadlock, so reports are queued here and delivered asynchronously. The
// queue never blocks and is bounded by the number of peers: unreachable
// reports are coalesced per peer (raft only moves the peer's progress to
// probe, so one report stands for many) and only the latest snapshot outcome
// per peer is kept (raft has at most one snapshot in flight per peer).
//
// This package must never call the Handler from the caller's goroutine.
package report

import (
	"sync"

	"go.etcd.io/raft/v3"

	"github.com/raftdss/dss/pkg/transport"
)

// Reporter queues reports for one Handler. The zero value is not usable;
// create it with New and release it with Close.
type Reporter struct {
	h transport.Handler

	mu          sync.Mutex
	unreachable map[uint64]struct{}
	snapshots   map[uint64]raft.SnapshotStatus
	closed      bool

	wake chan struct{} // capacity 1: "there is something to deliver"
	done chan struct{} // closed by Close to stop the goroutine
	exit chan struct{} // closed when the goroutine has returned
}

// New starts the delivery goroutine. The caller owns it and must call Close.
func New(h transport.Handler) *Reporter {
	r := &Reporter{
		h:           h,
		unreachable: make(map[uint64]struct{}),
		snapshots:   make(map[uint64]raft.SnapshotStatus),
		wake:        make(chan struct{}, 1),
		done:        make(chan struct{}),
		exit:        make(chan struct{}),
	}
	go r.run()
	return r
}

// Unreachable queues a ReportUnreachable(id). It never blocks.
func (r *Reporter) Unreachable(id uint64) {
	r.mu.Lock()
	if !r.closed {
		r.unreachable[id] = struct{}{}
	}
	r.mu.Unlock()
	r.signal()
}

// Snapshot queues a ReportSnapshot(id, status). A failed snapshot also
// queues an unreachable report, as etcd's rafthttp does, so that raft probes
// the peer again. It never blocks.
func (r *Reporter) Snapshot(id uint64, status raft.SnapshotStatus) {
	r.mu.Lock()
	if !r.closed {
		r.snapshots[id] = status
		if status == raft.SnapshotFailure {
			r.unreachable[id] = struct{}{}
		}
	}
	r.mu.Unlock()
	r.signal()
}

func (r *Reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops delivery and waits for the goroutine to return. Reports still
// queued are discarded: after Close the Handler is never called again. It is
// idempotent.
func (r *Reporter) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.done)
	}
	r.mu.Unlock()
	<-r.exit
}

func (r *Reporter) run() {
	defer close(r.exit)
	for {
		select {
		case <-r.done:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		unreachable, snapshots := r.unreachable, r.snapshots
		r.unreachable = make(map[uint64]struct{})
		r.snapshots = make(map[uint64]raft.SnapshotStatus)
		r.mu.Unlock()
		// Snapshot outcomes first: a failure followed by the unreachable
		// report mirrors the order raft expects (etcd's rafthttp does the same).
		for id, st := range snapshots {
			r.h.ReportSnapshot(id, st)
		}
		for id := range unreachable {
			r.h.ReportUnreachable(id)
		}
	}
}
