package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
)

// The soak mode (--soak) runs flights whose windows end continuously, for
// --soak_periods retention periods, on the in-process 3-node cluster, with
// eviction batches proposed the way core-service's evictor does. Time is
// virtual: each operation carries the request time its proposer decided
// (nothing in Execute reads a clock), so a retention period of an hour
// passes in the time its writes take. Each period writes --soak_flights
// flights of 30 minutes starting a minute after the period's time, half of
// them with no eviction running and half while the expired entities are
// evicted (batches until a batch is not full, cut-off one retention
// before the period's time; --soak_batch, core-service's 500 by default),
// and then records the entities held, the live
// heap of the process (after a collection; three replicas) and the size of
// the leader's newest snapshot. It restarts a follower after the first
// steady period and after the last.
const soakRetention = time.Hour

type soakPeriod struct {
	entities        int
	evicted         int
	liveHeap        uint64
	snapshotBytes   int
	without, during []time.Duration // write latencies
}

type soakResult struct {
	periods                     []soakPeriod
	restartFirst, restartLast   time.Duration
	steady                      int // index of the first steady period
	p99Without, p99During       time.Duration
	writesWithout, writesDuring int
}

func soak(ctx context.Context, cfg *config, progress io.Writer) (*soakResult, error) {
	st, err := buildState(0)
	if err != nil {
		return nil, err
	}
	c, voters, lead, err := startCluster(ctx, cfg, st)
	defer c.stop()
	if err != nil {
		return nil, err
	}
	follower := voters[0]
	if follower == lead {
		follower = voters[1]
	}
	// Flights live two periods (ended, then evicted one retention later):
	// from the third period on the state holds about two periods' flights.
	res := &soakResult{steady: min(2, cfg.soakPeriods-1)}
	w := &soakWriter{store: c.stores[lead]}
	vt := t0
	var allWithout, allDuring []time.Duration
	for p := range cfg.soakPeriods {
		var per soakPeriod
		half := cfg.soakFlights / 2
		if per.without, err = w.run(ctx, cfg.concurrency, half, vt); err != nil {
			return nil, err
		}
		// The second half runs while eviction batches are proposed; a
		// write counts as during eviction when it overlaps a batch.
		var batches []span
		var evictErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				s := span{start: time.Now()}
				out, err := c.stores[lead].Transact(ctx, &scd.EvictExpired{Before: vt.Add(-soakRetention), Limit: uint32(cfg.soakBatch)})
				s.end = time.Now()
				if err != nil {
					evictErr = err
					return
				}
				r := out.(scd.EvictionResult)
				per.evicted += r.Evicted.Total()
				batches = append(batches, s)
				if !r.Full {
					return
				}
			}
		}()
		spans, err := w.runSpans(ctx, cfg.concurrency, cfg.soakFlights-half, vt)
		<-done
		if err != nil {
			return nil, err
		}
		if evictErr != nil {
			return nil, fmt.Errorf("eviction: %w", evictErr)
		}
		for _, s := range spans {
			d := s.end.Sub(s.start)
			if overlapsAny(s, batches) {
				per.during = append(per.during, d)
			} else {
				per.without = append(per.without, d)
			}
		}
		oirs, crs, subs, err := c.stores[lead].EntityCounts(ctx)
		if err != nil {
			return nil, err
		}
		per.entities = oirs + crs + subs
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		per.liveHeap = ms.HeapAlloc
		c.mu.Lock()
		if evs := c.snaps[lead]; len(evs) > 0 {
			per.snapshotBytes = evs[len(evs)-1].Bytes
		}
		c.mu.Unlock()
		if p >= res.steady {
			allWithout = append(allWithout, per.without...)
			allDuring = append(allDuring, per.during...)
		}
		res.periods = append(res.periods, per)
		fmt.Fprintf(progress, "period %d: %d entities, %d evicted, live heap %.1f MiB\n", p+1, per.entities,
			per.evicted, float64(per.liveHeap)/(1<<20))
		if p == res.steady || p == cfg.soakPeriods-1 {
			var r result
			if err := c.measureRestart(ctx, &r, lead, follower); err != nil {
				return nil, err
			}
			if p == res.steady {
				res.restartFirst = r.restartServe
			}
			res.restartLast = r.restartServe
		}
		vt = vt.Add(soakRetention)
	}
	res.p99Without, res.p99During = quantile(allWithout, 0.99), quantile(allDuring, 0.99)
	res.writesWithout, res.writesDuring = len(allWithout), len(allDuring)
	return res, nil
}

