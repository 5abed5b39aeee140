package consensus

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowSnapApp is a memApp whose snapshot writers block until released, like
// the serialisation of a large state.
type slowSnapApp struct {
	memApp
	release chan struct{}
	started atomic.Int32
}

func (a *slowSnapApp) Snapshot() (SnapshotWriter, error) {
	write, err := a.memApp.Snapshot()
	if err != nil {
		return nil, err
	}
	a.started.Add(1)
	return func(dst []byte) ([]byte, error) {
		<-a.release
		return write(dst)
	}, nil
}

// A snapshot being written does not hold up applies, only one is in flight,
// and when it completes it is the state at the index it was captured at: a
// restart from it plus the WAL replays exactly what was applied.
func TestSnapshotInBackgroundDoesNotBlockApplies(t *testing.T) {
	dir := t.TempDir()
	app := &slowSnapApp{release: make(chan struct{})}
	var events []SnapshotEvent
	evc := make(chan SnapshotEvent, 16)
	tune := func(c *Config) {
		c.SnapshotEntries = 5
		c.CatchUpEntries = 2
		c.SnapshotObserver = func(ev SnapshotEvent) { evc <- ev }
	}
	n, err := startSingle(t, dir, app, tune)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("b", 30)
	// Six times SnapshotEntries are applied while the first snapshot's
	// writer is blocked.
	write(t, n, &app.memApp, want...)
	if got := app.started.Load(); got != 1 {
		t.Fatalf("%d snapshots started while one was in flight, want 1", got)
	}
	if st := n.Stats(); st.Snapshots != 0 {
		t.Fatalf("%d snapshots completed before the writer returned", st.Snapshots)
	}
	close(app.release)
	select {
	case ev := <-evc:
		events = append(events, ev)
	case <-time.After(10 * time.Second):
		t.Fatal("the released snapshot never completed")
	}
	// The next one came due while the first was in flight: it starts once
	// the first is done, with no further write.
	select {
	case ev := <-evc:
		events = append(events, ev)
	case <-time.After(10 * time.Second):
		t.Fatal("no second snapshot")
	}
	if events[1].Index <= events[0].Index {
		t.Fatalf("snapshot indexes %d then %d", events[0].Index, events[1].Index)
	}
	extra := payloads("c", 1)
	write(t, n, &app.memApp, extra...)
	n.Stop()

	app2 := &memApp{}
	n2, err := startSingle(t, dir, app2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	all := append(want, extra...)
	if got := app2.snapshotOf(); strings.Join(got, ",") != strings.Join(all, ",") {
		t.Fatalf("after restart got %d entries, want %d", len(got), len(all))
	}
}

// Stop with a snapshot writer running waits for it (bounded: the writer
// finishes, its result is dropped) and leaves no goroutine (goleak).
func TestStopWithSnapshotInFlight(t *testing.T) {
	app := &slowSnapApp{release: make(chan struct{})}
	n, err := startSingle(t, t.TempDir(), app, func(c *Config) { c.SnapshotEntries = 3 })
	if err != nil {
		t.Fatal(err)
	}
	write(t, n, &app.memApp, payloads("s", 5)...)
	if app.started.Load() != 1 {
		t.Fatal("no snapshot in flight")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(app.release)
	}()
	n.Stop()
	if n.Err() != nil {
		t.Fatal(n.Err())
	}
}
