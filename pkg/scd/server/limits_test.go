package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftdss/dss/pkg/geo"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// combJSON is the cell-amplification outline as a volume: 100 teeth 0.1 m
// wide and 7 000 km long (~85 km², under the area limit; ~530 000 cells
// unbounded; a ~20 KB body).
func combJSON() string {
	const lat0, lng0, lenKm, widthM, gapM = -30.0, 10.0, 7000.0, 0.1, 1000.0
	mLng := func(m float64) float64 { return m / 1000 / 111.195 / math.Cos(lat0*math.Pi/180) }
	top := lat0 + lenKm/111.195
	var b strings.Builder
	x := lng0
	for range 100 {
		fmt.Fprintf(&b, `{"lat":%v,"lng":%v},{"lat":%v,"lng":%v},{"lat":%v,"lng":%v},{"lat":%v,"lng":%v},`,
			lat0, x, top, x, top, x+mLng(widthM), lat0, x+mLng(widthM))
		x += mLng(widthM + gapM)
	}
	x -= mLng(gapM)
	fmt.Fprintf(&b, `{"lat":%v,"lng":%v},{"lat":%v,"lng":%v}`, lat0-0.0001, x, lat0-0.0001, lng0)
	return polygonVolume(b.String())
}

// needleJSON is one tooth: 0.1 m × 15 000 km.
func needleJSON() string {
	w := 0.0001 / 111.195 / math.Cos(70*math.Pi/180)
	return polygonVolume(fmt.Sprintf(`{"lat":-70,"lng":10},{"lat":65,"lng":10},{"lat":65,"lng":%v},{"lat":-70,"lng":%v}`, 10+w, 10+w))
}

// squareJSON is a sideKm square centred on lat, lng.
func squareJSON(lat, lng, sideKm float64) string {
	d := sideKm / 2 / 111.195
	e := d / math.Cos(lat*math.Pi/180)
	return polygonVolume(fmt.Sprintf(`{"lat":%v,"lng":%v},{"lat":%v,"lng":%v},{"lat":%v,"lng":%v},{"lat":%v,"lng":%v}`,
		lat-d, lng-e, lat-d, lng+e, lat+d, lng+e, lat+d, lng-e))
}

func polygonVolume(vertices string) string {
	return fmt.Sprintf(`{"volume": {"outline_polygon": {"vertices": [%s]},
		"altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
		"altitude_upper": {"value": 120, "reference": "W84", "units": "M"}},
		"time_start": %s, "time_end": %s}`, vertices, tm(time.Minute), tm(time.Hour))
}

// bodiesWith returns, for each endpoint that takes a footprint, its path
// and a body whose footprint (or extents) is vol.
func bodiesWith(extents ...string) []struct{ method, path, body string } {
	all := strings.Join(extents, ",")
	return []struct{ method, path, body string }{
		{"POST", "/dss/v1/operational_intent_references/query", fmt.Sprintf(`{"area_of_interest": %s}`, extents[0])},
		{"POST", "/dss/v1/constraint_references/query", fmt.Sprintf(`{"area_of_interest": %s}`, extents[0])},
		{"POST", "/dss/v1/subscriptions/query", fmt.Sprintf(`{"area_of_interest": %s}`, extents[0])},
		{"PUT", "/dss/v1/operational_intent_references/" + oirID, fmt.Sprintf(
			`{"extents": [%s], "state": "Accepted", "uss_base_url": "https://uss1.example.com", "new_subscription": {"uss_base_url": "https://uss1.example.com"}}`, all)},
		{"PUT", "/dss/v1/constraint_references/" + oirID, fmt.Sprintf(`{"extents": [%s], "uss_base_url": "https://uss1.example.com"}`, all)},
		{"PUT", "/dss/v1/subscriptions/" + subID, fmt.Sprintf(
			`{"extents": %s, "uss_base_url": "https://uss1.example.com", "notify_for_operational_intents": true}`, extents[0])},
	}
}

