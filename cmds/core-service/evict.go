package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// Eviction of expired entities (docs/operations.md, "Eviction"). The node
// decides the cut-off (now minus --evict_after) and proposes
// scd.EvictExpired batches; each batch is one operation through the store
// like any write, so on the Raft store every replica removes exactly the same
// entities, and on the SQL store it is one transaction.

const (
	// evictBatch is the most entities one batch selects: one batch holds
	// the Raft apply loop (or a SQL transaction) for a few milliseconds, so
	// client writes between batches wait at most that long.
	evictBatch = 500
	// evictAdminTimeout bounds `dssctl evict --now` (and a dry run): it
	// answers with what it evicted by then, and says whether it finished.
	evictAdminTimeout = 10 * time.Second
)

type evictConfig struct {
	after    time.Duration
	interval time.Duration
}

func (c *evictConfig) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.after, "evict_after", 24*time.Hour,
		"retention of expired entities: OIRs, constraints and subscriptions whose end time is older than this "+
			"are evicted (with the implicit subscriptions they leave unused)")
	fs.DurationVar(&c.interval, "evict_interval", 10*time.Minute,
		"how often this node evicts expired entities (on the Raft store, only while it is the leader); 0 disables "+
			"the schedule (dssctl evict --now still works)")
}

func (c *evictConfig) validate() error {
	if c.after <= 0 {
		return fmt.Errorf("--evict_after must be positive, got %v", c.after)
	}
	if c.interval < 0 {
		return fmt.Errorf("--evict_interval must be 0 (off) or positive, got %v", c.interval)
	}
	return nil
}

// entityCounter is what the entities-by-kind metric reads (every store of
// pkg/scd/store has it).
type entityCounter interface {
	EntityCounts(ctx context.Context) (oirs, constraints, subscriptions int, err error)
}

// evictor runs eviction batches, for the schedule and for the admin socket.
type evictor struct {
	store   scd.Store
	counter entityCounter // nil: no entities-by-kind metric
	// leader reports whether this node should run the schedule (the Raft
	// leader; always true elsewhere). Any node's batch would be correct,
	// since it goes through the log: this only avoids duplicated work.
	leader func() bool
	after  time.Duration
	batch  uint32
	now    func() time.Time
	log    *zap.Logger

	mu sync.Mutex // one batch loop at a time (schedule or admin)

	evicted  *prometheus.CounterVec
	runs     *prometheus.CounterVec
	lastRun  prometheus.Gauge
	entities *prometheus.GaugeVec
}

func newEvictor(st scd.Store, counter entityCounter, leader func() bool, after time.Duration,
	log *zap.Logger, reg prometheus.Registerer) (*evictor, error) {
	e := &evictor{
		store: st, counter: counter, leader: leader, after: after, batch: evictBatch, now: time.Now, log: log,
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dss_evicted_entities_total",
			Help: "Expired entities evicted by this node's eviction batches, by kind (operational_intent, constraint, subscription).",
		}, []string{"kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dss_eviction_runs_total",
			Help: "Eviction runs (batch loops) started by this node, by result (ok, error).",
		}, []string{"result"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dss_eviction_last_run_timestamp_seconds",
			Help: "Unix time of this node's last eviction run that completed (0: none yet).",
		}),
		entities: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dss_entities",
			Help: "Entities in the store by kind (operational_intent, constraint, subscription), as of the last eviction interval or admin request.",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{e.evicted, e.runs, e.lastRun, e.entities} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{"operational_intent", "constraint", "subscription"} {
		e.evicted.WithLabelValues(k)
	}
	e.runs.WithLabelValues("ok")
	e.runs.WithLabelValues("error")
	return e, nil
}

// cutoff is the eviction cut-off of a run starting now.
func (e *evictor) cutoff() time.Time { return e.now().Add(-e.after) }

// evictNow runs batches until one selects fewer than its limit, and returns
// what they evicted (also when it fails or ctx ends part-way: each batch
// that returned is committed).
func (e *evictor) evictNow(ctx context.Context) (time.Time, scd.EvictionCounts, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := e.cutoff()
	var total scd.EvictionCounts
	err := func() error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := e.store.Transact(ctx, &scd.EvictExpired{Before: before, Limit: e.batch})
			if err != nil {
				return err
			}
			r, ok := res.(scd.EvictionResult)
			if !ok {
				return fmt.Errorf("eviction batch returned %T", res)
			}
			total.Add(r.Evicted)
			e.evicted.WithLabelValues("operational_intent").Add(float64(r.Evicted.OperationalIntents))
			e.evicted.WithLabelValues("constraint").Add(float64(r.Evicted.Constraints))
			e.evicted.WithLabelValues("subscription").Add(float64(r.Evicted.Subscriptions))
			if !r.Full {
				return nil
			}
		}
	}()
	if err != nil {
		e.runs.WithLabelValues("error").Inc()
	} else {
		e.runs.WithLabelValues("ok").Inc()
		e.lastRun.Set(float64(e.now().UnixNano()) / 1e9)
	}
	e.updateCounts(ctx)
	return before, total, err
}

