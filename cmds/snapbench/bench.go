package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/golang/geo/s2"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/store"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

// t0 is the day the bootstrapped OIRs fly on; the measured writes fly ten
// days later in cells of their own, so they never conflict (no key needed).
var t0 = time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)

// result is what one run measured.
type result struct {
	oirs            int
	snapshotEntries uint64
	concurrency     int

	writes, writesDuring      int
	writesDuringLeader        int
	p99DuringLeader           time.Duration
	p50Without, p99Without    time.Duration
	p50During, p99During      time.Duration
	snapshots                 int
	maxCapture, meanSnapshot  time.Duration
	meanSerialise, meanSave   time.Duration
	p99Serialise, p99Save     time.Duration
	snapshotBytes             int
	restartOpen, restartServe time.Duration
	restartWALEntries         uint64
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "state: %d OIRs bootstrapped; snapshot every %d entries; %d writers\n",
		r.oirs, r.snapshotEntries, r.concurrency)
	fmt.Fprintf(w, "snapshots: %d taken (%d bytes), capture (blocks applies) max %v, capture→durable mean %v "+
		"(serialise %v, file write+fsync %v)\n",
		r.snapshots, r.snapshotBytes, r.maxCapture.Round(time.Microsecond), r.meanSnapshot.Round(time.Millisecond),
		r.meanSerialise.Round(time.Millisecond), r.meanSave.Round(time.Millisecond))
	fmt.Fprintf(w, "writes without a snapshot in progress: %6d  p50 %v  p99 %v\n",
		r.writes-r.writesDuring, r.p50Without.Round(time.Microsecond), r.p99Without.Round(time.Microsecond))
	fmt.Fprintf(w, "writes during a snapshot:              %6d  p50 %v  p99 %v\n",
		r.writesDuring, r.p50During.Round(time.Microsecond), r.p99During.Round(time.Microsecond))
	fmt.Fprintf(w, "  of which overlapping serialisation: p99 %v; file save and WAL record: p99 %v\n",
		r.p99Serialise.Round(time.Microsecond), r.p99Save.Round(time.Microsecond))
	fmt.Fprintf(w, "  of which overlapping a snapshot of the leader: %d, p99 %v\n",
		r.writesDuringLeader, r.p99DuringLeader.Round(time.Microsecond))
	if r.p99Without > 0 && r.writesDuring > 0 {
		fmt.Fprintf(w, "write p99 ratio during/without: %.2f (target ≤ 2)\n", float64(r.p99During)/float64(r.p99Without))
	}
	fmt.Fprintf(w, "follower restart with %d WAL entries after its snapshot: Open %v, to serving %v (target ≤ 2 s)\n",
		r.restartWALEntries, r.restartOpen.Round(time.Millisecond), r.restartServe.Round(time.Millisecond))
}

// cluster is 3 SCD stores over memnet.
type cluster struct {
	cfg    *config
	lg     *zap.Logger
	net    *memnet.Network
	peers  map[uint64]string
	stores map[uint64]*raftstore.Store

	mu    sync.Mutex
	snaps map[uint64][]consensus.SnapshotEvent
}

func (c *cluster) dir(id uint64) string { return filepath.Join(c.cfg.dir, fmt.Sprintf("node%d", id)) }

func (c *cluster) open(id uint64) (*raftstore.Store, error) {
	s, err := raftstore.Open(raftstore.Config{
		Consensus: consensus.Config{
			ID: id, Peers: c.peers, DataDir: c.dir(id), TickInterval: c.cfg.tick,
			SnapshotEntries: c.cfg.snapshotEntries, CatchUpEntries: c.cfg.snapshotEntries / 2,
			Logger: c.lg,
			SnapshotObserver: func(ev consensus.SnapshotEvent) {
				c.mu.Lock()
				c.snaps[id] = append(c.snaps[id], ev)
				c.mu.Unlock()
			},
		},
		NewTransport: func(h transport.Handler) (transport.Transport, error) { return c.net.Transport(id, h), nil },
	})
	if err != nil {
		return nil, err
	}
	c.stores[id] = s
	return s, nil
}

