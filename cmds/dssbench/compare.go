package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// runCompare implements "dssbench compare FILE...": it reads the JSON
// lines of several runs (targets and rounds mixed) and prints, per target
// label, the mean of each headline number over the rounds, then the ratios
// the comparison is about.
func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dssbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conc := fs.Int("concurrency", 64, "the w1/w3 user count to compare")
	num := fs.String("num", "raft3", "label of the numerator target")
	den := fs.String("den", "sql", "label of the denominator target")
	viaLog := fs.String("via_log", "raft3log",
		"label of the target whose reads go through the Raft log (core-service --raft_reads_via_log: "+
			"each read is proposed as a log entry and executed by every replica), the denominator of the W3 read ratio")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "dssbench compare: give one or more JSON-lines files")
		return exitUsage
	}
	var rows []record
	for _, path := range fs.Args() {
		rs, err := readRecords(path)
		if err != nil {
			fmt.Fprintf(stderr, "dssbench compare: %v\n", err)
			return exitFailed
		}
		rows = append(rows, rs...)
	}
	_, _ = io.WriteString(stdout, compare(rows, *conc, *num, *den, *viaLog))
	return exitOK
}

func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// mean accumulates a value over rounds.
type mean struct {
	sum float64
	n   int
}

func (m *mean) add(v float64) { m.sum += v; m.n++ }

func (m mean) get() (float64, bool) {
	if m.n == 0 {
		return 0, false
	}
	return m.sum / float64(m.n), true
}

// targetNumbers are one label's headline numbers, averaged over rounds.
type targetNumbers struct {
	w1Writes, w1Flights, w1P99         mean // w1 at the compared concurrency
	w2Peak, w2PeakC, w2OverW1, w2Fives mean
	w3Queries, w3QueryP99, w3Writes    mean
	c5xx                               float64
	// Server CPU µs per successful operation (dssbench --target_pids):
	// w1/w3 at the compared concurrency; w2 over every step of its ladder
	// (Σ CPU / Σ operations); w3Bench is dssbench's own.
	w1CPU, w3CPU, w3BenchCPU mean
	w2CPUs, w2Ops            float64
}

// w2CPU is W2's server CPU µs per operation over all its steps.
func (t *targetNumbers) w2CPU() mean {
	if t.w2Ops == 0 {
		return mean{}
	}
	return mean{sum: t.w2CPUs * 1e6 / t.w2Ops, n: 1}
}

// Targets of the issue "make the Raft store win", checked by compare.
const (
	targetW1OverSQL   = 10.0 // W1 writes/s, 3-node Raft / SQL
	targetW1OverFsync = 1.0  // W1 writes/s, 3-node Raft / fdatasync per s
	targetW2OverW1    = 0.5  // W2 peak flights/s / W1 flights/s at the same concurrency
	targetW3OverLog   = 5.0  // W3 queries/s, ReadIndex / reads through the log
)

// addIf adds v to m unless it is 0 (not measured).
func addIf(m *mean, v float64) {
	if v > 0 {
		m.add(v)
	}
}

// cpuRatio prints the W3 server CPU per operation of viaLog over num's,
// the bound of the W3 throughput ratio num / viaLog on a CPU-saturated
// machine, when either target was measured.
func cpuRatio(b *strings.Builder, conc int, n, v *targetNumbers, num, viaLog string) {
	x, ok1 := v.w3CPU.get()
	y, ok2 := n.w3CPU.get()
	if !ok1 && !ok2 {
		return
	}
	what := fmt.Sprintf("W3 server CPU µs/op %s / %s (c=%d)", viaLog, num, conc)
	if !ok1 || !ok2 {
		fmt.Fprintf(b, "- %s: n/a (server CPU measured for only one of them)\n", what)
		return
	}
	fmt.Fprintf(b, "- %s: %.2f (%.0f / %.0f µs", what, x/y, x, y)
	xb, ok1 := v.w3BenchCPU.get()
	yb, ok2 := n.w3BenchCPU.get()
	if ok1 && ok2 {
		fmt.Fprintf(b, "; with dssbench's own CPU: %.2f, %.0f / %.0f µs", (x+xb)/(y+yb), x+xb, y+yb)
	}
	fmt.Fprintf(b, "): on a CPU-saturated machine, W3 queries/s %s / %s cannot exceed about this CPU ratio\n", num, viaLog)
}

