package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftdss/dss/pkg/auth"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // set-up failed, or --check found failures
	exitUsage  = 2
)

// config is everything the flags decide.
type config struct {
	urls           []string
	label          string
	workloads      []string
	concurrency    []int
	w2Concurrency  []int
	rate           float64
	maxInFlight    int
	duration       time.Duration
	jsonPath       string
	markdownPath   string
	tokenKey       string
	audience       string
	requestTimeout time.Duration
	w2Drop         float64
	w2Reference    bool
	w3Seed         int
	calibrateDir   string
	calibrateFor   time.Duration
	check          bool
	cpuProfile     string
	targetPIDs     []int
	set            settings
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("dssbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("urls", "http://127.0.0.1:8080", "comma-separated DSS base URLs; requests rotate across them")
	fs.StringVar(&cfg.label, "label", "dss", "name of the target in the output (e.g. raft3, sql)")
	workloads := fs.String("workload", "w1", "workloads to run in order, comma-separated: w1, w2, w3")
	conc := fs.String("concurrency", "16", "closed loop: comma-separated user counts, one phase each (w1, w3)")
	w2conc := fs.String("w2_concurrency", "1,2,4,8,16,32,64,128,256",
		"w2: user counts tried in order until throughput falls below --w2_drop × its peak")
	fs.Float64Var(&cfg.rate, "rate", 0, "open loop: iterations (flights for w1/w2, operations for w3) per second; "+
		"replaces --concurrency and the w2 ladder")
	fs.IntVar(&cfg.maxInFlight, "max_inflight", 512, "open loop: most iterations in flight at once")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each measured phase")
	fs.StringVar(&cfg.jsonPath, "json", "", "file for the JSON-lines results (default stdout)")
	fs.StringVar(&cfg.markdownPath, "markdown", "",
		"file for the markdown table (default stdout when --json is a file, else stderr)")
	fs.StringVar(&cfg.tokenKey, "token_key", "", "RSA private key (PEM) that signs the simulated USSs' tokens (required)")
	fs.StringVar(&cfg.audience, "audience", auth.DefaultDevAudience, "aud claim of the tokens")
	fs.DurationVar(&cfg.requestTimeout, "request_timeout", 30*time.Second, "client timeout of one request")
	fs.IntVar(&cfg.set.usses, "usses", 8, "number of simulated USSs (token identities); users are spread over them")
	fs.DurationVar(&cfg.set.horizon, "horizon", 4*time.Hour, "w1/w3 flights start at random within this long")
	fs.IntVar(&cfg.set.w1Retries, "w1_retries", 1, "w1/w3: PUT retries after a 409 with missing OIRs")
	fs.IntVar(&cfg.set.w2Attempts, "w2_attempts", 10, "w2: PUT attempts per step when 409s keep coming")
	fs.Float64Var(&cfg.w2Drop, "w2_drop", 0.7, "w2: stop adding users when flights/s < this × peak")
	fs.BoolVar(&cfg.w2Reference, "w2_reference", true, "w2: also run w1 at the peak's user count, for the ratio")
	mix := fs.String("w3_mix", "100,10,5,1", "w3: weights of query,create,update,delete")
	fs.IntVar(&cfg.w3Seed, "w3_seed", 500, "w3: OIRs created (not measured) before the first phase")
	fs.StringVar(&cfg.calibrateDir, "calibrate_dir", os.TempDir(), "directory on the data disk for the fdatasync calibration")
	fs.DurationVar(&cfg.calibrateFor, "calibrate_duration", time.Second, "length of each calibration (0: none)")
	fs.BoolVar(&cfg.check, "check", false, "exit 1 unless every phase had successful requests of every operation "+
		"type and no 5xx or transport errors (for smoke tests; asserts no timings)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "",
		"debug: write a CPU profile of dssbench itself to this file (to see what the load generator costs)")
	pids := fs.String("target_pids", "", "comma-separated PIDs of the server processes under test: each phase then "+
		"reports their CPU time (with their descendants', from /proc) and dssbench's own, and both per successful operation")
	fs.StringVar(&cfg.set.ussBaseURLF, "uss_base_url", "https://uss%d.dssbench.example", "uss_base_url pattern (%d = USS index)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.urls = append(cfg.urls, u)
		}
	}
	if len(cfg.urls) == 0 {
		return nil, errors.New("--urls is empty")
	}
	for _, w := range strings.Split(*workloads, ",") {
		switch w = strings.TrimSpace(w); w {
		case "w1", "w2", "w3":
			cfg.workloads = append(cfg.workloads, w)
		default:
			return nil, fmt.Errorf("--workload: unknown %q (want w1, w2 or w3)", w)
		}
	}
	var err error
	if cfg.concurrency, err = parseInts("--concurrency", *conc); err != nil {
		return nil, err
	}
	if cfg.w2Concurrency, err = parseInts("--w2_concurrency", *w2conc); err != nil {
		return nil, err
	}
	m, err := parseInts("--w3_mix", *mix)
	if err != nil {
		return nil, err
	}
	if len(m) != 4 {
		return nil, fmt.Errorf("--w3_mix: want 4 weights, got %d", len(m))
	}
	copy(cfg.set.w3Mix[:], m)
	if strings.TrimSpace(*pids) != "" {
		if cfg.targetPIDs, err = parseInts("--target_pids", *pids); err != nil {
			return nil, err
		}
		if slices.Contains(cfg.targetPIDs, 0) {
			return nil, errors.New("--target_pids: 0 is not a PID")
		}
	}
	switch {
	case cfg.tokenKey == "":
		return nil, errors.New("--token_key is required (e.g. the --dev_dir's dev-key.pem of core-service)")
	case cfg.duration <= 0:
		return nil, errors.New("--duration must be positive")
	case cfg.rate < 0 || cfg.maxInFlight < 1:
		return nil, errors.New("--rate must be ≥ 0 and --max_inflight ≥ 1")
	case cfg.set.usses < 1 || cfg.set.w1Retries < 0 || cfg.set.w2Attempts < 1 || cfg.w3Seed < 0:
		return nil, errors.New("--usses and --w2_attempts must be ≥ 1, --w1_retries and --w3_seed ≥ 0")
	case cfg.set.horizon < time.Minute:
		return nil, errors.New("--horizon must be at least 1m")
	case cfg.w2Drop <= 0 || cfg.w2Drop >= 1:
		return nil, errors.New("--w2_drop must be in (0, 1)")
	case !strings.Contains(cfg.set.ussBaseURLF, "%d"):
		return nil, errors.New("--uss_base_url must contain %d")
	}
	return cfg, nil
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %q is not a non-negative integer", name, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is empty", name)
	}
	return out, nil
}

