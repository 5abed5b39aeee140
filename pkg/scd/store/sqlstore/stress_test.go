package sqlstore

import (
	"context"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

var stressRuns = flag.Int("sqlstore.stress_runs", 0,
	"runs per writer count of TestBusyCellStress (0: 1 with -short, 3 without; the acceptance run is 20)")

// Bounds of TestBusyCellStress: the acceptance criteria. A request
// gets the server's default --server_timeout as its context, so a stall
// shows up as a slow failure rather than a hung test.
const (
	stressMaxLatency = 2 * time.Second
	// stressRaceLatency is the bound under the race detector, which makes
	// this CPU-bound test several times slower on two cores; the issue's
	// 2 s bound is for the binary operators run (the acceptance run is
	// without -race). The zero-error and identical-history checks are the
	// same in both.
	stressRaceLatency = 3 * stressMaxLatency
	stressCtxTimeout  = 10 * time.Second
	stressCell        = models.CellID(0x4D5A_0000)
)

// TestBusyCellStress is the busy-cell case of a USS test suite: ten (and
// fifty) writers, spread over two store instances on one database, create,
// update (with the right keys) and delete OIRs in one cell, with implicit
// subscriptions, explicit ones and none, while readers query the cell. Every
// OIR write notifies every subscription of the cell, so every writer bumps
// the same rows: the worst case for row locks and serialization.
//
// It requires: no error at all (so no 5xx), every request under 2 s, and a
// history identical to the Raft store's: the committed writes, in their
// commit order (read off an observer subscription's notification index,
// which every write bumps once, inside its transaction), replayed one by one
// on a Raft store, must give exactly the same results.
//
// Runs of each writer count: 1 with -short, 3 without (about 5 s and 15 s
// under -race on two cores), so that the default suite stays within its
// budget; the acceptance run of the issue is 20 (-sqlstore.stress_runs=20,
// about a minute and a half; see docs/postgresql.md).
func TestBusyCellStress(t *testing.T) {
	runs := *stressRuns
	if runs <= 0 {
		runs = 3
		if testing.Short() {
			runs = 1
		}
	}
	for _, writers := range []int{10, 50} {
		rounds := 2
		if writers > 10 {
			rounds = 1
		}
		t.Run(fmt.Sprintf("writers=%d", writers), func(t *testing.T) {
			for run := range runs {
				t.Run(fmt.Sprintf("run=%d", run), func(t *testing.T) { busyCellRun(t, writers, rounds) })
			}
		})
	}
}

// stressStep is one write of the busy-cell workload, as it happened.
type stressStep struct {
	op      scd.Operation
	res     any
	err     error
	latency time.Duration
	order   int32 // the observer's notification index after this write
}

func busyCellRun(t *testing.T, writers, rounds int) {
	dbURL := pgtest.NewDatabase(t)
	var stores [2]*Store
	for i := range stores {
		cfg := Config{URL: dbURL, Migrate: i == 0, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := Open(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		stores[i] = s
	}
	var clock atomic.Int64
	now := func() time.Time { return t0.Add(time.Duration(clock.Add(1)) * time.Microsecond) }
	day := t0.Add(24 * time.Hour)
	observer := uid(0xABCDEF)

	// Setup, serial: the observer and the explicit subscriptions.
	setup := []scd.Operation{&scd.PutSubscription{Caller: "observer", Now: now(), ID: observer,
		Extents:    models.Volume4D{Cells: cells(stressCell), StartTime: ptr(t0), EndTime: ptr(day)},
		USSBaseURL: "https://observer.example", NotifyForOperationalIntents: true}}
	for w := 0; w < writers; w += 3 {
		setup = append(setup, &scd.PutSubscription{Caller: fmt.Sprintf("uss-%d", w), Now: now(), ID: explicitSub(w),
			Extents:    models.Volume4D{Cells: cells(stressCell), StartTime: ptr(t0), EndTime: ptr(day)},
			USSBaseURL: fmt.Sprintf("https://uss-%d.example", w), NotifyForOperationalIntents: true})
	}
	var setupRes []any
	for _, op := range setup {
		res, err := stores[0].Transact(context.Background(), op)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		setupRes = append(setupRes, res)
	}

	var (
		mu    sync.Mutex
		steps []*stressStep
		reads []time.Duration
		wg    sync.WaitGroup
		done  = make(chan struct{})
	)
	record := func(st *stressStep) {
		mu.Lock()
		steps = append(steps, st)
		mu.Unlock()
	}
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			busyCellWriter(t, stores[w%2], w, rounds, now, observer, record)
		})
	}
	// Readers, one per instance, query the cell until the writers are done.
	var readErrs atomic.Int64
	var rg sync.WaitGroup
	for i := range stores {
		rg.Go(func() {
			<-start
			for {
				select {
				case <-done:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), stressCtxTimeout)
				t1 := time.Now()
				_, err := stores[i].Transact(ctx, &scd.QueryOperationalIntents{Caller: "reader",
					Area: models.Volume4D{Cells: cells(stressCell)}})
				lat := time.Since(t1)
				cancel()
				if err != nil {
					readErrs.Add(1)
					t.Errorf("reader %d: %v after %v", i, err, lat)
				}
				mu.Lock()
				reads = append(reads, lat)
				mu.Unlock()
			}
		})
	}
	t1 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t1)
	close(done)
	rg.Wait()

	maxLatency := stressMaxLatency
	if raceEnabled {
		maxLatency = stressRaceLatency
	}
	var lats []time.Duration
	failed := 0
	for _, st := range steps {
		lats = append(lats, st.latency)
		if st.err != nil {
			failed++
			t.Errorf("%T %s: %v after %v", st.op, opID(st.op), st.err, st.latency)
		} else if st.latency > maxLatency {
			t.Errorf("%T %s took %v (bound %v)", st.op, opID(st.op), st.latency, maxLatency)
		}
	}
	for _, l := range reads {
		if l > maxLatency {
			t.Errorf("a query took %v (bound %v)", l, maxLatency)
		}
	}
	slices.Sort(lats)
	slices.Sort(reads)
	var st [2]Stats
	for i := range stores {
		st[i] = stores[i].Stats()
	}
	t.Logf("%d writers × %d rounds: %d writes in %v, latency p50 %v p99 %v max %v; %d queries, p99 %v max %v; stats %+v %+v",
		writers, rounds, len(steps), elapsed.Round(time.Millisecond), quantile(lats, 0.5), quantile(lats, 0.99),
		quantile(lats, 1), len(reads), quantile(reads, 0.99), quantile(reads, 1), st[0], st[1])
	if failed > 0 || readErrs.Load() > 0 || t.Failed() {
		return
	}
	compareWithRaft(t, setup, setupRes, steps)
}

