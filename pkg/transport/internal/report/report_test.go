package report_test

import (
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.uber.org/goleak"

	"github.com/raftdss/dss/pkg/transport/internal/report"
	"github.com/raftdss/dss/pkg/transport/internal/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gated holds ReportUnreachable until gate is closed.
type gated struct {
	*transporttest.Recorder
	gate  chan struct{}
	calls atomic.Int64
}

func (g *gated) ReportUnreachable(id uint64) {
	g.calls.Add(1)
	<-g.gate
	g.Recorder.ReportUnreachable(id)
}

func TestReportsAreAsyncAndCoalesced(t *testing.T) {
	h := &gated{Recorder: transporttest.NewRecorder(), gate: make(chan struct{})}
	r := report.New(h)
	done := make(chan struct{})
	go func() {
		for range 1000 {
			r.Unreachable(2)
		}
		r.Snapshot(3, raft.SnapshotFinish)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reporting blocked behind a blocked handler")
	}
	close(h.gate)
	h.WaitFor(t, 5*time.Second, "snapshot report", func() bool { return len(h.Snapshots(3)) == 1 })
	r.Close()
	r.Close()
	// One report may have been in delivery, the other 999 coalesce into one.
	if n := h.calls.Load(); n < 1 || n > 2 {
		t.Fatalf("%d unreachable reports for 1000 drops, want 1 or 2", n)
	}
	r.Unreachable(4) // after Close: dropped, no panic
	time.Sleep(10 * time.Millisecond)
	if h.Unreachable(4) != 0 {
		t.Fatal("report delivered after Close")
	}
}

func TestSnapshotFailureAlsoReportsUnreachable(t *testing.T) {
	rec := transporttest.NewRecorder()
	r := report.New(rec)
	defer r.Close()
	r.Snapshot(3, raft.SnapshotFailure)
	rec.WaitFor(t, 5*time.Second, "failure and unreachable", func() bool {
		return len(rec.Snapshots(3)) == 1 && rec.Unreachable(3) == 1
	})
	if rec.Snapshots(3)[0] != raft.SnapshotFailure {
		t.Fatal("wrong snapshot status")
	}
}