func (c *cluster) stop() {
	for _, s := range c.stores {
		s.Stop()
	}
	c.net.Close()
}

// leader waits for a leader every store agrees on.
func (c *cluster) leader(ctx context.Context) (uint64, error) {
	for {
		var lead uint64
		agreed := true
		for _, s := range c.stores {
			l := s.Status().Leader
			if l == 0 || (lead != 0 && l != lead) {
				agreed = false
			}
			lead = l
		}
		if agreed && c.stores[lead] != nil {
			return lead, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(c.cfg.tick / 4):
		}
	}
}

func bench(ctx context.Context, cfg *config, progress io.Writer) (*result, error) {
	res := &result{oirs: cfg.oirs, snapshotEntries: cfg.snapshotEntries, concurrency: cfg.concurrency}
	fmt.Fprintf(progress, "building a state of %d OIRs...\n", cfg.oirs)
	st, err := buildState(cfg.oirs)
	if err != nil {
		return nil, err
	}
	c, voters, lead, err := startCluster(ctx, cfg, st)
	st = nil // the stores restored their own copies
	defer c.stop()
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "writing for %v with %d writers...\n", cfg.duration, cfg.concurrency)
	w := &writer{store: c.stores[lead]}
	spans, err := w.run(ctx, cfg.concurrency, cfg.duration)
	if err != nil {
		return nil, err
	}
	c.measureWrites(res, spans, lead)

	// Restart a follower just short of its next snapshot: its snapshot plus
	// nearly SnapshotEntries WAL entries after it, the most a restart replays
	// (while no snapshot is in flight).
	follower := voters[0]
	if follower == lead {
		follower = voters[1]
	}
	fmt.Fprintf(progress, "filling follower %d's WAL tail...\n", follower)
	if err := c.fillTail(ctx, w, follower); err != nil {
		return nil, err
	}
	if err := c.measureRestart(ctx, res, lead, follower); err != nil {
		return nil, err
	}
	return res, nil
}

// startCluster bootstraps st into the data directories of 3 voters, opens
// them and waits for a leader. The caller stops the cluster, also when err
// is set.
func startCluster(ctx context.Context, cfg *config, st *memstore.State) (c *cluster, voters []uint64, lead uint64, err error) {
	c = &cluster{cfg: cfg, lg: zap.NewNop(), net: memnet.New(1), peers: map[uint64]string{},
		stores: map[uint64]*raftstore.Store{}, snaps: map[uint64][]consensus.SnapshotEvent{}}
	voters = []uint64{1, 2, 3}
	for _, id := range voters {
		c.peers[id] = fmt.Sprintf("node-%d", id)
		if err := raftstore.Bootstrap(c.dir(id), id, voters, st, c.lg); err != nil {
			return c, voters, 0, err
		}
	}
	for _, id := range voters {
		if _, err := c.open(id); err != nil {
			return c, voters, 0, err
		}
	}
	lead, err = c.leader(ctx)
	return c, voters, lead, err
}