// w2Latency renders W2's flight p99 (ms, mean over rounds) and 5xx count
// at every step of the busy-cell ladder, one column per target, so that the
// stores' tail latencies under the same contention sit side by side.
func w2Latency(b *strings.Builder, labels []string, p99, fives map[string]map[int]*mean) {
	var cs []int
	var cols []string
	seen := map[int]bool{}
	for _, l := range labels {
		if len(p99[l]) == 0 {
			continue
		}
		cols = append(cols, l)
		for c := range p99[l] {
			if !seen[c] {
				seen[c] = true
				cs = append(cs, c)
			}
		}
	}
	if len(cols) == 0 {
		return
	}
	sort.Ints(cs)
	b.WriteString("\nW2 (busy cell) flight p99 ms [5xx] by users:\n\n| users |")
	for _, l := range cols {
		fmt.Fprintf(b, " %s |", l)
	}
	b.WriteString("\n|--:|" + strings.Repeat("--:|", len(cols)) + "\n")
	for _, c := range cs {
		fmt.Fprintf(b, "| %d |", c)
		for _, l := range cols {
			m := p99[l][c]
			if m == nil {
				b.WriteString(" – |")
				continue
			}
			v, _ := m.get()
			f := 0.0
			if fm := fives[l][c]; fm != nil {
				f, _ = fm.get()
			}
			fmt.Fprintf(b, " %.1f [%.0f] |", v, f)
		}
		b.WriteString("\n")
	}
}

