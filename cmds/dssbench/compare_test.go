package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/geo"
	"github.com/raftdss/dss/pkg/models"
)

func TestCompareRatios(t *testing.T) {
	rows := []record{
		{Kind: kindCalibration, Name: "fdatasync_4k", OKPerS: 1000},
		{Kind: kindCalibration, Name: "fdatasync_4k", OKPerS: 2000},
		{Kind: kindCalibration, Name: "fdatasync_4k", OKPerS: 9000},
		// Two rounds of raft3 (mean 900 writes/s), one of sql (300).
		{Kind: kindPhase, Label: "raft3", Workload: "w1", Mode: "closed", Concurrency: 64, Writes: 800, Flights: 266},
		{Kind: kindPhase, Label: "raft3", Workload: "w1", Mode: "closed", Concurrency: 64, Writes: 1000, Flights: 333},
		{Kind: kindPhase, Label: "sql", Workload: "w1", Mode: "closed", Concurrency: 64, Writes: 300, Flights: 100},
		// Ignored: another concurrency, and the w2 reference phase.
		{Kind: kindPhase, Label: "sql", Workload: "w1", Mode: "closed", Concurrency: 16, Writes: 1e6},
		{Kind: kindPhase, Label: "sql", Workload: "w1", Role: "w2_reference", Mode: "closed", Concurrency: 64, Writes: 1e6},
		{Kind: kindW2Peak, Label: "raft3", PeakFlights: 100, PeakConcurrency: 8, W1AtPeak: 400},
		// W2's ladder: flight p99 per step, side by side (two rounds of sql at 8 users).
		{Kind: kindOp, Label: "raft3", Workload: "w2", Mode: "closed", Concurrency: 8, Op: opFlight, P99ms: 30},
		{Kind: kindOp, Label: "sql", Workload: "w2", Mode: "closed", Concurrency: 8, Op: opFlight, P99ms: 100},
		{Kind: kindOp, Label: "sql", Workload: "w2", Mode: "closed", Concurrency: 8, Op: opFlight, P99ms: 140},
		{Kind: kindPhase, Label: "sql", Workload: "w2", Mode: "closed", Concurrency: 8, C5xx: 2},
		{Kind: kindOp, Label: "sql", Workload: "w2", Mode: "closed", Concurrency: 16, Op: opFlight, P99ms: 300},
		{Kind: kindPhase, Label: "raft3", Workload: "w3", Mode: "closed", Concurrency: 64, Queries: 5000},
		{Kind: kindPhase, Label: "sql", Workload: "w3", Mode: "closed", Concurrency: 64, Queries: 500},
		{Kind: kindPhase, Label: "raft3log", Workload: "w3", Mode: "closed", Concurrency: 64, Queries: 2000},
		// W3 at another concurrency: an information line, not the target.
		{Kind: kindPhase, Label: "raft3", Workload: "w3", Mode: "closed", Concurrency: 4, Queries: 3000},
		{Kind: kindPhase, Label: "raft3log", Workload: "w3", Mode: "closed", Concurrency: 4, Queries: 500},
		{Kind: kindPhase, Label: "raft3log", Workload: "w3", Mode: "closed", Concurrency: 8, Queries: 700},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "r.jsonl")
	var buf bytes.Buffer
	for _, r := range rows {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runCompare([]string{path}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"W1 writes/s raft3 / sql: 3.00 (900 / 300)",
		"W1 writes/s raft3 / fdatasync per s (median of 3 calibrations): 0.45 (900 / 2000)",
		"W2 peak / W1 at the same concurrency, raft3: 0.25",
		"W3 queries/s raft3 / sql: 10.00 (5000 / 500)",
		"W1 writes/s raft3 / sql: 3.00 (900 / 300) [≥ 10: MISSED]",
		"W2 peak / W1 at the same concurrency, raft3: 0.25 (5xx in the W2 steps: 0) [≥ 0.5: MISSED]",
		"W3 queries/s raft3 / raft3log (reads through the log): 2.50 (5000 / 2000) [≥ 5: MISSED]",
		"| raft3 | 900 | 299.5 |",
		"W2 (busy cell) flight p99 ms [5xx] by users:\n\n| users | raft3 | sql |\n|--:|--:|--:|\n| 8 | 30.0 [0] | 120.0 [2] |\n| 16 | – | 300.0 [0] |\n",
		"W3 queries/s raft3 / raft3log at c=4 (information): 6.00 (3000 / 500)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "c=8") {
		t.Errorf("a W3 ratio at c=8, where only raft3log ran:\n%s", out)
	}
	if strings.Contains(out, "CPU") {
		t.Errorf("server CPU columns or ratio without any CPU numbers:\n%s", out)
	}
	if code := runCompare([]string{filepath.Join(dir, "absent")}, &stdout, &stderr); code != exitFailed {
		t.Errorf("absent file: exit %d", code)
	}
}

// compareRows runs "dssbench compare" on rows written to a file.
func compareRows(t *testing.T, rows []record, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.jsonl")
	var buf bytes.Buffer
	for _, r := range rows {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runCompare(append(args, path), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	return stdout.String()
}

func TestCompareServerCPU(t *testing.T) {
	phase := func(label, wl string, c int, ok uint64, cpuS, benchS float64) record {
		r := record{Kind: kindPhase, Label: label, Workload: wl, Mode: "closed", Concurrency: c, OK: ok,
			Queries: float64(ok) / 2, TargetCPUs: cpuS, BenchCPUs: benchS}
		if cpuS > 0 {
			r.TargetCPUusPerOp = cpuS * 1e6 / float64(ok)
		}
		if benchS > 0 {
			r.BenchCPUusPerOp = benchS * 1e6 / float64(ok)
		}
		return r
	}
	rows := []record{
		// raft3: W3 500 then 700 µs/op over two rounds (mean 600), dssbench 100.
		phase("raft3", "w3", 64, 20000, 10, 2),
		phase("raft3", "w3", 64, 10000, 7, 1),
		phase("raft3", "w1", 64, 10000, 6, 1),
		// W2: Σ CPU / Σ ops over the ladder: 3 s / 5000 = 600 µs.
		phase("raft3", "w2", 1, 1000, 1, 0),
		phase("raft3", "w2", 2, 4000, 2, 0),
		phase("raft3log", "w3", 64, 10000, 9, 1), // 900 µs/op, dssbench 100
		phase("raft3log", "w3", 4, 1000, 2, 0),   // another concurrency: not the headline
		phase("sql", "w3", 64, 1000, 0, 0),       // not measured
	}
	out := compareRows(t, rows, "--num", "raft3", "--den", "sql")
	for _, want := range []string{
		"| W1 server CPU µs/op | W2 server CPU µs/op (all steps) | W3 server CPU µs/op |",
		"| 600 | 600 | 600 |\n", // raft3
		"| – | – | 900 |\n",     // raft3log
		"| – | – | – |\n",       // sql
		"W3 queries/s raft3 / raft3log (reads through the log): 1.50 (7500 / 5000) [≥ 5: MISSED]\n" +
			"- W3 server CPU µs/op raft3log / raft3 (c=64): 1.50 (900 / 600 µs; with dssbench's own CPU: 1.43, 1000 / 700 µs): " +
			"on a CPU-saturated machine, W3 queries/s raft3 / raft3log cannot exceed about this CPU ratio\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	// Only one side measured.
	out = compareRows(t, rows[5:], "--num", "raft3log", "--via_log", "sql")
	if want := "W3 server CPU µs/op sql / raft3log (c=64): n/a"; !strings.Contains(out, want) {
		t.Errorf("missing %q in:\n%s", want, out)
	}
}

// TestFlightsInATileAreCoveredByItsSubscription checks the geometry W1
// relies on: a flight said to lie in a tile has all its S2 cells in the
// tile subscription's cells (else the DSS would answer 400), and a flight
// that straddles tiles is said to lie in none.
func TestFlightsInATileAreCoveredByItsSubscription(t *testing.T) {
	cover := func(r rect) map[models.CellID]bool {
		var vs []models.LatLng
		for _, p := range r.volume(0, 1).OutlinePolygon.Vertices {
			vs = append(vs, models.LatLng{Lat: p.Lat, Lng: p.Lng})
		}
		cells, err := geo.CoverPolygon(vs)
		if err != nil {
			t.Fatal(err)
		}
		m := map[models.CellID]bool{}
		for _, c := range cells {
			m[c] = true
		}
		return m
	}
	tiles := map[int]map[models.CellID]bool{}
	// Flights hugging tile edges and corners are the ones at risk.
	for _, x := range []float64{10.1, 17.85, 10.05, 40.1, 47.85} {
		for _, y := range []float64{0.1, 7.85, 30.1, 37.85, 98.5} {
			r := rect{x, y, x + flightSizeKM, y + flightSizeKM}
			i := r.tile()
			if x == 10.05 {
				if i != -1 {
					t.Errorf("flight at %v,%v inside the margin got tile %d", x, y, i)
				}
				continue
			}
			if y == 98.5 {
				if i != -1 {
					t.Errorf("flight at %v,%v crosses the edge of the area but got tile %d", x, y, i)
				}
				continue
			}
			if i < 0 {
				t.Errorf("flight at %v,%v: no tile", x, y)
				continue
			}
			if tiles[i] == nil {
				tiles[i] = cover(tileRect(i))
			}
			for c := range cover(r) {
				if !tiles[i][c] {
					t.Errorf("flight at %v,%v: cell %d outside tile %d's covering", x, y, c, i)
				}
			}
		}
	}
	if (rect{9, 5, 11, 7}).tile() != -1 {
		t.Error("a flight straddling two tiles got one")
	}
	if n := len(cover(rect{0, 0, 0.002, 0.002})); n != 1 {
		t.Errorf("a 2 m square covers %d cells", n)
	}
}