// run is the whole load-generating command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "dssbench: %v\n", err)
		return exitUsage
	}
	key, err := auth.LoadPrivateKey(cfg.tokenKey)
	if err != nil {
		fmt.Fprintf(stderr, "dssbench: %v\n", err)
		return exitUsage
	}

	jsonW, mdW := stdout, stderr
	if cfg.jsonPath != "" && cfg.jsonPath != "-" {
		f, err := os.Create(cfg.jsonPath)
		if err != nil {
			fmt.Fprintf(stderr, "dssbench: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		jsonW, mdW = f, stdout
	}
	if cfg.markdownPath != "" {
		f, err := os.Create(cfg.markdownPath)
		if err != nil {
			fmt.Fprintf(stderr, "dssbench: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		mdW = f
	}

	c, err := newClient(cfg.urls, key, cfg.audience, cfg.set.usses, cfg.requestTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "dssbench: %v\n", err)
		return exitUsage
	}
	defer c.close()
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "dssbench: --cpuprofile: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	out := &output{label: cfg.label, json: jsonW}
	b := &bench{cfg: cfg, c: c, out: out, progress: stderr}
	if len(cfg.targetPIDs) > 0 {
		b.cpu = &cpuMeter{proc: "/proc", pids: cfg.targetPIDs}
	}
	err = b.all(ctx)
	out.markdown(mdW)
	if err != nil {
		fmt.Fprintf(stderr, "dssbench: %v\n", err)
		return exitFailed
	}
	if cfg.check {
		if problems := check(out.rows); len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintf(stderr, "dssbench: check: %s\n", p)
			}
			return exitFailed
		}
	}
	return exitOK
}