// compare renders the comparison of rows as markdown. viaLog is the label
// of the run whose reads went through the log ("" or absent: no W3 target
// ratio).
func compare(rows []record, conc int, num, den, viaLog string) string {
	byLabel := map[string]*targetNumbers{}
	get := func(l string) *targetNumbers {
		if byLabel[l] == nil {
			byLabel[l] = &targetNumbers{}
		}
		return byLabel[l]
	}
	var fsync []float64
	// W2 flight p99 and 5xx at every step of the ladder, per label.
	w2P99 := map[string]map[int]*mean{}
	w2Fives := map[string]map[int]*mean{}
	atC := func(m map[string]map[int]*mean, l string, c int) *mean {
		if m[l] == nil {
			m[l] = map[int]*mean{}
		}
		if m[l][c] == nil {
			m[l][c] = &mean{}
		}
		return m[l][c]
	}
	// W3 queries/s at every concurrency, per label: the W3 ratio at other
	// user counts than conc is printed for information (no target).
	w3ByC := map[string]map[int]*mean{}
	for _, r := range rows {
		if r.Kind == kindPhase && r.Role == "" && r.Mode == "closed" && r.Workload == "w3" {
			if w3ByC[r.Label] == nil {
				w3ByC[r.Label] = map[int]*mean{}
			}
			if w3ByC[r.Label][r.Concurrency] == nil {
				w3ByC[r.Label][r.Concurrency] = &mean{}
			}
			w3ByC[r.Label][r.Concurrency].add(r.Queries)
		}
		if r.Kind == kindOp && r.Role == "" && r.Mode == "closed" && r.Workload == "w2" && r.Op == opFlight {
			get(r.Label)
			atC(w2P99, r.Label, r.Concurrency).add(r.P99ms)
		}
		if r.Kind == kindPhase && r.Role == "" && r.Mode == "closed" && r.Workload == "w2" {
			get(r.Label)
			atC(w2Fives, r.Label, r.Concurrency).add(float64(r.C5xx))
		}
		if r.Kind == kindPhase && r.Role == "" && r.Mode == "closed" && r.Workload == "w2" && r.TargetCPUs > 0 {
			t := get(r.Label)
			t.w2CPUs += r.TargetCPUs
			t.w2Ops += float64(r.OK)
		}
		switch {
		case r.Kind == kindCalibration && r.Name == "fdatasync_4k":
			fsync = append(fsync, r.OKPerS)
		case r.Kind == kindPhase && r.Role == "" && r.Mode == "closed" && r.Concurrency == conc:
			t := get(r.Label)
			t.c5xx += float64(r.C5xx)
			switch r.Workload {
			case "w1":
				t.w1Writes.add(r.Writes)
				t.w1Flights.add(r.Flights)
				addIf(&t.w1CPU, r.TargetCPUusPerOp)
			case "w3":
				t.w3Queries.add(r.Queries)
				t.w3Writes.add(r.Writes)
				addIf(&t.w3CPU, r.TargetCPUusPerOp)
				addIf(&t.w3BenchCPU, r.BenchCPUusPerOp)
			}
		case r.Kind == kindOp && r.Role == "" && r.Mode == "closed" && r.Concurrency == conc:
			t := get(r.Label)
			switch {
			case r.Workload == "w1" && r.Op == opFlight:
				t.w1P99.add(r.P99ms)
			case r.Workload == "w3" && r.Op == opQuery:
				t.w3QueryP99.add(r.P99ms)
			}
		case r.Kind == kindW2Peak:
			t := get(r.Label)
			t.w2Peak.add(r.PeakFlights)
			t.w2PeakC.add(float64(r.PeakConcurrency))
			t.w2Fives.add(float64(r.C5xx))
			if r.W1AtPeak > 0 {
				t.w2OverW1.add(r.PeakFlights / r.W1AtPeak)
			}
		}
	}
	labels := make([]string, 0, len(byLabel))
	cpuCols := false
	for l, t := range byLabel {
		labels = append(labels, l)
		cpuCols = cpuCols || t.w1CPU.n > 0 || t.w2Ops > 0 || t.w3CPU.n > 0
	}
	sort.Strings(labels)

	var b strings.Builder
	f := func(m mean, format string) string {
		v, ok := m.get()
		if !ok {
			return "–"
		}
		return fmt.Sprintf(format, v)
	}
	fmt.Fprintf(&b, "| target | W1 writes/s (c=%d) | W1 flights/s | W1 flight p99 ms | W2 peak flights/s | at c | W2 peak / W1 same c | W2 5xx | W3 queries/s (c=%d) | W3 query p99 ms | W3 writes/s |", conc, conc)
	if cpuCols {
		b.WriteString(" W1 server CPU µs/op | W2 server CPU µs/op (all steps) | W3 server CPU µs/op |")
	}
	b.WriteString("\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	if cpuCols {
		b.WriteString("--:|--:|--:|")
	}
	b.WriteString("\n")
	for _, l := range labels {
		t := byLabel[l]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", l,
			f(t.w1Writes, "%.0f"), f(t.w1Flights, "%.1f"), f(t.w1P99, "%.1f"),
			f(t.w2Peak, "%.1f"), f(t.w2PeakC, "%.0f"), f(t.w2OverW1, "%.2f"), f(t.w2Fives, "%.0f"),
			f(t.w3Queries, "%.0f"), f(t.w3QueryP99, "%.1f"), f(t.w3Writes, "%.0f"))
		if cpuCols {
			fmt.Fprintf(&b, " %s | %s | %s |", f(t.w1CPU, "%.0f"), f(t.w2CPU(), "%.0f"), f(t.w3CPU, "%.0f"))
		}
		b.WriteString("\n")
	}
	w2Latency(&b, labels, w2P99, w2Fives)
	if cpuCols {
		b.WriteString("\nServer CPU: user + system time of the target's processes (and their descendants) per successful request.\n")
	}
	b.WriteString("\nRatios (means over rounds; [target] met or MISSED):\n")
	verdict := func(v, target float64) string {
		if target == 0 {
			return ""
		}
		if v >= target {
			return fmt.Sprintf(" [≥ %g: met]", target)
		}
		return fmt.Sprintf(" [≥ %g: MISSED]", target)
	}
	ratio := func(what string, a, c mean, aName, cName string, target float64) {
		x, ok1 := a.get()
		y, ok2 := c.get()
		if !ok1 || !ok2 || y == 0 {
			fmt.Fprintf(&b, "- %s: n/a (no %s or %s numbers)\n", what, aName, cName)
			return
		}
		fmt.Fprintf(&b, "- %s: %.2f (%.0f / %.0f)%s\n", what, x/y, x, y, verdict(x/y, target))
	}
	n, d := get(num), get(den)
	ratio(fmt.Sprintf("W1 writes/s %s / %s", num, den), n.w1Writes, d.w1Writes, num, den, targetW1OverSQL)
	var fs mean
	if len(fsync) > 0 {
		sort.Float64s(fsync)
		fs.add(fsync[len(fsync)/2])
	}
	ratio(fmt.Sprintf("W1 writes/s %s / fdatasync per s (median of %d calibrations)", num, len(fsync)),
		n.w1Writes, fs, num, "calibration", targetW1OverFsync)
	for _, l := range labels {
		t := byLabel[l]
		v, ok := t.w2OverW1.get()
		if !ok {
			continue
		}
		target := 0.0
		if l == num {
			target = targetW2OverW1
		}
		fives, _ := t.w2Fives.get()
		fmt.Fprintf(&b, "- W2 peak / W1 at the same concurrency, %s: %.2f (5xx in the W2 steps: %.0f)%s\n",
			l, v, fives, verdict(v, target))
	}
	ratio(fmt.Sprintf("W3 queries/s %s / %s", num, den), n.w3Queries, d.w3Queries, num, den, 0)
	if viaLog != "" && byLabel[viaLog] != nil {
		ratio(fmt.Sprintf("W3 queries/s %s / %s (reads through the log)", num, viaLog),
			n.w3Queries, get(viaLog).w3Queries, num, viaLog, targetW3OverLog)
		cpuRatio(&b, conc, n, get(viaLog), num, viaLog)
		var others []int
		for c := range w3ByC[num] {
			if c != conc && w3ByC[viaLog][c] != nil {
				others = append(others, c)
			}
		}
		sort.Ints(others)
		for _, c := range others {
			ratio(fmt.Sprintf("W3 queries/s %s / %s at c=%d (information)", num, viaLog, c),
				*w3ByC[num][c], *w3ByC[viaLog][c], num, viaLog, 0)
		}
	} else {
		b.WriteString("- W3 reads through the log: n/a (no run of a node with --raft_reads_via_log)\n")
	}
	return b.String()
}