func explicitSub(w int) models.ID { return uid(0x5000 + w) }

func opID(op scd.Operation) models.ID {
	switch o := op.(type) {
	case *scd.PutOperationalIntent:
		return o.ID
	case *scd.DeleteOperationalIntent:
		return o.ID
	}
	return ""
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

// busyCellWriter runs writer w's script: per round, create A, create B
// (its key: A), update A (key: B; a minute longer, which grows an implicit
// subscription), delete B, delete A. Its OIRs live in an altitude band of
// their own, so the key it sends is exactly right whatever the other
// writers do, while notifications (cells and time only) reach every
// subscription of the cell.
func busyCellWriter(t *testing.T, s *Store, w, rounds int, now func() time.Time, observer models.ID, record func(*stressStep)) {
	caller := fmt.Sprintf("uss-%d", w)
	lower, upper := float32(w*10), float32(w*10+5)
	run := func(op scd.Operation) (*stressStep, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), stressCtxTimeout)
		defer cancel()
		t1 := time.Now()
		res, err := s.Transact(ctx, op)
		st := &stressStep{op: op, res: res, err: err, latency: time.Since(t1)}
		if err == nil {
			r, ok := res.(scd.OperationalIntentResult)
			if !ok {
				st.err = fmt.Errorf("result %T", res)
			} else if st.order = observerIndex(r, observer); st.order == 0 {
				st.err = fmt.Errorf("the observer was not notified: %+v", r.Subscribers)
			}
		}
		record(st)
		return st, st.err == nil
	}
	put := func(id models.ID, ovn models.OVN, key []models.OVN, end time.Time, n int) (models.OVN, bool) {
		op := &scd.PutOperationalIntent{Caller: caller, Now: now(), ID: id, OVN: ovn, State: models.StateAccepted,
			Extents: models.Volume4D{Cells: cells(stressCell), StartTime: ptr(t0), EndTime: ptr(end),
				AltitudeLower: ptr(lower), AltitudeUpper: ptr(upper)},
			Key: key, USSBaseURL: "https://" + caller + ".example/oir"}
		switch w % 3 {
		case 0:
			op.SubscriptionID = explicitSub(w)
		case 1:
			if ovn == "" {
				op.NewSubscription = &scd.NewSubscription{USSBaseURL: "https://" + caller + ".example"}
				op.NewSubscriptionID = uid(0x100000 + w*1000 + n)
			}
		}
		st, ok := run(op)
		if !ok {
			return "", false
		}
		return st.res.(scd.OperationalIntentResult).OIR.OIR.OVN(), true
	}
	del := func(id models.ID, ovn models.OVN) bool {
		_, ok := run(&scd.DeleteOperationalIntent{Caller: caller, ID: id, OVN: ovn})
		return ok
	}
	for r := range rounds {
		a, b := uid(0x200000+w*1000+2*r), uid(0x200000+w*1000+2*r+1)
		ovnA, ok := put(a, "", nil, t0.Add(time.Hour), 2*r)
		if !ok {
			return
		}
		ovnB, ok := put(b, "", []models.OVN{ovnA}, t0.Add(time.Hour), 2*r+1)
		if !ok {
			return
		}
		if w%3 == 1 {
			// A keeps its implicit subscription, which grows with it.
			ovnA, ok = putKeepingImplicit(run, caller, a, ovnA, []models.OVN{ovnB}, lower, upper, now, uid(0x100000+w*1000+2*r))
		} else {
			ovnA, ok = put(a, ovnA, []models.OVN{ovnB}, t0.Add(time.Hour+time.Minute), 0)
		}
		if !ok || !del(b, ovnB) || !del(a, ovnA) {
			return
		}
	}
	_ = t
}