// measureWrites splits the write spans by overlap with any node's snapshot.
func (c *cluster) measureWrites(res *result, spans []span, lead uint64) {
	c.mu.Lock()
	var evs, leadEvs []consensus.SnapshotEvent
	for id, e := range c.snaps {
		evs = append(evs, e...)
		if id == lead {
			leadEvs = append(leadEvs, e...)
		}
	}
	c.mu.Unlock()
	{
		// The writes during the leader's own snapshots: its Ready loop
		// commits every write, a follower's only one of two quorums.
		var onLeader []time.Duration
		for _, s := range spans {
			for _, e := range leadEvs {
				if s.start.Before(e.Done) && s.end.After(e.Start) {
					onLeader = append(onLeader, s.end.Sub(s.start))
					break
				}
			}
		}
		res.writesDuringLeader, res.p99DuringLeader = len(onLeader), quantile(onLeader, .99)
	}
	var during, without []time.Duration
	for _, s := range spans {
		overlaps := false
		for _, e := range evs {
			if s.start.Before(e.Done) && s.end.After(e.Start) {
				overlaps = true
				break
			}
		}
		if overlaps {
			during = append(during, s.end.Sub(s.start))
		} else {
			without = append(without, s.end.Sub(s.start))
		}
	}
	{
		var ser, save []time.Duration
		for _, s := range spans {
			for _, e := range evs {
				serEnd := e.Start.Add(e.Capture + e.Serialise)
				if s.start.Before(serEnd) && s.end.After(e.Start) {
					ser = append(ser, s.end.Sub(s.start))
					break
				}
				if s.start.Before(e.Done) && s.end.After(serEnd) {
					save = append(save, s.end.Sub(s.start))
					break
				}
			}
		}
		res.p99Serialise, res.p99Save = quantile(ser, .99), quantile(save, .99)
	}
	res.writes, res.writesDuring = len(spans), len(during)
	res.p50Without, res.p99Without = quantile(without, 0.5), quantile(without, 0.99)
	res.p50During, res.p99During = quantile(during, 0.5), quantile(during, 0.99)
	res.snapshots = len(evs)
	var total time.Duration
	for _, e := range evs {
		res.maxCapture = max(res.maxCapture, e.Capture)
		total += e.Done.Sub(e.Start)
		res.meanSerialise += e.Serialise / time.Duration(len(evs))
		res.meanSave += e.Save / time.Duration(len(evs))
		res.snapshotBytes = e.Bytes
	}
	if len(evs) > 0 {
		res.meanSnapshot = total / time.Duration(len(evs))
	}
}

// lastSnap is the index of node id's newest snapshot (the bootstrap one
// when it took none).
func (c *cluster) lastSnap(id uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if evs := c.snaps[id]; len(evs) > 0 {
		return evs[len(evs)-1].Index
	}
	return raftstore.BootstrapIndex
}

// fillTail writes until follower's WAL holds at least 90% of
// SnapshotEntries entries after its newest snapshot. A tail of
// SnapshotEntries or more means a snapshot is in flight (or about to
// start): it is waited for, not written past.
func (c *cluster) fillTail(ctx context.Context, w *writer, follower uint64) error {
	want := c.cfg.snapshotEntries * 9 / 10
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		tail := c.stores[follower].Status().Applied - c.lastSnap(follower)
		switch {
		case tail >= want && tail < c.cfg.snapshotEntries:
			return nil
		case tail >= c.cfg.snapshotEntries:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		default:
			if err := w.write(ctx, int(min(want-tail, 1000))); err != nil {
				return err
			}
		}
	}
	return errors.New("could not position the follower's WAL tail")
}

// measureRestart stops follower and times its restart to serving: its
// leader known and everything the leader had committed applied.
func (c *cluster) measureRestart(ctx context.Context, res *result, lead, follower uint64) error {
	// Wait for the follower to apply everything, so the restart replays
	// what it held, then stop it.
	commit := c.stores[lead].Status().Commit
	for c.stores[follower].Status().Applied < commit {
		time.Sleep(time.Millisecond)
	}
	res.restartWALEntries = c.stores[follower].Status().Applied - c.lastSnap(follower)
	c.stores[follower].Stop()
	delete(c.stores, follower)

	start := time.Now()
	s, err := c.open(follower)
	if err != nil {
		return fmt.Errorf("restarting node %d: %w", follower, err)
	}
	res.restartOpen = time.Since(start)
	for {
		st := s.Status()
		if st.Leader != 0 && st.Applied >= commit {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.Done():
			return fmt.Errorf("node %d stopped: %w", follower, s.Err())
		case <-time.After(200 * time.Microsecond):
		}
	}
	res.restartServe = time.Since(start)
	return nil
}

// span is one acknowledged write.
type span struct{ start, end time.Time }

// writer creates OIRs that conflict with nothing: each in 9 cells of its own.
type writer struct {
	store *raftstore.Store
	mu    sync.Mutex
	next  int
}

