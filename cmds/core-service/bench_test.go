package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/peercerts"
)

// BenchmarkClusterPutOIR measures PUT OIR (create) through the HTTP API of a
// 3-node cluster over gRPC on loopback, real WAL fsyncs, 16 concurrent
// clients spread over the three nodes, 2 km squares that never share an S2
// cell (no conflicts). It reports throughput and latency percentiles:
//
//	go test ./cmds/core-service -run '^$' -bench ClusterPutOIR -benchtime 4000x
func BenchmarkClusterPutOIR(b *testing.B) {
	const clients = 16
	nodes := startBenchCluster(b)
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer httpc.CloseIdleConnections()

	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := nodes[c%len(nodes)]
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				req, _ := http.NewRequest("PUT", n.base+"/dss/v1/operational_intent_references/"+benchID(i),
					strings.NewReader(squareOIR(i)))
				req.Header.Set("Authorization", "Bearer "+n.token)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := httpc.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[c] = append(lat[c], time.Since(t0))
				if resp.StatusCode != http.StatusCreated {
					if failed.Add(1) == 1 {
						b.Logf("PUT %d: %d %s", i, resp.StatusCode, body)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d PUTs failed", f, b.N)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "puts/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

// startBenchCluster starts 3 nodes with production raft timing.
func startBenchCluster(b *testing.B) []*node {
	b.Helper()
	var nodes []*node
	devDir := b.TempDir()
	pki := writePKI(b, 1, 2, 3)
	raftAddrs := freeAddrs(b, 3)
	var peers []string
	for i, a := range raftAddrs {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, a))
	}
	for i := range 3 {
		nodes = append(nodes, startNode(b, devDir, append([]string{"--raft_node_id", fmt.Sprint(i + 1),
			"--raft_peers", strings.Join(peers, ","), "--raft_data_dir", b.TempDir()},
			peercerts.Flags(pki, uint64(i+1))...)...))
	}
	for _, n := range nodes {
		n.waitReady()
	}
	return nodes
}

func benchID(i int64) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1) }

// squareOIR is an accepted OIR over a 2 km square, the i-th of a grid whose
// squares are ~3 km apart, so no two share a level-13 cell.
func squareOIR(i int64) string {
	lat := 40 + float64(i/200)*0.05
	lng := 0 + float64(i%200)*0.07
	const dLat, dLng = 0.018, 0.025
	now := time.Now().UTC()
	return fmt.Sprintf(`{"extents": [{"volume": {"outline_polygon": {"vertices": [
		{"lat": %f, "lng": %f}, {"lat": %f, "lng": %f}, {"lat": %f, "lng": %f}, {"lat": %f, "lng": %f}]},
		"altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
		"altitude_upper": {"value": 120, "reference": "W84", "units": "M"}},
		"time_start": {"value": %q, "format": "RFC3339"}, "time_end": {"value": %q, "format": "RFC3339"}}],
		"state": "Accepted", "uss_base_url": "https://uss1.example.com",
		"new_subscription": {"uss_base_url": "https://uss1.example.com"}}`,
		lat, lng, lat, lng+dLng, lat+dLat, lng+dLng, lat+dLat, lng,
		now.Add(time.Minute).Format(time.RFC3339Nano), now.Add(time.Hour).Format(time.RFC3339Nano))
}