// TestAmplifyingOutlinesAre400: needle and comb outlines, in every query
// and every PUT, get 400 "area too complex" within milliseconds (asserted:
// under a second, for a noisy machine; BenchmarkRejectComb in pkg/geo gives
// the real time), the store is never reached and the heap stays flat.
func TestAmplifyingOutlinesAre400(t *testing.T) {
	st := &fakeStore{fn: func(context.Context, scd.Operation) (any, error) {
		return nil, errors.New("store must not be called")
	}}
	h := newHandler(t, st)
	for name, vol := range map[string]string{"comb": combJSON(), "needle": needleJSON()} {
		for _, ep := range bodiesWith(vol) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			rec := do(h, ep.method, ep.path, allScopes, ep.body)
			elapsed := time.Since(start)
			runtime.GC()
			runtime.ReadMemStats(&after)
			msg := wantMessage(t, rec, http.StatusBadRequest)
			if !strings.Contains(msg, "area too complex: its covering exceeds 10000 level-13 cells") {
				t.Errorf("%s %s %s: message %q", name, ep.method, ep.path, msg)
			}
			if elapsed > time.Second {
				t.Errorf("%s %s %s: answered after %v", name, ep.method, ep.path, elapsed)
			}
			if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > 1<<20 {
				t.Errorf("%s %s %s: heap grew by %d bytes", name, ep.method, ep.path, kept)
			}
		}
	}
	if len(st.ops) != 0 {
		t.Fatalf("the store ran %d operations", len(st.ops))
	}

	// The request's limits: too many vertices in one outline and in all.
	var many strings.Builder
	for k := range geo.MaxVerticesPerPolygon + 1 {
		a := 2 * math.Pi * float64(k) / float64(geo.MaxVerticesPerPolygon+1)
		if k > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"lat":%v,"lng":%v}`, 34+0.01*math.Sin(a), -118+0.01*math.Cos(a))
	}
	for _, ep := range bodiesWith(polygonVolume(many.String())) {
		if msg := wantMessage(t, do(h, ep.method, ep.path, allScopes, ep.body), http.StatusBadRequest); !strings.Contains(msg, "2001 vertices; at most 2000") {
			t.Errorf("%s %s: %q", ep.method, ep.path, msg)
		}
	}
	// Eight areas at the limit where cells are smallest (~3 000 cells
	// each): over the request's 20 000 cells.
	var six []string
	for i := range 8 {
		six = append(six, squareJSON(0, 45+float64(i)*0.5, 49.9))
	}
	for _, ep := range bodiesWith(six...)[3:5] {
		if msg := wantMessage(t, do(h, ep.method, ep.path, allScopes, ep.body), http.StatusBadRequest); !strings.Contains(msg, "the request's coverings exceed 20000") {
			t.Errorf("%s %s: %q", ep.method, ep.path, msg)
		}
	}
}

// timeoutLog returns the handler's timeout log lines.
func timeoutLog(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "timed out") {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestGeometryPastTheDeadlineIs503: a request whose covering runs past the
// handler timeout is answered 503 when the covering notices (within
// milliseconds), the log names the covering, and the store is not reached.
func TestGeometryPastTheDeadlineIs503(t *testing.T) {
	// Two finely drawn areas at the limit (2 000 vertices on a 28 km
	// circle each): tens of milliseconds of covering; the timeout is 2 ms.
	// A machine stalled before parsing could make the deadline pass
	// earlier, so a few tries are allowed for the log.
	var fine strings.Builder
	for k := range geo.MaxVerticesPerPolygon {
		a := 2 * math.Pi * float64(k) / geo.MaxVerticesPerPolygon
		if k > 0 {
			fine.WriteByte(',')
		}
		fmt.Fprintf(&fine, `{"lat":%v,"lng":%v}`, 34+0.25*math.Sin(a), -118+0.25/math.Cos(34*math.Pi/180)*math.Cos(a))
	}
	body := bodiesWith(polygonVolume(fine.String()), polygonVolume(fine.String()))[3]
	const timeout = 2 * time.Millisecond
	for try := 0; ; try++ {
		core, logs := observer.New(zap.InfoLevel)
		st := failWith(errors.New("store must not be called"))
		h := newHandler(t, st, func(c *Config) { c.HandlerTimeout = timeout; c.Logger = zap.New(core) })
		start := time.Now()
		rec := do(h, body.method, body.path, allScopes, body.body)
		if elapsed := time.Since(start); elapsed > timeout+time.Second {
			t.Fatalf("answered after %v", elapsed)
		}
		if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("%d %q, want 503 (log %v)", rec.Code, rec.Body.String(), logs.All())
		}
		if len(st.ops) != 0 {
			t.Fatalf("the store ran %d operations after the deadline", len(st.ops))
		}
		lines := timeoutLog(logs)
		if len(lines) == 1 && lines[0] == "request timed out while validating the request and computing the covering" {
			return
		}
		if try == 4 {
			t.Fatalf("log lines %q, want one naming the covering", lines)
		}
	}
}

// TestTimeoutAnswersOnTimeOnARealServer: over real connections, with a
// short --server_timeout, a store that waits and a body that arrives too
// slowly both get a complete 503 at the timeout ± 1 s (never an empty
// reply), and the log names the step.
func TestTimeoutAnswersOnTimeOnARealServer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	core, logs := observer.New(zap.InfoLevel)
	slow := &fakeStore{fn: func(ctx context.Context, _ scd.Operation) (any, error) {
		<-ctx.Done()
		return nil, errors.New("raftstore: read barrier not confirmed by a quorum")
	}}
	h := newHandler(t, slow, func(c *Config) { c.HandlerTimeout = timeout; c.Logger = zap.New(core) })
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}

	check := func(req *http.Request, wantLog string) {
		t.Helper()
		req.Header.Set("Authorization", "Bearer "+allScopes)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", wantLog, err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		elapsed := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "request timed out") {
			t.Fatalf("%s: %d %q %v", wantLog, resp.StatusCode, b, err)
		}
		if elapsed < timeout || elapsed > timeout+time.Second {
			t.Errorf("%s: answered after %v, want %v ± 1 s", wantLog, elapsed, timeout)
		}
		lines := timeoutLog(logs)
		if len(lines) == 0 || lines[len(lines)-1] != wantLog {
			t.Errorf("log %q, want %q last", lines, wantLog)
		}
	}

	req, _ := http.NewRequest("GET", srv.URL+"/dss/v1/operational_intent_references/"+oirID, nil)
	check(req, "request timed out while waiting for the store")

	// A body sent slower than the timeout allows: half of it, then nothing
	// until the client gives up.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = pw.Write([]byte(queryBody[:len(queryBody)/2]))
		time.Sleep(timeout + 2*time.Second)
		_ = pw.CloseWithError(errors.New("client gave up"))
	}()
	req, _ = http.NewRequest("POST", srv.URL+"/dss/v1/operational_intent_references/query", pr)
	req.ContentLength = int64(len(queryBody))
	check(req, "request timed out while reading the request body")
	_ = pw.CloseWithError(errors.New("done"))
	<-done
}

// TestStoredEntityMemoryIsBounded measures what one OIR at the request's
// cell limit costs the in-memory store: its cells are what the limit
// bounds, so its heap is bounded too (~200 bytes per cell that no other
// entity covers: the cell list, the index's map entry and list).
func TestStoredEntityMemoryIsBounded(t *testing.T) {
	ms := memstore.New()
	h := newHandler(t, ms)
	// Five areas at the limit where cells are smallest, plus one smaller:
	// just under MaxCellsPerRequest.
	var vols []string
	for i := range 5 {
		vols = append(vols, squareJSON(0, 45+float64(i)*0.5, 49.9))
	}
	vols = append(vols, squareJSON(0, 47.6, 25))
	body := bodiesWith(vols...)[3]

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := do(h, body.method, body.path, token("uss1", sc), body.body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	rec = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	// The implicit subscription has the same cells, indexed in its own
	// table: two entities' worth.
	perEntity := kept / 2
	t.Logf("one OIR and its implicit subscription at ≤ %d cells: %d bytes kept, %d per entity",
		geo.MaxCellsPerRequest, kept, perEntity)
	if perEntity > geo.MaxCellsPerRequest*300 {
		t.Fatalf("an entity at the cell limit keeps %d bytes (> 300 per cell)", perEntity)
	}
	runtime.KeepAlive(ms)
}
