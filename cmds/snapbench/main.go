// Command snapbench measures the two Raft-store targets of the dssbench
// issue on an in-process 3-node SCD cluster (memnet transport, real WALs and
// snapshot files under --dir):
//
//   - write p99 while a snapshot is in progress against write p99 without
//     one (target: ≤ 2×), with the state at --oirs OIRs and a snapshot
//     every --snapshot_entries entries;
//
//   - restart of a follower holding that state in its snapshot plus up to
//     --snapshot_entries WAL entries after it, to serving: leader known and
//     everything the cluster committed applied (target: ≤ 2 s at 100,000).
//
//     snapbench                # 100,000 OIRs, ~20 s
//     snapbench --smoke        # tiny and fast; proves the tool works
//
// The cluster starts from a state bootstrapped into every member's data
// directory (raftstore.Bootstrap), so filling it takes seconds, not a
// hundred thousand proposals. Writes are PUT OIR creates (9 cells each, no
// conflicts) from --concurrency closed-loop clients on the leader. A write
// counts as "during a snapshot" when its interval overlaps the interval of a
// snapshot on any node, from the capture to the WAL record
// (consensus.SnapshotEvent). The collector runs with core-service's
// settings (GOGC 400 unless the environment sets GOGC), since a
// snapshot's allocations and the collections they bring are part of what it
// costs the writes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

// gcPercent is core-service's default GOGC (cmds/core-service/main.go), so
// that the tool measures the collector settings production runs with; GOGC
// in the environment still wins, as it does there.
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type config struct {
	oirs            int
	snapshotEntries uint64
	concurrency     int
	duration        time.Duration
	tick            time.Duration
	dir             string

	soak        bool
	soakPeriods int
	soakFlights int
	soakBatch   int
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("snapbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.oirs, "oirs", 100_000, "OIRs in the bootstrapped state")
	fs.Uint64Var(&c.snapshotEntries, "snapshot_entries", 10_000, "consensus SnapshotEntries")
	fs.IntVar(&c.concurrency, "concurrency", 16, "closed-loop writers")
	fs.DurationVar(&c.duration, "duration", 15*time.Second, "length of the measured write phase")
	fs.DurationVar(&c.tick, "tick", 100*time.Millisecond, "raft tick (core-service's default)")
	fs.StringVar(&c.dir, "dir", "", "directory for the data directories (default: a new temporary one, removed after)")
	fs.BoolVar(&c.soak, "soak", false, "soak mode: flights expiring continuously with eviction, for --soak_periods "+
		"retention periods (live heap, snapshot size, restart time, write p99 during eviction; see soak.go)")
	fs.IntVar(&c.soakPeriods, "soak_periods", 12, "with --soak: retention periods to run")
	fs.IntVar(&c.soakFlights, "soak_flights", 5000, "with --soak: flights written per period")
	fs.IntVar(&c.soakBatch, "soak_batch", 500, "with --soak: entities per eviction batch (core-service's is 500)")
	smoke := fs.Bool("smoke", false, "tiny run (1,000 OIRs, snapshots every 100 entries, 1 s): proves the tool works, measures nothing")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *smoke {
		c.oirs, c.snapshotEntries, c.concurrency, c.duration, c.tick = 1000, 100, 4, time.Second, 20*time.Millisecond
		c.soakPeriods, c.soakFlights = 5, 400
	}
	if c.soakPeriods < 2 || c.soakFlights < 2 || c.soakBatch < 1 || c.soakBatch > 10000 {
		return nil, fmt.Errorf("--soak_periods and --soak_flights must be at least 2, --soak_batch 1 to 10000")
	}
	if c.oirs < 0 || c.snapshotEntries == 0 || c.concurrency <= 0 || c.duration <= 0 || c.tick <= 0 {
		return nil, fmt.Errorf("--oirs, --snapshot_entries, --concurrency, --duration and --tick must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "snapbench:", err)
		}
		return 2
	}
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "snapbench-*")
		if err != nil {
			fmt.Fprintln(stderr, "snapbench:", err)
			return 1
		}
		defer os.RemoveAll(d)
		cfg.dir = d
	}
	if cfg.soak {
		res, err := soak(ctx, cfg, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "snapbench:", err)
			return 1
		}
		res.print(stdout)
		return 0
	}
	res, err := bench(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "snapbench:", err)
		return 1
	}
	res.print(stdout)
	return 0
}
