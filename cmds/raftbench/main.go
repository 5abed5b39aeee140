// Command raftbench measures the Raft store's performance against the disk
// and network it runs on, in one run: it calibrates the fdatasync rate and
// latency of 4 KiB appends in the data directory and a loopback gRPC round
// trip, then starts a 3-node kv cluster in-process over gRPC on loopback
// with real WAL fsync and measures writes at 64 clients and at 1, ReadIndex
// reads at 64 clients, and reads proposed through the log at 64 clients.
//
// The machine it runs on may be shared and slow, so it reports RATIOS to the
// calibration taken in the same run, checked against the targets of the
// issue "Consensus, transport and the generic Raft store":
//
//	writes/s (c=64)                 ≥ 1.0 × fdatasync/s   (group commit)
//	ReadIndex reads/s (c=64)        ≥ 5 × log reads/s (c=64)
//	write p50 (c=1)                 ≤ 2 × (fdatasync p50 + gRPC round-trip p50)
//
// It always exits 0 once it has measured (PASS/FAIL is information, not a
// test); only a setup failure exits 1.
//
//	go run ./cmds/raftbench [--duration 5s] [--dir DIR] [--json] [--smoke] [--cpuprofile FILE]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"go.uber.org/zap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "raftbench:", err)
		stop()
		os.Exit(1)
	}
}

type options struct {
	duration   time.Duration
	dir        string
	json       bool
	smoke      bool
	cpuprofile string
	clients    int
	valueBytes int
	keys       int
	tick       time.Duration
	procs      int
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("raftbench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "total measuring time, shared equally by the 2 calibrations and 4 cluster phases")
	fs.StringVar(&o.dir, "dir", "", "directory for the calibration file and the WALs (default: a temp dir); a fresh subdirectory is used and removed")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	fs.BoolVar(&o.smoke, "smoke", false, "a ~2 s run that only proves the tool works (sets --duration 900ms, --tick 10ms unless given)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the cluster phases to this file")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients of the many-client phases")
	fs.IntVar(&o.valueBytes, "value_bytes", 1024, "bytes per written value")
	fs.IntVar(&o.keys, "keys", 1024, "distinct keys written and read")
	fs.DurationVar(&o.tick, "tick", 20*time.Millisecond, "raft tick (elections take 10-20 ticks)")
	fs.IntVar(&o.procs, "procs", 0, "GOMAXPROCS for the run; 0 keeps Go's default. The 3 nodes share one runtime here, so 3×cores models 3 processes on this machine")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		if !set["duration"] {
			o.duration = 900 * time.Millisecond
		}
		if !set["tick"] {
			o.tick = 10 * time.Millisecond
		}
	}
	if o.duration <= 0 || o.clients <= 0 || o.valueBytes < 0 || o.keys <= 0 || o.tick <= 0 || o.procs < 0 {
		return o, errors.New("--duration, --clients, --keys and --tick must be positive, --value_bytes and --procs not negative")
	}
	return o, nil
}

