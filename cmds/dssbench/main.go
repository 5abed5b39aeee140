// Command dssbench is a load generator for the DSS's strategic
// coordination API: it measures what a DSS deployment sustains under three
// workloads, and, in the same run, the hardware floors (fdatasync, loopback
// HTTP) those numbers should be judged against.
//
//	dssbench --urls http://127.0.0.1:8080 --token_key dev-key.pem --workload w1 --concurrency 1,16,64
//	dssbench compare results.jsonl
//
// Workloads (README of scripts/bench-compare.sh for the comparison):
//   - w1 flights: create Accepted → activate → delete per flight, 2 km
//     squares in a 100 × 100 km area, explicit tile subscriptions;
//   - w2 busy cell: every flight in one S2 level-13 cell, users added step by
//     step until throughput falls below --w2_drop × its peak;
//   - w3 read-heavy: 100 queries : 10 creates : 5 updates : 1 delete.
//
// Closed loop (--concurrency) runs N users back to back; open loop (--rate)
// starts iterations on a fixed schedule and measures latency from the
// scheduled time, so a slow server cannot hide its queueing. Results are
// JSON lines (--json) and a markdown table; a progress line goes to stderr
// every second. With --target_pids, each phase also reports the CPU time
// that the servers under test and dssbench spent per successful request.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// The load generator shares the CPU with the DSS it measures and its
	// live heap is tiny: collect less often unless GOGC says otherwise.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if len(os.Args) > 1 && os.Args[1] == "compare" {
		code = runCompare(os.Args[2:], os.Stdout, os.Stderr)
	} else {
		code = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}
