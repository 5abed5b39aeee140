package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// opTimeout bounds one operation, and so how long a load phase can outlast
// its duration: every client goroutine finishes its current operation and
// exits.
const opTimeout = 5 * time.Second

// phase is the result of one measured phase.
type phase struct {
	Name    string  `json:"name"`
	Clients int     `json:"clients"`
	Ops     int     `json:"ops"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
}

func newPhase(name string, clients int, lat []time.Duration, errs int, elapsed time.Duration) phase {
	slices.Sort(lat)
	ms := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
	}
	p := phase{Name: name, Clients: clients, Ops: len(lat), Errors: errs, Seconds: elapsed.Seconds(),
		P50ms: ms(0.50), P99ms: ms(0.99)}
	if elapsed > 0 {
		p.PerSec = float64(len(lat)) / elapsed.Seconds()
	}
	return p
}

// runLoad runs a closed loop: clients goroutines each issue op back to back
// until d has passed, and returns once all of them have exited (each within
// opTimeout of the deadline). Only successful operations count; their
// latencies are kept whole, so percentiles are exact.
func runLoad(ctx context.Context, name string, clients int, d time.Duration,
	op func(ctx context.Context, client, i int) error) phase {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  []time.Duration
		errs int
	)
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			nerr := 0
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				t := time.Now()
				err := op(octx, c, i)
				took := time.Since(t)
				cancel()
				if err != nil {
					nerr++
					continue
				}
				lat = append(lat, took)
			}
			mu.Lock()
			all = append(all, lat...)
			errs += nerr
			mu.Unlock()
		}()
	}
	wg.Wait()
	return newPhase(name, clients, all, errs, time.Since(start))
}