// results is everything one run measured; it is also the JSON output.
type results struct {
	Dir        string  `json:"dir"`
	Nodes      int     `json:"nodes"`
	ValueBytes int     `json:"value_bytes"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	CPUs       int     `json:"cpus"`
	Fsync      phase   `json:"fdatasync"`
	RPC        phase   `json:"grpc_round_trip"`
	Writes     phase   `json:"writes_many"`
	Write1     phase   `json:"writes_one"`
	ReadIndex  phase   `json:"reads_readindex"`
	LogReads   phase   `json:"reads_log"`
	WAL        walInfo `json:"wal_writes_many"`
	WAL1       walInfo `json:"wal_writes_one"`
	Ratios     []ratio `json:"ratios"`
}

// walInfo is group commit during the many-client write phase.
type walInfo struct {
	LeaderEntriesPerSync    float64 `json:"leader_entries_per_sync"`
	LeaderSyncs             uint64  `json:"leader_syncs"`
	LeaderMeanSaveMs        float64 `json:"leader_mean_save_ms"`
	FollowerEntriesPerSync  float64 `json:"follower_entries_per_sync"`
	LeaderEntriesPerApply   float64 `json:"leader_entries_per_apply"`
	LeaderSyncsPerSecond    float64 `json:"leader_syncs_per_sec"`
	FsyncShareOfLeaderTime  float64 `json:"fsync_share_of_leader_time"`
	LeaderReadysPerSecond   float64 `json:"leader_readys_per_sec"`
	FollowerSyncsPerSecond  float64 `json:"follower_syncs_per_sec"`
	FollowerMeanSaveMs      float64 `json:"follower_mean_save_ms"`
	FollowerEntriesPerApply float64 `json:"follower_entries_per_apply"`
}

type ratio struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Op     string  `json:"op"`
	Target float64 `json:"target"`
	Pass   bool    `json:"pass"`
}

func newRatio(name string, value float64, op string, target float64) ratio {
	pass := value >= target
	if op == "<=" {
		pass = value <= target
	}
	return ratio{Name: name, Value: value, Op: op, Target: target, Pass: pass}
}

// div is a/b, or 0 when b is 0 (a phase with no successful operation), so
// that a ratio is always a finite number JSON can carry.
func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	if o.procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.procs))
	}
	base := o.dir
	if base != "" {
		if err := os.MkdirAll(base, 0o700); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp(base, "raftbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Two calibrations and four cluster phases share the duration equally.
	share := o.duration / 6
	r := results{Dir: dir, Nodes: 3, ValueBytes: o.valueBytes, GOMAXPROCS: runtime.GOMAXPROCS(0), CPUs: runtime.NumCPU()}
	if r.Fsync, err = calibrateFsync(dir, share); err != nil {
		return err
	}
	if r.RPC, err = calibrateRPC(ctx, share); err != nil {
		return err
	}
	if err := measureCluster(ctx, o, dir, share, &r); err != nil {
		return err
	}
	r.Ratios = []ratio{
		newRatio("writes/s c=64 / fdatasync/s", div(r.Writes.PerSec, r.Fsync.PerSec), ">=", 1.0),
		newRatio("ReadIndex reads/s / log reads/s (c=64)", div(r.ReadIndex.PerSec, r.LogReads.PerSec), ">=", 5.0),
		newRatio("write p50 c=1 / (fdatasync p50 + RPC p50)", div(r.Write1.P50ms, r.Fsync.P50ms+r.RPC.P50ms), "<=", 2.0),
	}
	if o.clients != 64 {
		r.Ratios[0].Name = fmt.Sprintf("writes/s c=%d / fdatasync/s", o.clients)
		r.Ratios[1].Name = fmt.Sprintf("ReadIndex reads/s / log reads/s (c=%d)", o.clients)
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printTable(out, &r)
	return nil
}

// measureCluster starts the cluster and runs the four phases against its
// leader (proposals on a follower take one more hop, which the targets do
// not count).
func measureCluster(ctx context.Context, o options, dir string, share time.Duration, r *results) error {
	c, err := startCluster(dir, 3, o.tick, zap.NewNop())
	if err != nil {
		return err
	}
	defer c.stop()
	lctx, cancel := context.WithTimeout(ctx, 100*o.tick+5*time.Second)
	defer cancel()
	if _, err := c.leader(lctx); err != nil {
		return err
	}

	keys := make([]string, o.keys)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	value := make([]byte, o.valueBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	key := func(client, i int) string { return keys[(client*7919+i)%len(keys)] }

	// Warm up (connections, allocator, WAL segment) and write every key, so
	// that reads find values. Not measured.
	lead, err := c.leader(lctx)
	if err != nil {
		return err
	}
	if err := fill(ctx, lead, o.clients, keys, value); err != nil {
		return fmt.Errorf("warm-up writes: %w", err)
	}

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	// Writes at many clients, with the WAL counters of the phase.
	if lead, err = c.leader(lctx); err != nil {
		return err
	}
	before := c.stats()
	r.Writes = runLoad(ctx, fmt.Sprintf("writes c=%d", o.clients), o.clients, share,
		func(ctx context.Context, client, i int) error {
			_, err := lead.store.Transact(ctx, encodePut(key(client, i), value))
			return err
		})
	after := c.stats()
	r.WAL = walStats(c, lead, before, after, r.Writes.Seconds)

	// Writes at one client: latency.
	before = c.stats()
	r.Write1 = runLoad(ctx, "writes c=1", 1, share, func(ctx context.Context, client, i int) error {
		_, err := lead.store.Transact(ctx, encodePut(key(client, i), value))
		return err
	})
	r.WAL1 = walStats(c, lead, before, c.stats(), r.Write1.Seconds)

	// Reads: ReadIndex barrier, then the local map; and the same Get
	// proposed as a log entry.
	r.ReadIndex = runLoad(ctx, fmt.Sprintf("reads ReadIndex c=%d", o.clients), o.clients, share,
		func(ctx context.Context, client, i int) error {
			_, err := lead.store.Read(ctx, func() (any, error) {
				v, _ := lead.sm.Get(key(client, i))
				return v, nil
			})
			return err
		})
	r.LogReads = runLoad(ctx, fmt.Sprintf("reads via log c=%d", o.clients), o.clients, share,
		func(ctx context.Context, client, i int) error {
			_, err := lead.store.Transact(ctx, encodeGet(key(client, i)))
			return err
		})
	return ctx.Err()
}