// bench runs the configured calibrations and workloads.
type bench struct {
	cfg      *config
	c        *client
	out      *output
	progress io.Writer
	results  []phaseResult
	cpu      *cpuMeter // nil without --target_pids
	cpuWarn  bool      // a missing CPU measurement was reported
}

func (b *bench) all(ctx context.Context) error {
	if b.cfg.calibrateFor > 0 {
		r, err := calibrateFsync(b.cfg.calibrateDir, b.cfg.calibrateFor)
		if err != nil {
			return err
		}
		if err := b.out.emit(r); err != nil {
			return err
		}
		if r, err = calibrateHTTP(ctx, b.cfg.calibrateFor); err != nil {
			return err
		}
		if err := b.out.emit(r); err != nil {
			return err
		}
	}
	for _, w := range b.cfg.workloads {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A fresh session per workload: its own OVN book and subscriptions.
		s := newSession(b.c, b.cfg.set)
		var err error
		switch w {
		case "w1":
			err = b.w1(ctx, s)
		case "w2":
			err = b.w2(ctx, s)
		case "w3":
			err = b.w3(ctx, s)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", w, err)
		}
	}
	return nil
}

// phase runs one phase and emits its records.
func (b *bench) phase(ctx context.Context, s *session, spec phaseSpec, iter iterFunc) (phaseResult, error) {
	r := runPhase(ctx, s, spec, iter, b.progress, b.cpu)
	if r.cpu != nil && r.cpu.err != nil && !b.cpuWarn {
		b.cpuWarn = true
		fmt.Fprintf(b.progress, "dssbench: warning: %v (CPU time left out of the phases where it cannot be read)\n", r.cpu.err)
	}
	b.results = append(b.results, r)
	if err := b.out.emit(r.records("")...); err != nil {
		return r, err
	}
	return r, ctx.Err()
}

// loads are the phases of a workload's run: one per --concurrency value,
// or a single open-loop phase at --rate.
func (b *bench) loads(workload string, levels []int) []phaseSpec {
	if b.cfg.rate > 0 {
		return []phaseSpec{{workload: workload, rate: b.cfg.rate, concurrency: b.cfg.maxInFlight, duration: b.cfg.duration}}
	}
	var out []phaseSpec
	for _, c := range levels {
		if c > 0 {
			out = append(out, phaseSpec{workload: workload, concurrency: c, duration: b.cfg.duration})
		}
	}
	return out
}

func flightIter(busy bool) iterFunc {
	return func(ctx context.Context, w *worker, scheduled time.Time) { w.flight(ctx, busy, scheduled) }
}

func (b *bench) w1(ctx context.Context, s *session) error {
	if err := s.setUpTiles(ctx); err != nil {
		return err
	}
	for _, spec := range b.loads("w1", b.cfg.concurrency) {
		if _, err := b.phase(ctx, s, spec, flightIter(false)); err != nil {
			return err
		}
	}
	return nil
}

// w2 adds users step by step and reports the peak; with --rate it runs
// one open-loop phase instead.
func (b *bench) w2(ctx context.Context, s *session) error {
	if err := s.setUpBusyCell(ctx); err != nil {
		return err
	}
	peak := record{Kind: kindW2Peak}
	for _, spec := range b.loads("w2", b.cfg.w2Concurrency) {
		r, err := b.phase(ctx, s, spec, flightIter(true))
		if err != nil {
			return err
		}
		sum := r.records("")
		f := sum[len(sum)-1]
		peak.C5xx += f.C5xx
		peak.Errors += f.Errors
		if f.Flights > peak.PeakFlights {
			peak.PeakFlights, peak.PeakConcurrency = f.Flights, spec.concurrency
		}
		if spec.rate == 0 && f.Flights < b.cfg.w2Drop*peak.PeakFlights {
			break
		}
	}
	if b.cfg.rate > 0 {
		peak.Rate = b.cfg.rate
	} else if b.cfg.w2Reference && peak.PeakConcurrency > 0 {
		// W1 at the same user count: how much the busy cell costs.
		if err := s.setUpTiles(ctx); err != nil {
			return err
		}
		spec := phaseSpec{workload: "w1", role: "w2_reference", concurrency: peak.PeakConcurrency, duration: b.cfg.duration}
		r, err := b.phase(ctx, s, spec, flightIter(false))
		if err != nil {
			return err
		}
		sum := r.records("")
		peak.W1AtPeak = sum[len(sum)-1].Flights
	}
	peak.Workload = "w2"
	return b.out.emit(peak)
}