func (w *writer) op() scd.Operation {
	w.mu.Lock()
	i := w.next
	w.next++
	w.mu.Unlock()
	start := t0.Add(10 * 24 * time.Hour)
	return flight(uuid(2, uint64(i)), i, "uss-bench", time.Now(), start, start.Add(time.Hour))
}

// flight is a PUT of OIR id in 9 cells of its own (from i), with request
// time now, flying from start to end.
func flight(id models.ID, i int, uss string, now, start, end time.Time) scd.Operation {
	cells := make([]models.CellID, 9)
	for k := range cells {
		cells[k] = models.CellID(1<<40 + 9*i + k)
	}
	lo, hi := float32(0), float32(120)
	return &scd.PutOperationalIntent{
		Caller: uss, Now: now, ID: id, State: models.StateAccepted,
		Extents: models.Volume4D{Cells: cells, StartTime: &start, EndTime: &end,
			AltitudeLower: &lo, AltitudeUpper: &hi},
		USSBaseURL: "https://" + uss + ".example/utm",
	}
}

// write does n writes one after another.
func (w *writer) write(ctx context.Context, n int) error {
	for range n {
		if _, err := w.store.Transact(ctx, w.op()); err != nil {
			return err
		}
	}
	return nil
}

// run writes with conc closed-loop clients for d and returns every write's
// span.
func (w *writer) run(ctx context.Context, conc int, d time.Duration) ([]span, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []span
		firstErr error
	)
	for range conc {
		wg.Go(func() {
			var mine []span
			for time.Now().Before(deadline) && ctx.Err() == nil {
				s := span{start: time.Now()}
				if _, err := w.store.Transact(ctx, w.op()); err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					cancel()
					break
				}
				s.end = time.Now()
				mine = append(mine, s)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[min(int(q*float64(len(ds))), len(ds)-1)]
}

// buildState returns a state of n OIRs of ~2 km (the level-13 cell of a
// point and its 8 neighbours) over 100 × 100 km, an hour each in one day,
// from 20 USSs: the load model of memstore's benchmarks.
func buildState(n int) (*memstore.State, error) {
	rng := rand.New(rand.NewPCG(42, 7))
	st := memstore.NewState()
	const batch = 5000
	for i := 0; i < n; i += batch {
		op := loadOp(func(r repos.Repo) error {
			for j := i; j < min(i+batch, n); j++ {
				uss := rng.IntN(20)
				start := t0.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
				lo := float32(rng.IntN(100))
				o := &models.OperationalIntent{
					ID: uuid(1, uint64(j)), Manager: fmt.Sprintf("uss%d", uss), Version: 1, State: models.StateAccepted,
					USSBaseURL: fmt.Sprintf("https://uss%d.example.com/utm", uss),
					StartTime:  start, EndTime: start.Add(time.Hour),
					AltitudeLower: lo, AltitudeUpper: lo + 120, Cells: cells(rng), UpdatedAt: t0,
				}
				if err := r.UpsertOperationalIntent(context.Background(), o); err != nil {
					return err
				}
			}
			return nil
		})
		if _, err := st.Apply(context.Background(), op); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func cells(rng *rand.Rand) []models.CellID {
	ll := s2.LatLngFromDegrees(46.5+rng.Float64()*0.9, 7.0+rng.Float64()*1.3)
	c := s2.CellIDFromLatLng(ll).Parent(13)
	out := []models.CellID{models.CellID(int64(c))}
	for _, nb := range c.AllNeighbors(13) {
		out = append(out, models.CellID(int64(nb)))
	}
	return models.NormalizeCells(out)
}

func uuid(kind, i uint64) models.ID {
	return models.ID(fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, i))
}

// loadOp is a write operation for filling a State directly.
type loadOp func(repos.Repo) error

func (loadOp) Type() store.OpType { return 0xfff1 }
func (loadOp) ReadOnly() bool     { return false }
func (o loadOp) Execute(_ context.Context, r repos.Repo) (any, error) {
	return nil, o(r)
}
