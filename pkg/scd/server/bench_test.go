package server

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

// These benchmarks measure the whole per-request CPU of the hot endpoints
// through ServeHTTP: real RS256 token verification, routing, body decoding,
// S2 coverings, the store (a 1-node Raft store with a real WAL, or the bare
// memstore to isolate the request path) and JSON rendering. Only the network
// is left out. RunParallel keeps the Raft log group-committing, so ns/op
// approaches CPU per request rather than fsync latency. Profile with e.g.
//
//	go test ./pkg/scd/server -run '^$' -bench 'Handler/raft' -cpuprofile cpu.out
//	go tool pprof -top cpu.out

var benchKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type benchEnv struct {
	h     http.Handler
	token string
}

// newBenchEnv builds the handler over the named store ("raft" or "mem")
// with a real Authenticator.
func newBenchEnv(b *testing.B, storeKind string) *benchEnv {
	b.Helper()
	key := benchKey()
	a, err := auth.New(b.Context(), auth.Config{PublicKeys: []*rsa.PublicKey{&key.PublicKey},
		AcceptedAudiences: []string{auth.DefaultDevAudience}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	tok, err := auth.MintToken(key, auth.TokenOptions{Subject: "uss1",
		Scopes: []string{auth.ScopeStrategicCoordination, auth.ScopeConformanceMonitoringSA}})
	if err != nil {
		b.Fatal(err)
	}
	var st scd.Store
	switch storeKind {
	case "mem":
		st = memstore.New()
	case "raft":
		net := memnet.New(1)
		rs, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{ID: 1, Peers: map[uint64]string{1: "node-1"}, DataDir: b.TempDir(),
				TickInterval: 20 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1, Logger: zap.NewNop()},
			NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(1, h), nil },
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rs.Stop(); net.Close() })
		deadline := time.Now().Add(20 * time.Second)
		for rs.Status().Leader == 0 {
			if time.Now().After(deadline) {
				b.Fatal("no leader")
			}
			time.Sleep(5 * time.Millisecond)
		}
		st = rs
	default:
		b.Fatalf("unknown store %q", storeKind)
	}
	h, err := NewHandler(Config{Store: st, Authenticator: a, AllowHTTPBaseURLs: false})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{h: h, token: "Bearer " + tok}
}

func (e *benchEnv) do(b *testing.B, method, path, body string, want int) []byte {
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.Header.Set("Authorization", e.token)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	return rec.Body.Bytes()
}

func benchOIRID(i int64) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1) }

// benchSquare is an accepted OIR over a ~2 km square, the i-th of a grid
// whose squares are ~3 km apart so that no two share a level-13 cell (as
// cmds/core-service's BenchmarkClusterPutOIR).
func benchSquare(i int64, now time.Time) string {
	lat := 40 + float64(i/200)*0.05
	lng := 0 + float64(i%200)*0.07
	const dLat, dLng = 0.018, 0.025
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

// benchQuery asks for the 2 km square around grid square i.
func benchQuery(i int64, now time.Time) string {
	lat := 40 + float64(i/200)*0.05
	lng := 0 + float64(i%200)*0.07
	const dLat, dLng = 0.018, 0.025
	return fmt.Sprintf(`{"area_of_interest": {"volume": {"outline_polygon": {"vertices": [
		{"lat": %f, "lng": %f}, {"lat": %f, "lng": %f}, {"lat": %f, "lng": %f}, {"lat": %f, "lng": %f}]},
		"altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
		"altitude_upper": {"value": 120, "reference": "W84", "units": "M"}},
		"time_start": {"value": %q, "format": "RFC3339"}, "time_end": {"value": %q, "format": "RFC3339"}}}`,
		lat, lng, lat, lng+dLng, lat+dLat, lng+dLng, lat+dLat, lng,
		now.Format(time.RFC3339Nano), now.Add(2*time.Hour).Format(time.RFC3339Nano))
}

// create PUTs OIR i and returns its OVN.
func (e *benchEnv) create(b *testing.B, i int64, now time.Time) string {
	body := e.do(b, http.MethodPut, "/dss/v1/operational_intent_references/"+benchOIRID(i), benchSquare(i, now), http.StatusCreated)
	var resp struct {
		OIR struct {
			OVN string `json:"ovn"`
		} `json:"operational_intent_reference"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		b.Fatal(err)
	}
	return resp.OIR.OVN
}

const benchClients = 16

func BenchmarkHandler(b *testing.B) {
	for _, kind := range []string{"raft", "mem"} {
		b.Run(kind+"/PutOIR", func(b *testing.B) {
			e := newBenchEnv(b, kind)
			now := time.Now().UTC()
			var next atomic.Int64
			bodies := make([]string, b.N)
			for i := range bodies {
				bodies[i] = benchSquare(int64(i), now)
			}
			b.ReportAllocs()
			b.SetParallelism(benchClients)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					e.do(b, http.MethodPut, "/dss/v1/operational_intent_references/"+benchOIRID(i), bodies[i], http.StatusCreated)
				}
			})
		})
		b.Run(kind+"/DeleteOIR", func(b *testing.B) {
			e := newBenchEnv(b, kind)
			now := time.Now().UTC()
			paths := make([]string, b.N)
			for i := range paths {
				paths[i] = "/dss/v1/operational_intent_references/" + benchOIRID(int64(i)) + "/" + e.create(b, int64(i), now)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(benchClients)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.do(b, http.MethodDelete, paths[next.Add(1)-1], "", http.StatusOK)
				}
			})
		})
		b.Run(kind+"/QueryOIR", func(b *testing.B) {
			// 1,000 OIRs; each query's area holds exactly one of them.
			const population = 1000
			e := newBenchEnv(b, kind)
			now := time.Now().UTC()
			for i := range int64(population) {
				e.create(b, i, now)
			}
			bodies := make([]string, population)
			for i := range bodies {
				bodies[i] = benchQuery(int64(i), now)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(benchClients)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % population
					out := e.do(b, http.MethodPost, "/dss/v1/operational_intent_references/query", bodies[i], http.StatusOK)
					if len(out) < 100 {
						b.Errorf("query %d: %s", i, out)
					}
				}
			})
		})
	}
}
