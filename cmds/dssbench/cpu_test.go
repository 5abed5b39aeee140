package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statLine is a /proc/<pid>/stat line of a process named comm with the
// given parent and utime, stime, cutime and cstime.
func statLine(comm string, ppid, utime, stime, cutime, cstime int) string {
	return fmt.Sprintf("4242 (%s) S %d 4242 4242 0 -1 4194560 1022 0 0 0 %d %d %d %d "+
		"20 0 9 0 12345 1234567 890 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		comm, ppid, utime, stime, cutime, cstime)
}

func TestParseStat(t *testing.T) {
	for _, comm := range []string{"core-service", "postgres: wal writer", "a) b (c) ) S 1 2 3", "", ")"} {
		st, err := parseStat(statLine(comm, 17, 300, 40, 5, 6))
		if err != nil {
			t.Errorf("comm %q: %v", comm, err)
			continue
		}
		if st.ppid != 17 || st.ticks != 351 {
			t.Errorf("comm %q: %+v, want ppid 17 and 351 ticks", comm, st)
		}
	}
	for _, line := range []string{
		"",
		"4242 core-service S 1 2 3 4 5 6 7 8 9 10 11 12 13 14", // no parentheses
		"4242 (x) S 1 2 3 4 5 6 7 8 9 10 11 12",                // cut short
		strings.Replace(statLine("x", 1, 300, 40, 5, 6), " 300 ", " 3x0 ", 1),
	} {
		if st, err := parseStat(line); err == nil {
			t.Errorf("%q: parsed as %+v", line, st)
		}
	}
	// The real thing, where there is one.
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		st, err := parseStat(string(b))
		if err != nil || st.ppid != os.Getppid() {
			t.Errorf("/proc/self/stat: %+v, %v (ppid %d)", st, err, os.Getppid())
		}
	}
}

// TestTreeCPU sums a process, its descendants and the children they
// reaped, on a fake /proc.
func TestTreeCPU(t *testing.T) {
	proc := t.TempDir()
	for pid, line := range map[int]string{
		10: statLine("postgres", 1, 100, 20, 30, 4), // postmaster: 154
		11: statLine("postgres: backend", 10, 50, 5, 0, 0),
		12: statLine("child of 11", 11, 7, 3, 0, 0),
		20: statLine("core-service", 1, 400, 100, 0, 0),
		30: statLine("unrelated", 1, 9000, 0, 0, 0),
	} {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(proc, "sys"), 0o755); err != nil { // not a process
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(proc, "40"), 0o755); err != nil { // exited: no stat
		t.Fatal(err)
	}
	got, err := treeCPU(proc, []int{20, 10, 11}) // 11 is also under 10: counted once
	if want := (154 + 55 + 10 + 500) * 10 * time.Millisecond; err != nil || got != want {
		t.Errorf("treeCPU = %v, %v; want %v", got, err, want)
	}
	if _, err := treeCPU(proc, []int{20, 40}); err == nil || !strings.Contains(err.Error(), "process 40") {
		t.Errorf("a PID without stat: %v", err)
	}
	if _, err := treeCPU(filepath.Join(proc, "absent"), []int{20}); err == nil {
		t.Error("no /proc: no error")
	}

	// since: a part missing at either end is missing over the window.
	m := &cpuMeter{proc: proc, pids: []int{20}}
	start := m.sample()
	if start.err != nil || start.target != 5*time.Second || start.bench <= 0 {
		t.Fatalf("sample: %+v", start)
	}
	m.pids = []int{40}
	d := m.sample().since(start)
	if d.target != -1 || d.err == nil || d.bench < 0 {
		t.Errorf("window with the process gone: %+v", d)
	}
}

// TestTargetPIDs runs a phase measuring the test process itself (the DSS
// runs in it, so target and dssbench CPU are the same time, read two ways),
// then phases with a PID that does not exist: the target fields are left
// out, with one warning, and the run still succeeds.
func TestTargetPIDs(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	url := startDSS(t)
	key := writeKey(t)
	args := []string{"--urls", url, "--token_key", key, "--workload", "w3", "--concurrency", "2",
		"--duration", "700ms", "--usses", "2", "--w3_seed", "10", "--w3_mix", "10,10,5,5", "--calibrate_duration", "0"}
	code, rows, stderr := runBench(t, append(args, "--target_pids", strconv.Itoa(os.Getpid()))...)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, r := range rows {
		if r.Kind == kindPhase && (r.TargetCPUs <= 0 || r.TargetCPUusPerOp <= 0 || r.BenchCPUs <= 0 ||
			r.BenchCPUusPerOp <= 0 || math.Abs(r.TargetCPUs-r.BenchCPUs) > 0.1+0.2*r.BenchCPUs) {
			t.Errorf("phase without plausible CPU numbers: %+v", r)
		}
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("warning:\n%s", stderr)
	}

	code, rows, stderr = runBench(t, append(args, "--concurrency", "1,2", "--target_pids", "999999999")...)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	phases := 0
	for _, r := range rows {
		if r.Kind == kindPhase {
			phases++
			if r.TargetCPUs != 0 || r.TargetCPUusPerOp != 0 || r.BenchCPUs <= 0 {
				t.Errorf("phase of an absent PID: %+v", r)
			}
		}
	}
	if n := strings.Count(stderr, "warning: --target_pids: process 999999999 not found"); phases != 2 || n != 1 {
		t.Errorf("%d phases, %d warnings:\n%s", phases, n, stderr)
	}
	// Not a PID list: a usage error.
	var stdout, errb bytes.Buffer
	if code := run(t.Context(), append(args, "--target_pids", "12,x"), &stdout, &errb); code != exitUsage {
		t.Errorf("--target_pids 12,x: exit %d", code)
	}
}

func TestMarkdownServerCPU(t *testing.T) {
	var b bytes.Buffer
	o := &output{json: &b}
	p := phaseResult{spec: phaseSpec{workload: "w3", concurrency: 64}, elapsed: time.Second,
		names: []string{opQuery}, ops: map[string]opStats{opQuery: {ok: 4000}},
		cpu: &cpuUse{target: 3 * time.Second, bench: -1}}
	if err := o.emit(p.records("raft3")...); err != nil {
		t.Fatal(err)
	}
	sum := o.rows[len(o.rows)-1]
	if sum.TargetCPUs != 3 || sum.TargetCPUusPerOp != 750 || sum.BenchCPUs != 0 || sum.BenchCPUusPerOp != 0 {
		t.Errorf("phase record: %+v", sum)
	}
	if !strings.Contains(b.String(), `"target_cpu_us_per_op":750`) || strings.Contains(b.String(), "bench_cpu") {
		t.Errorf("JSON: %s", b.String())
	}
	var md strings.Builder
	o.markdown(&md)
	if !strings.Contains(md.String(), "| server CPU µs/op |") || !strings.Contains(md.String(), "| | | | | 750 |\n") {
		t.Errorf("markdown:\n%s", md.String())
	}
}
