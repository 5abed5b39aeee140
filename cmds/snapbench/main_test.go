package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs the tool end to end on a tiny state. It asserts that every
// measurement was made, never what it measured.
func TestSmoke(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--smoke", "--dir", t.TempDir()}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"snapshots:", "writes without a snapshot", "writes during a snapshot", "follower restart"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "snapshots: 0 taken") {
		t.Errorf("no snapshot was taken:\n%s", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--concurrency", "0"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

// TestSoakSmoke runs the soak mode end to end on a few small periods: every
// measurement is made and eviction keeps the state from growing once the
// first flights expired (a count, not a timing).
func TestSoakSmoke(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--soak", "--smoke", "--dir", t.TempDir()}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"| 5 | 800 | 400 |", "- live heap:", "- newest snapshot:", "- follower restart to serving:",
		"- write p99 during eviction batches / without:", "- entities: 800 → 800 (1.00×)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