// preview counts what evictNow would evict now.
func (e *evictor) preview(ctx context.Context) (time.Time, scd.EvictionCounts, error) {
	before := e.cutoff()
	res, err := e.store.Transact(ctx, &scd.PreviewEviction{Before: before})
	if err != nil {
		return before, scd.EvictionCounts{}, err
	}
	c, ok := res.(scd.EvictionCounts)
	if !ok {
		return before, c, fmt.Errorf("eviction preview returned %T", res)
	}
	e.updateCounts(ctx)
	return before, c, nil
}

func (e *evictor) updateCounts(ctx context.Context) {
	if e.counter == nil || ctx.Err() != nil {
		return
	}
	oirs, crs, subs, err := e.counter.EntityCounts(ctx)
	if err != nil {
		e.log.Warn("counting entities", zap.Error(err))
		return
	}
	e.entities.WithLabelValues("operational_intent").Set(float64(oirs))
	e.entities.WithLabelValues("constraint").Set(float64(crs))
	e.entities.WithLabelValues("subscription").Set(float64(subs))
}

// start runs eviction every interval while leader() holds, until the
// returned stop is called; stop cancels a run in progress and returns once
// the goroutine has ended (bounded: a batch in flight ends with its ctx).
func (e *evictor) start(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !e.leader() {
				// Followers keep their entities-by-kind metric current.
				e.updateCounts(ctx)
				continue
			}
			// A run never outlasts its interval, so runs do not pile up
			// behind a slow store.
			rctx, rcancel := context.WithTimeout(ctx, interval)
			before, n, err := e.evictNow(rctx)
			rcancel()
			fields := []zap.Field{zap.Time("before", before), zap.Int("operational_intents", n.OperationalIntents),
				zap.Int("constraints", n.Constraints), zap.Int("subscriptions", n.Subscriptions)}
			switch {
			case err != nil && ctx.Err() != nil:
				return
			case err != nil:
				e.log.Warn("eviction run failed; the next interval retries", append(fields, zap.Error(err))...)
			case n.Total() > 0:
				e.log.Info("evicted expired entities", fields...)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(cancel)
		<-done
	}
}

// evictJSON is the admin socket's answer to GET /evict (dry run) and
// POST /evict (run now).
type evictJSON struct {
	DryRun bool `json:"dry_run"`
	// Before is the cut-off: entities that ended before it go.
	Before             string `json:"before"`
	OperationalIntents int    `json:"operational_intents"`
	Constraints        int    `json:"constraints"`
	// Subscriptions includes ImplicitSubscriptions, the implicit ones
	// released with their last OIR.
	Subscriptions         int `json:"subscriptions"`
	ImplicitSubscriptions int `json:"implicit_subscriptions"`
	// Complete is false when a run stopped at its deadline with more left.
	Complete bool `json:"complete"`
}

// evictHandler serves GET /evict and POST /evict on the admin socket.
func evictHandler(e *evictor, timeout time.Duration) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, dry bool, before time.Time, c scd.EvictionCounts, err error) {
		complete := err == nil
		if err != nil && !(errors.Is(err, context.DeadlineExceeded) && !dry && c.Total() > 0) {
			code := http.StatusServiceUnavailable
			if models.CodeOf(err) == models.CodeBadRequest {
				code = http.StatusBadRequest
			}
			writeAdminError(w, code, "eviction: "+err.Error())
			return
		}
		writeAdminJSON(w, http.StatusOK, evictJSON{
			DryRun: dry, Before: before.UTC().Format(time.RFC3339Nano),
			OperationalIntents: c.OperationalIntents, Constraints: c.Constraints,
			Subscriptions: c.Subscriptions, ImplicitSubscriptions: c.ImplicitReleased, Complete: complete,
		})
	}
	mux.HandleFunc("GET /evict", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		before, c, err := e.preview(ctx)
		answer(w, true, before, c, err)
	})
	mux.HandleFunc("POST /evict", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		before, c, err := e.evictNow(ctx)
		answer(w, false, before, c, err)
	})
	return mux
}

// newBackendEvictor builds the evictor of be: on the Raft store only the
// leader runs the schedule; on the SQL store every node does (one batch is
// one transaction, so concurrent runs on several nodes only cost retries).
func newBackendEvictor(be *backend, after time.Duration, log *zap.Logger, reg prometheus.Registerer) (*evictor, error) {
	leader := func() bool { return true }
	if be.raft != nil {
		rs := be.raft
		leader = func() bool {
			st := rs.Status()
			return st.ID != 0 && st.Leader == st.ID
		}
	}
	counter, _ := be.store.(entityCounter)
	return newEvictor(be.store, counter, leader, after, log, reg)
}