func overlapsAny(s span, spans []span) bool {
	for _, b := range spans {
		if s.start.Before(b.end) && b.start.Before(s.end) {
			return true
		}
	}
	return false
}

func (r *soakResult) print(w io.Writer) {
	fmt.Fprintln(w, "| period | entities | evicted | live heap MiB | leader's newest snapshot KiB | writes without / during eviction |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for i, p := range r.periods {
		fmt.Fprintf(w, "| %d | %d | %d | %.1f | %.0f | %d / %d |\n", i+1, p.entities, p.evicted,
			float64(p.liveHeap)/(1<<20), float64(p.snapshotBytes)/1024, len(p.without), len(p.during))
	}
	first, last := r.periods[r.steady], r.periods[len(r.periods)-1]
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	fmt.Fprintf(w, "\nFrom period %d (steady) to period %d:\n", r.steady+1, len(r.periods))
	fmt.Fprintf(w, "- entities: %d → %d (%.2f×)\n", first.entities, last.entities, ratio(float64(last.entities), float64(first.entities)))
	fmt.Fprintf(w, "- live heap: %.1f → %.1f MiB (%.2f×)\n", float64(first.liveHeap)/(1<<20), float64(last.liveHeap)/(1<<20),
		ratio(float64(last.liveHeap), float64(first.liveHeap)))
	fmt.Fprintf(w, "- newest snapshot: %.0f → %.0f KiB (%.2f×)\n", float64(first.snapshotBytes)/1024,
		float64(last.snapshotBytes)/1024, ratio(float64(last.snapshotBytes), float64(first.snapshotBytes)))
	fmt.Fprintf(w, "- follower restart to serving: %v → %v (%.2f×)\n", r.restartFirst.Round(time.Millisecond),
		r.restartLast.Round(time.Millisecond), ratio(float64(r.restartLast), float64(r.restartFirst)))
	verdict := "MISSED"
	q := ratio(float64(r.p99During), float64(r.p99Without))
	if r.writesDuring > 0 && q <= 1.5 {
		verdict = "met"
	}
	fmt.Fprintf(w, "- write p99 during eviction batches / without: %.2f (%v over %d writes / %v over %d) [≤ 1.5: %s]\n",
		q, r.p99During.Round(time.Microsecond), r.writesDuring, r.p99Without.Round(time.Microsecond), r.writesWithout, verdict)
}

// soakWriter writes flights that fly at a virtual time, each in 9 cells of
// its own (no conflicts).
type soakWriter struct {
	store *raftstore.Store
	mu    sync.Mutex
	next  int
}

func (w *soakWriter) op(now time.Time) scd.Operation {
	w.mu.Lock()
	i := w.next
	w.next++
	w.mu.Unlock()
	start := now.Add(time.Minute)
	return flight(uuid(3, uint64(i)), i, "uss-soak", now, start, start.Add(30*time.Minute))
}

// runSpans writes n flights at virtual time now with conc closed-loop
// clients and returns each write's span.
func (w *soakWriter) runSpans(ctx context.Context, conc, n int, now time.Time) ([]span, error) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		all      []span
		firstErr error
		left     = n
	)
	for range conc {
		wg.Go(func() {
			for {
				mu.Lock()
				if left == 0 || firstErr != nil {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				s := span{start: time.Now()}
				_, err := w.store.Transact(ctx, w.op(now))
				s.end = time.Now()
				mu.Lock()
				if err != nil {
					firstErr = cmpOr(firstErr, err)
				} else {
					all = append(all, s)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return all, firstErr
}

// run is runSpans returning latencies.
func (w *soakWriter) run(ctx context.Context, conc, n int, now time.Time) ([]time.Duration, error) {
	spans, err := w.runSpans(ctx, conc, n, now)
	ds := make([]time.Duration, len(spans))
	for i, s := range spans {
		ds[i] = s.end.Sub(s.start)
	}
	return ds, err
}
