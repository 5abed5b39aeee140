package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Record kinds of the JSON-lines output.
const (
	kindOp          = "op"
	kindPhase       = "phase"
	kindW2Peak      = "w2_peak"
	kindCalibration = "calibration"
)

// record is one JSON line. One type for every kind keeps the output easy
// to load (jq, pandas): fields that do not apply to a kind are omitted.
type record struct {
	Kind        string  `json:"kind"`
	Label       string  `json:"label,omitempty"`
	Workload    string  `json:"workload,omitempty"`
	Role        string  `json:"role,omitempty"`
	Mode        string  `json:"mode,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	DurationS   float64 `json:"duration_s,omitempty"`
	Op          string  `json:"op,omitempty"`

	OK      uint64  `json:"ok"`
	OKPerS  float64 `json:"ok_per_s"`
	C4xx    uint64  `json:"c4xx"`
	C409    uint64  `json:"c409"`
	C5xx    uint64  `json:"c5xx"`
	Errors  uint64  `json:"errors"`
	P50ms   float64 `json:"p50_ms,omitempty"`
	P95ms   float64 `json:"p95_ms,omitempty"`
	P99ms   float64 `json:"p99_ms,omitempty"`
	MaxMs   float64 `json:"max_ms,omitempty"`
	MeanMs  float64 `json:"mean_ms,omitempty"`
	Sample  string  `json:"sample_error,omitempty"`
	Late    uint64  `json:"late,omitempty"`
	Unsent  uint64  `json:"unsent,omitempty"`
	Flights float64 `json:"flights_per_s,omitempty"`
	Writes  float64 `json:"writes_per_s,omitempty"`
	Queries float64 `json:"queries_per_s,omitempty"`

	// phase, with --target_pids: CPU time (user + system) over the window
	// of the target's processes (and their descendants) and of dssbench,
	// and per successful operation. Absent: not measured.
	TargetCPUs       float64 `json:"target_cpu_s,omitempty"`
	TargetCPUusPerOp float64 `json:"target_cpu_us_per_op,omitempty"`
	BenchCPUs        float64 `json:"bench_cpu_s,omitempty"`
	BenchCPUusPerOp  float64 `json:"bench_cpu_us_per_op,omitempty"`

	// w2_peak
	PeakConcurrency int     `json:"peak_concurrency,omitempty"`
	PeakFlights     float64 `json:"peak_flights_per_s,omitempty"`
	W1AtPeak        float64 `json:"w1_flights_per_s_at_peak,omitempty"`

	// calibration
	Name string `json:"name,omitempty"`
	Dir  string `json:"dir,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeOps are the operations that write to the store.
var writeOps = map[string]bool{
	opPutAccepted: true, opPutActivated: true, opDelete: true, opCreate: true, opUpdate: true,
}

// records turns a phase result into its per-op lines and its summary line.
func (p phaseResult) records(label string) []record {
	secs := p.elapsed.Seconds()
	base := record{
		Label: label, Workload: p.spec.workload, Role: p.spec.role, Mode: p.spec.mode(),
		Concurrency: p.spec.concurrency, Rate: p.spec.rate, DurationS: secs,
	}
	sum := base
	sum.Kind = kindPhase
	sum.Late, sum.Unsent = p.late, p.unsent
	var out []record
	for _, name := range p.names {
		s := p.ops[name]
		r := base
		r.Kind, r.Op = kindOp, name
		r.OK, r.OKPerS = s.ok, float64(s.ok)/secs
		r.C4xx, r.C409, r.C5xx, r.Errors = s.c4xx, s.c409, s.c5xx, s.errs
		r.P50ms, r.P95ms, r.P99ms = ms(s.lat.quantile(.50)), ms(s.lat.quantile(.95)), ms(s.lat.quantile(.99))
		r.MaxMs, r.MeanMs = ms(s.lat.max), ms(s.lat.mean())
		r.Sample = p.errs[name]
		out = append(out, r)
		switch {
		case name == opFlight:
			sum.Flights = r.OKPerS
			continue // its requests are already counted under their own ops
		case name == opQuery:
			sum.Queries = r.OKPerS
		case writeOps[name]:
			sum.Writes += r.OKPerS
		}
		sum.OK += s.ok
		sum.C4xx += s.c4xx
		sum.C409 += s.c409
		sum.C5xx += s.c5xx
		sum.Errors += s.errs
	}
	sum.OKPerS = float64(sum.OK) / secs
	if p.cpu != nil {
		sum.TargetCPUs, sum.TargetCPUusPerOp = perOp(p.cpu.target, sum.OK)
		sum.BenchCPUs, sum.BenchCPUusPerOp = perOp(p.cpu.bench, sum.OK)
	}
	return append(out, sum)
}

// perOp is CPU time d in seconds, and in µs (to 0.1) per one of ok
// operations; zero where not measured (d < 0) or there was no operation.
func perOp(d time.Duration, ok uint64) (secs, usPerOp float64) {
	if d < 0 {
		return 0, 0
	}
	if ok > 0 {
		usPerOp = math.Round(float64(d.Nanoseconds())/float64(ok)/100) / 10
	}
	return float64(d.Microseconds()) / 1e6, usPerOp
}

// output writes JSON lines and collects the markdown table.
type output struct {
	label string
	json  io.Writer
	rows  []record
}

func (o *output) emit(rs ...record) error {
	for _, r := range rs {
		if r.Label == "" {
			r.Label = o.label
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(o.json, "%s\n", b); err != nil {
			return err
		}
		o.rows = append(o.rows, r)
	}
	return nil
}

// markdown renders every record emitted so far as tables.
func (o *output) markdown(w io.Writer) {
	var b strings.Builder
	b.WriteString("| label | workload | load | op | ok/s | ok | 409 | other 4xx | 5xx | errors | p50 ms | p95 ms | p99 ms | max ms | server CPU µs/op |\n")
	b.WriteString("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range o.rows {
		if r.Kind != kindOp && r.Kind != kindPhase {
			continue
		}
		load := fmt.Sprintf("c=%d", r.Concurrency)
		if r.Mode == "open" {
			load = fmt.Sprintf("%g/s", r.Rate)
		}
		wl := r.Workload
		if r.Role != "" {
			wl += " (" + r.Role + ")"
		}
		if r.Kind == kindPhase {
			extra := []string{}
			if r.Flights > 0 {
				extra = append(extra, fmt.Sprintf("flights %.1f/s", r.Flights))
			}
			if r.Writes > 0 {
				extra = append(extra, fmt.Sprintf("writes %.1f/s", r.Writes))
			}
			if r.Queries > 0 {
				extra = append(extra, fmt.Sprintf("queries %.1f/s", r.Queries))
			}
			if r.Unsent > 0 {
				extra = append(extra, fmt.Sprintf("unsent %d", r.Unsent))
			}
			cpu := ""
			if r.TargetCPUusPerOp > 0 {
				cpu = fmt.Sprintf("%.0f", r.TargetCPUusPerOp)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | **all** (%s) | %.1f | %d | %d | %d | %d | %d | | | | | %s |\n",
				r.Label, wl, load, strings.Join(extra, ", "), r.OKPerS, r.OK, r.C409, r.C4xx-r.C409, r.C5xx, r.Errors, cpu)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f | %d | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | |\n",
			r.Label, wl, load, r.Op, r.OKPerS, r.OK, r.C409, r.C4xx-r.C409, r.C5xx, r.Errors,
			r.P50ms, r.P95ms, r.P99ms, r.MaxMs)
	}
	var extra strings.Builder
	for _, r := range o.rows {
		switch r.Kind {
		case kindW2Peak:
			fmt.Fprintf(&extra, "- %s W2 busy cell: peak %.1f flights/s at c=%d (W1 at c=%d: %.1f flights/s), 5xx over all steps: %d\n",
				r.Label, r.PeakFlights, r.PeakConcurrency, r.PeakConcurrency, r.W1AtPeak, r.C5xx)
		case kindCalibration:
			fmt.Fprintf(&extra, "- calibration %s: %.0f/s, p50 %.3f ms, p99 %.3f ms%s\n", r.Name, r.OKPerS, r.P50ms, r.P99ms,
				map[bool]string{true: " (dir " + r.Dir + ")", false: ""}[r.Dir != ""])
		}
	}
	if extra.Len() > 0 {
		b.WriteString("\n")
		b.WriteString(extra.String())
	}
	_, _ = io.WriteString(w, b.String())
}