func putKeepingImplicit(run func(scd.Operation) (*stressStep, bool), caller string, id models.ID, ovn models.OVN,
	key []models.OVN, lower, upper float32, now func() time.Time, sub models.ID) (models.OVN, bool) {
	op := &scd.PutOperationalIntent{Caller: caller, Now: now(), ID: id, OVN: ovn, State: models.StateAccepted,
		Extents: models.Volume4D{Cells: cells(stressCell), StartTime: ptr(t0), EndTime: ptr(t0.Add(time.Hour + time.Minute)),
			AltitudeLower: ptr(lower), AltitudeUpper: ptr(upper)},
		Key: key, USSBaseURL: "https://" + caller + ".example/oir", SubscriptionID: sub}
	st, ok := run(op)
	if !ok {
		return "", false
	}
	return st.res.(scd.OperationalIntentResult).OIR.OIR.OVN(), true
}

func observerIndex(r scd.OperationalIntentResult, observer models.ID) int32 {
	for _, g := range r.Subscribers {
		for _, s := range g.Subscriptions {
			if s.ID == observer {
				return s.NotificationIndex
			}
		}
	}
	return 0
}

// compareWithRaft replays the setup and then the committed writes in commit
// order on a one-node Raft store (real WAL) and requires every result to be
// the SQL store's, up to write times.
//
// Write times: a Raft store raises a write time that is not after the
// previous write's in its log (store.Timestamped), across all entities; a
// SQL store has no such global clock (it would make every write conflict
// with every other) and only keeps each entity's write time increasing
// (writeTime). Requests racing to commit reach the database out of the
// order of their request times, so the two stores give some writes
// different write times, and hence different OVNs. The replay therefore
// maps each OVN the SQL store issued to the one the Raft store issued for
// the same write (the mapping must be one-to-one), sends the Raft store the
// requests with their OVNs and keys mapped, and compares everything else
// exactly: states, versions, extents, subscriptions, notification indices,
// key checks.
func compareWithRaft(t *testing.T, setup []scd.Operation, setupRes []any, steps []*stressStep) {
	slices.SortFunc(steps, func(a, b *stressStep) int { return int(a.order) - int(b.order) })
	for i, st := range steps {
		if st.order != int32(i+1) {
			t.Fatalf("commit order: write %d of %d has observer index %d; want 1..%d each once (lost or repeated increment)",
				i+1, len(steps), st.order, len(steps))
		}
	}
	rs := openRaftStore(t)
	ctx := context.Background()
	for i, op := range setup {
		res, err := rs.Transact(ctx, op)
		if err != nil || !reflect.DeepEqual(res, setupRes[i]) {
			t.Fatalf("setup %d on the Raft store: %v\nraft %s\nsql  %s", i, err, dump(res), dump(setupRes[i]))
		}
	}
	toRaft := map[models.OVN]models.OVN{}
	fromRaft := map[models.OVN]models.OVN{}
	mapOVN := func(o models.OVN) models.OVN {
		if r, ok := toRaft[o]; ok {
			return r
		}
		return o
	}
	raised := 0
	for i, st := range steps {
		var op scd.Operation
		switch o := st.op.(type) {
		case *scd.PutOperationalIntent:
			c := *o
			c.OVN = mapOVN(o.OVN)
			c.Key = nil
			for _, k := range o.Key {
				c.Key = append(c.Key, mapOVN(k))
			}
			op = &c
		case *scd.DeleteOperationalIntent:
			c := *o
			c.OVN = mapOVN(o.OVN)
			op = &c
		default:
			t.Fatalf("write %d: unexpected %T", i+1, o)
		}
		res, err := rs.Transact(ctx, op)
		if err != nil {
			t.Fatalf("write %d (%T %s) fails on the Raft store: %v", i+1, st.op, opID(st.op), err)
		}
		rr, sr := res.(scd.OperationalIntentResult), st.res.(scd.OperationalIntentResult)
		if rr.OIR.OIR != nil && sr.OIR.OIR != nil {
			ro, so := *rr.OIR.OIR, *sr.OIR.OIR
			rovn, sovn := ro.OVN(), so.OVN()
			if m, ok := toRaft[sovn]; ok && m != rovn || fromRaft[rovn] != "" && fromRaft[rovn] != sovn {
				t.Fatalf("write %d (%T %s): OVN %s on the SQL store and %s on the Raft store break the one-to-one mapping",
					i+1, st.op, opID(st.op), sovn, rovn)
			}
			toRaft[sovn], fromRaft[rovn] = rovn, sovn
			if !ro.UpdatedAt.Equal(so.UpdatedAt) {
				raised++
			}
			if len(ro.PastOVNs) > 0 && len(ro.PastOVNs) == len(so.PastOVNs) {
				past := make([]models.OVN, len(ro.PastOVNs))
				for k, p := range ro.PastOVNs {
					past[k] = fromRaft[p]
				}
				ro.PastOVNs = past
			}
			ro.UpdatedAt = so.UpdatedAt
			rr.OIR.OIR = &ro
		}
		if !reflect.DeepEqual(rr, sr) {
			t.Fatalf("write %d (%T %s): results differ (write times aside):\nraft %s\nsql  %s",
				i+1, st.op, opID(st.op), dump(rr), dump(sr))
		}
	}
	t.Logf("Raft replay of %d writes: identical, %d write times raised by the Raft log's clock", len(steps), raised)
}

// openRaftStore starts a one-node Raft store over memnet with its WAL in a
// temporary directory and waits for it to lead.
func openRaftStore(t *testing.T) *raftstore.Store {
	t.Helper()
	net := memnet.New(1)
	s, err := raftstore.Open(raftstore.Config{
		Consensus: consensus.Config{ID: 1, Peers: map[uint64]string{1: "node-1"}, DataDir: t.TempDir(),
			TickInterval: 20 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1, Logger: zap.NewNop()},
		NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(1, h), nil },
	})
	if err != nil {
		net.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(); net.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for s.Status().Leader == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the one-node Raft store elected no leader in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}
