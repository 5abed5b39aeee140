package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// slowServer answers every request after delay.
func slowServer(t *testing.T, delay time.Duration) *session {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay)
		w.WriteHeader(http.StatusOK)
	}))
	c, err := newClient([]string{srv.URL}, testKey(), "localhost", 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.close()
		srv.Close()
	})
	return newSession(c, settings{usses: 1})
}

// getIter is one GET whose latency counts from the scheduled time, exactly
// as the workloads' first request of an iteration does.
func getIter(ctx context.Context, w *worker, scheduled time.Time) {
	w.call(ctx, "get", http.MethodGet, "/", nil, scheduled)
}

// TestOpenLoopMeasuresFromScheduledTimes overloads a server that takes 20
// ms per request with 100 requests/s on one worker (capacity 50/s): a
// closed-loop client would see 20 ms every time, but the requests fall
// further and further behind their schedule and the open loop must report
// that delay (about half a second by the end), and the requests never sent.
func TestOpenLoopMeasuresFromScheduledTimes(t *testing.T) {
	s := slowServer(t, 20*time.Millisecond)
	var progress bytes.Buffer
	r := runPhase(context.Background(), s,
		phaseSpec{workload: "test", rate: 100, concurrency: 1, duration: time.Second}, getIter, &progress, nil)
	st := r.ops["get"]
	if st.ok < 10 || st.ok > 55 {
		t.Fatalf("%d requests completed; a 20 ms server on one worker allows about 50", st.ok)
	}
	// The k-th request is sent at about 20k ms but was due at 10k ms.
	if p99 := st.lat.quantile(.99); p99 < 300*time.Millisecond {
		t.Errorf("p99 %v: latency is not measured from the schedule", p99)
	}
	if st.lat.min < 20*time.Millisecond {
		t.Errorf("min %v below the server's own delay", st.lat.min)
	}
	if r.unsent < 20 {
		t.Errorf("unsent %d; about 50 of the 100 scheduled requests could not start", r.unsent)
	}

	// The same server with capacity to spare: latency stays near the
	// server's 20 ms, so the schedule itself adds nothing.
	r = runPhase(context.Background(), s,
		phaseSpec{workload: "test", rate: 20, concurrency: 4, duration: time.Second}, getIter, &progress, nil)
	st = r.ops["get"]
	if st.ok < 15 || st.ok > 21 {
		t.Errorf("%d requests completed at 20/s for 1 s", st.ok)
	}
	if p50 := st.lat.quantile(.5); p50 > 150*time.Millisecond {
		t.Errorf("p50 %v with spare capacity: the schedule inflates latency", p50)
	}
	if r.unsent != 0 {
		t.Errorf("unsent %d with spare capacity", r.unsent)
	}
}

// TestClosedLoopCountsOnlyTheWindow checks that a closed-loop phase ends
// at its deadline (requests then in flight finish but are not counted) and
// that its users run back to back.
func TestClosedLoopCountsOnlyTheWindow(t *testing.T) {
	s := slowServer(t, 20*time.Millisecond)
	var progress bytes.Buffer
	start := time.Now()
	r := runPhase(context.Background(), s,
		phaseSpec{workload: "test", concurrency: 2, duration: 1500 * time.Millisecond}, getIter, &progress, nil)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("phase took %v", took)
	}
	st := r.ops["get"]
	// Two users back to back at ≥ 20 ms each: at most 150 in 1.5 s.
	if st.ok < 20 || st.ok > 150 {
		t.Errorf("%d requests in 1.5 s from 2 users of a 20 ms server", st.ok)
	}
	if p50 := st.lat.quantile(.5); p50 < 20*time.Millisecond {
		t.Errorf("p50 %v below the server delay", p50)
	}
	if r.elapsed != 1500*time.Millisecond {
		t.Errorf("elapsed %v", r.elapsed)
	}
	if !bytes.Contains(progress.Bytes(), []byte("dssbench: test c=2")) {
		t.Errorf("no progress line: %q", progress.String())
	}
}