// w3 seeds the area with OIRs, runs its phases, then deletes what it
// created so that the next workload finds the store as it was.
func (b *bench) w3(ctx context.Context, s *session) error {
	if err := s.setUpTiles(ctx); err != nil {
		return err
	}
	seedRec := newRecorder(time.Now().Add(24 * time.Hour))
	if err := parallel(ctx, s, seedRec, b.cfg.w3Seed, func(ctx context.Context, w *worker) {
		w.create(ctx, opCreate, time.Time{})
	}); err != nil {
		return err
	}
	if b.cfg.w3Seed > 0 {
		_, ops, errs := seedRec.snapshot()
		if ops[opCreate].ok == 0 {
			return fmt.Errorf("seeding created no OIR (last error: %s)", errs[opCreate])
		}
	}
	defer b.cleanUp(s)
	iter := func(ctx context.Context, w *worker, scheduled time.Time) { w.w3op(ctx, scheduled) }
	for _, spec := range b.loads("w3", b.cfg.concurrency) {
		if _, err := b.phase(ctx, s, spec, iter); err != nil {
			return err
		}
	}
	return nil
}

// cleanUp deletes W3's remaining OIRs, unmeasured. It runs even when the
// run was interrupted, on a context of its own bounded in time.
func (b *bench) cleanUp(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := newRecorder(time.Now().Add(time.Hour))
	var wg sync.WaitGroup
	for u := range s.set.usses {
		w := s.newWorker(u, rec)
		wg.Go(func() {
			for ctx.Err() == nil {
				o := s.pool.take(w.uss, w.rng)
				if o == nil {
					return
				}
				w.call(ctx, opDelete, "DELETE", oirPath+o.id+"/"+o.ovn, nil, time.Time{})
				s.book.remove(o.id)
			}
		})
	}
	wg.Wait()
}

// parallel runs f n times on 8 workers (set-up work, unmeasured).
func parallel(ctx context.Context, s *session, rec *recorder, n int, f func(context.Context, *worker)) error {
	var next sync.Mutex
	left := n
	var wg sync.WaitGroup
	for i := range 8 {
		w := s.newWorker(i, rec)
		wg.Go(func() {
			for ctx.Err() == nil {
				next.Lock()
				if left == 0 {
					next.Unlock()
					return
				}
				left--
				next.Unlock()
				f(ctx, w)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// expectedOps are the operations every phase of a workload must have
// succeeded at least once for --check.
var expectedOps = map[string][]string{
	"w1": {opPutAccepted, opPutActivated, opDelete, opFlight},
	"w2": {opPutAccepted, opPutActivated, opDelete, opFlight},
	"w3": {opQuery, opCreate, opUpdate, opDelete},
}

// check lists the failures --check reports.
func check(rows []record) []string {
	var problems []string
	type key struct {
		label, workload, role string
		conc                  int
	}
	seen := map[key]map[string]bool{}
	for _, r := range rows {
		if r.Kind != kindOp {
			continue
		}
		k := key{r.Label, r.Workload, r.Role, r.Concurrency}
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		if r.OK > 0 {
			seen[k][r.Op] = true
		}
		// 409s are the workloads' normal contention; any other 4xx means
		// the bench sent something the DSS rejects, i.e. measured nothing.
		if r.C5xx > 0 || r.Errors > 0 || r.C4xx > r.C409 {
			problems = append(problems, fmt.Sprintf("%s %s c=%d %s: %d 5xx, %d transport errors, %d 4xx other than 409 (%s)",
				r.Label, r.Workload, r.Concurrency, r.Op, r.C5xx, r.Errors, r.C4xx-r.C409, r.Sample))
		}
	}
	for _, r := range rows {
		if r.Kind != kindPhase {
			continue
		}
		k := key{r.Label, r.Workload, r.Role, r.Concurrency}
		for _, op := range expectedOps[r.Workload] {
			if !seen[k][op] {
				problems = append(problems, fmt.Sprintf("%s %s c=%d: no successful %s", r.Label, r.Workload, r.Concurrency, op))
			}
		}
	}
	return problems
}
