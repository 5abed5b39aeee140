package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSmoke proves the tool runs end to end and prints every line of its
// report. It asserts no timing: CI machines are too noisy for thresholds,
// and PASS/FAIL lines are information, not test outcomes.
func TestSmoke(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"--smoke", "--dir", t.TempDir()}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{
		"raftbench: 3 nodes in-process",
		"fdatasync 4KiB append",
		"gRPC loopback round trip",
		"writes c=64",
		"writes c=1",
		"reads ReadIndex c=64",
		"reads via log c=64",
		"WAL during writes c=64:",
		"WAL during writes c=1:",
		"leader:",
		"followers:",
		"entries per WAL save",
		"writes/s c=64 / fdatasync/s",
		"ReadIndex reads/s / log reads/s (c=64)",
		"write p50 c=1 / (fdatasync p50 + RPC p50)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(text, "PASS ") + strings.Count(text, "FAIL "); n != 3 {
		t.Errorf("want 3 PASS/FAIL verdicts, got %d", n)
	}
}

// TestSmokeJSON checks that --json emits one decodable object with a
// non-empty measurement in every phase.
func TestSmokeJSON(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"--smoke", "--json", "--dir", t.TempDir()}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var r results
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decoding JSON: %v\n%s", err, out.String())
	}
	for _, p := range []phase{r.Fsync, r.RPC, r.Writes, r.Write1, r.ReadIndex, r.LogReads} {
		if p.Ops == 0 {
			t.Errorf("phase %q measured no operations", p.Name)
		}
	}
	if r.WAL.LeaderSyncs == 0 {
		t.Error("no leader WAL syncs counted during the write phase")
	}
	if len(r.Ratios) != 3 {
		t.Errorf("want 3 ratios, got %d", len(r.Ratios))
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"--duration", "0s"}, &bytes.Buffer{}); err == nil {
		t.Error("--duration 0s accepted")
	}
	if _, err := parseFlags([]string{"extra"}, &bytes.Buffer{}); err == nil {
		t.Error("positional argument accepted")
	}
	o, err := parseFlags([]string{"--smoke", "--duration", "3s"}, &bytes.Buffer{})
	if err != nil || o.duration != 3*time.Second || o.tick != 10*time.Millisecond {
		t.Errorf("--smoke --duration 3s: %+v, %v", o, err)
	}
}
