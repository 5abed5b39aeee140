// Command core-service runs one DSS node: the ASTM F3548-21 strategic
// coordination API of spec §1 over HTTP. All wiring lives in run (run.go) so
// that tests can start a real node in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent replaces Go's GOGC=100 when the environment sets no
// GOGC. A node's live heap is mostly its state (under 1 KiB per OIR), which
// is small next to what requests allocate, so with GOGC=100 the collector
// runs often over little live data; 400 measured about 10% less CPU per
// write on a 3-node cluster (README, Performance) for a heap of at most 5×
// the state. GOGC (and GOMEMLIMIT) in the environment still win.
const defaultGCPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
