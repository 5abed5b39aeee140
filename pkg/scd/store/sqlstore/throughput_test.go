package sqlstore

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

var throughput = flag.Duration("sqlstore.throughput", 0,
	"run TestPutOIRThroughput for this long (e.g. 10s) and print PUT OIR ops/s")

// TestPutOIRThroughput measures OIR creates by 16 concurrent clients, each
// OIR over 8 cells of its own (no key conflicts, realistic index spread),
// against the test PostgreSQL (fsync on). Off unless -sqlstore.throughput
// is given: it is a measurement, not a check.
func TestPutOIRThroughput(t *testing.T) {
	if *throughput <= 0 {
		t.Skip("measurement; run with -sqlstore.throughput=10s")
	}
	const clients = 16
	s := openStore(t, func(c *Config) { c.MaxConns = clients; c.Logger = nil })
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
	)
	deadline := time.Now().Add(*throughput)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			var local []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				n := c<<24 | i
				cs := make([]models.CellID, 8)
				for k := range cs {
					// Spread like S2 level-13 IDs of distinct areas.
					cs[k] = models.CellID(int64(uint64(n)*0x9E3779B97F4A7C15) + int64(k)<<20)
				}
				cs = models.NormalizeCells(cs)
				op := createOIR(n+1, cs, time.Now())
				op.Caller = fmt.Sprintf("uss-%d", c)
				// Handlers draw random UUIDs; sequential ones would all
				// land on the last page of the primary key index, where
				// page-level predicate locks make every create conflict.
				h := uint64(n+1) * 0x9E3779B97F4A7C15
				op.ID = models.ID(fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", h>>32, h>>16&0xffff, h>>4&0xfff, h&0xfff, uint64(n)))
				start := time.Now()
				_, err := s.Transact(context.Background(), op)
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					t.Errorf("client %d: %v", c, err)
					return
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(latencies)
	if len(latencies) == 0 {
		t.Fatal("no operation completed")
	}
	st := s.Stats()
	q := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	t.Logf("PUT OIR, %d clients, %v: %d ops, %.0f ops/s, latency p50 %v p99 %v max %v; %d retries (%.2f per op), %d escalated, %d failures",
		clients, *throughput, len(latencies), float64(len(latencies))/throughput.Seconds(),
		q(0.5), q(0.99), latencies[len(latencies)-1], st.Retries, float64(st.Retries)/float64(len(latencies)), st.Escalated, failures)
}
