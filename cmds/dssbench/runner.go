package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// iterFunc runs one iteration of a workload (a flight, or one W3
// operation) on worker w. scheduled is the open-loop send time, zero in
// closed-loop mode. Requests use ctx, which outlives the phase, so an
// iteration in flight at the deadline can finish cleaning up.
type iterFunc func(ctx context.Context, w *worker, scheduled time.Time)

// phaseSpec is one measured interval.
type phaseSpec struct {
	workload    string
	concurrency int     // closed loop: users; open loop: most requests in flight
	rate        float64 // open loop: iterations per second; 0 = closed loop
	duration    time.Duration
	role        string // why the phase ran, when not obvious ("w2_reference")
}

func (p phaseSpec) mode() string {
	if p.rate > 0 {
		return "open"
	}
	return "closed"
}

func (p phaseSpec) String() string {
	if p.rate > 0 {
		return fmt.Sprintf("%s rate=%g/s", p.workload, p.rate)
	}
	return fmt.Sprintf("%s c=%d", p.workload, p.concurrency)
}

// phaseResult is what a phase measured.
type phaseResult struct {
	spec    phaseSpec
	elapsed time.Duration // the measurement window
	names   []string
	ops     map[string]opStats
	errs    map[string]string
	late    uint64  // results after the deadline (not counted)
	unsent  uint64  // open loop: scheduled iterations never started
	cpu     *cpuUse // CPU time over the window; nil: not measured
}

// runPhase runs spec with workers from s, printing a progress line to
// progress once per second. It returns once every worker has finished its
// last iteration. A non-nil meter samples CPU time at the start and at the
// end of the window (not after the requests in flight then drain).
func runPhase(ctx context.Context, s *session, spec phaseSpec, iter iterFunc, progress io.Writer, meter *cpuMeter) phaseResult {
	var cpuStart cpuUse
	if meter != nil {
		cpuStart = meter.sample()
	}
	start := time.Now()
	deadline := start.Add(spec.duration)
	rec := newRecorder(deadline)
	phaseCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var cpuEnd chan cpuUse
	if meter != nil {
		cpuEnd = make(chan cpuUse, 1)
		go func() {
			<-phaseCtx.Done()
			cpuEnd <- meter.sample()
		}()
	}

	stopProgress := startProgress(progress, spec, rec, start)
	var unsent uint64
	if spec.rate > 0 {
		unsent = runOpen(ctx, phaseCtx, spec.rate, spec.concurrency, func(i int) *worker { return s.newWorker(i, rec) }, iter)
	} else {
		runClosed(ctx, phaseCtx, spec.concurrency, func(i int) *worker { return s.newWorker(i, rec) }, iter)
	}
	stopProgress()

	elapsed := spec.duration
	if end := time.Now(); end.Before(deadline) {
		// Interrupted (ctx cancelled): rates are over the time that ran.
		elapsed = end.Sub(start)
	}
	names, ops, errs := rec.snapshot()
	rec.mu.Lock()
	late := rec.late
	rec.mu.Unlock()
	r := phaseResult{spec: spec, elapsed: elapsed, names: names, ops: ops, errs: errs, late: late, unsent: unsent}
	if meter != nil {
		cancel() // the window ends now if the phase ended before its deadline
		use := (<-cpuEnd).since(cpuStart)
		r.cpu = &use
	}
	return r
}

// runClosed runs n users, each starting a new iteration as soon as its
// previous one ended, until phaseCtx ends.
func runClosed(ctx, phaseCtx context.Context, n int, newWorker func(int) *worker, iter iterFunc) {
	var wg sync.WaitGroup
	for i := range n {
		w := newWorker(i)
		wg.Go(func() {
			for phaseCtx.Err() == nil {
				iter(ctx, w, time.Time{})
			}
		})
	}
	wg.Wait()
}

// runOpen starts iterations at fixed times start + i/rate, whatever the
// state of earlier ones, on a pool of maxInFlight workers. An iteration
// that finds no free worker waits, but its latency still counts from its
// scheduled time: a slow server cannot hide its queueing by slowing the
// client down (coordinated omission). Iterations still waiting for a
// worker at the deadline are never sent; their number is returned.
func runOpen(ctx, phaseCtx context.Context, rate float64, maxInFlight int, newWorker func(int) *worker, iter iterFunc) uint64 {
	deadline, _ := phaseCtx.Deadline()
	sched := make(chan time.Time) // unbuffered: a send is a worker taking it
	var wg sync.WaitGroup
	for i := range maxInFlight {
		w := newWorker(i)
		wg.Go(func() {
			for t := range sched {
				iter(ctx, w, t)
			}
		})
	}
	defer wg.Wait()
	defer close(sched)

	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if !at.Before(deadline) {
			return 0
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-phaseCtx.Done():
				return 0
			}
		}
		select {
		case sched <- at:
		case <-phaseCtx.Done():
			// Every iteration scheduled from this one to the deadline
			// found no worker.
			return uint64((deadline.Sub(at) + interval - 1) / interval)
		}
	}
}

// startProgress prints one line per second until the returned function is
// called (which waits for the printer to stop).
func startProgress(w io.Writer, spec phaseSpec, rec *recorder, start time.Time) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastOK uint64
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				ok, c4xx, c409, c5xx, errs := rec.totals()
				fmt.Fprintf(w, "dssbench: %s %2.0f/%.0fs  ok=%d (%d/s)  409=%d 4xx=%d 5xx=%d err=%d\n",
					spec, now.Sub(start).Seconds(), spec.duration.Seconds(), ok, ok-lastOK, c409, c4xx-c409, c5xx, errs)
				lastOK = ok
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
