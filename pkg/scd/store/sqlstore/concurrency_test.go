package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// createOIR is an OIR create over cs, 0-60 min, 0-100 m, without key.
func createOIR(n int, cs []models.CellID, now time.Time) *scd.PutOperationalIntent {
	return &scd.PutOperationalIntent{Caller: fmt.Sprintf("uss-%d", n), Now: now, ID: uid(n), State: models.StateAccepted,
		Extents: models.Volume4D{Cells: cs, StartTime: ptr(t0), EndTime: ptr(t0.Add(time.Hour)),
			AltitudeLower: ptr[float32](0), AltitudeUpper: ptr[float32](100)},
		USSBaseURL: "https://uss.example/oir"}
}

// runConcurrently runs ops at once and returns their results and errors.
func runConcurrently(s *Store, ops []scd.Operation) ([]any, []error) {
	res, errs := make([]any, len(ops)), make([]error, len(ops))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, op := range ops {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res[i], errs[i] = s.Transact(ctx, op)
		})
	}
	close(start)
	wg.Wait()
	return res, errs
}

func TestConcurrentDisjointCreatesAllSucceed(t *testing.T) {
	s := openStore(t, nil)
	const n = 20
	ops := make([]scd.Operation, n)
	for i := range ops {
		// Neighbouring cell IDs: their index entries share GIN pages, so
		// page-level predicate locks produce the false conflicts that the
		// retries must absorb.
		ops[i] = createOIR(i+1, cells(models.CellID(2*i), models.CellID(2*i+1)), at(time.Duration(i)))
	}
	_, errs := runConcurrently(s, ops)
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	st := s.Stats()
	t.Logf("%d disjoint creates: %d attempts, %d retries", n, st.Attempts, st.Retries)
	res, err := s.Transact(context.Background(), &scd.QueryOperationalIntents{Area: models.Volume4D{Cells: cells(0, 39)}})
	if err != nil || len(res.([]scd.OperationalIntentView)) != 2 {
		t.Fatalf("query after the creates: %v, %v", res, err)
	}
}

func TestConcurrentCreatesNeverLoseAnIncrement(t *testing.T) {
	// Every create increments the same subscription row, so at most one of
	// the racing transactions commits per round: more rounds than the
	// default retries, which only the escalation to an exclusive attempt
	// gets through.
	const n = 16
	s := openStore(t, nil)
	subID := uid(1000)
	area := make([]models.CellID, n)
	for i := range area {
		area[i] = models.CellID(100 + i)
	}
	if _, err := s.Transact(context.Background(), &scd.PutSubscription{Caller: "uss-w", Now: t0, ID: subID,
		Extents:    models.Volume4D{Cells: area, StartTime: ptr(t0), EndTime: ptr(t0.Add(2 * time.Hour))},
		USSBaseURL: "https://w.example", NotifyForOperationalIntents: true}); err != nil {
		t.Fatal(err)
	}
	ops := make([]scd.Operation, n)
	for i := range ops {
		ops[i] = createOIR(i+1, cells(area[i]), at(time.Duration(i+1)))
	}
	res, errs := runConcurrently(s, ops)
	var seen []int32
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		subs := res[i].(scd.OperationalIntentResult).Subscribers
		if len(subs) != 1 || len(subs[0].Subscriptions) != 1 || subs[0].Subscriptions[0].ID != subID {
			t.Fatalf("create %d notified %+v, want the one subscription", i, subs)
		}
		seen = append(seen, subs[0].Subscriptions[0].NotificationIndex)
	}
	slices.Sort(seen)
	for i, idx := range seen {
		if idx != int32(i+1) {
			t.Fatalf("creates saw notification indices %v, want 1..%d each once", seen, n)
		}
	}
	got, err := s.Transact(context.Background(), &scd.GetSubscription{Caller: "uss-w", ID: subID})
	if err != nil {
		t.Fatal(err)
	}
	if idx := got.(scd.SubscriptionView).Sub.NotificationIndex; idx != n {
		t.Fatalf("notification index %d after %d creates", idx, n)
	}
	t.Logf("stats: %+v", s.Stats())
}

// conflictingIncrement increments the subscription sub; before it does,
// conflict (if true for this attempt) makes another connection commit an
// update of the same row after this transaction took its snapshot, which
// forces a serialization failure (40001) on this attempt.
func conflictingIncrement(s *Store, subID models.ID, attempts *atomic.Int32, conflict func(attempt int32) bool) *funcOp {
	return write(func(ctx context.Context, r repos.Repo) (any, error) {
		a := attempts.Add(1)
		// A write of this attempt: it must vanish with the attempt.
		if err := r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: fmt.Sprintf("attempt-%d", a),
			Availability: models.AvailabilityNormal, UpdatedAt: t0}); err != nil {
			return nil, err
		}
		sub, err := r.GetSubscription(ctx, subID) // takes the snapshot
		if err != nil || sub == nil {
			return nil, fmt.Errorf("reading the subscription: %v %w", sub, err)
		}
		if conflict(a) {
			if _, err := s.pool.Exec(ctx, `UPDATE scd_subscriptions SET notification_index = notification_index + 100
				WHERE id = $1`, string(subID)); err != nil {
				return nil, err
			}
		}
		return r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents,
			&models.Volume4D{Cells: sub.Cells, StartTime: &sub.StartTime, EndTime: &sub.EndTime})
	})
}

func setupSub(t *testing.T, s *Store, id models.ID) {
	t.Helper()
	if _, err := s.Transact(context.Background(), write(func(ctx context.Context, r repos.Repo) (any, error) {
		return nil, r.UpsertSubscription(ctx, sub(0, cells(7), at(0), at(time.Hour), true, false))
	})); err != nil {
		t.Fatal(err)
	}
}

func availabilityCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM scd_uss_availability`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSerializationFailureRetriedAndAppliedOnce(t *testing.T) {
	s := openStore(t, nil)
	subID := uid(0)
	setupSub(t, s, subID)
	var attempts atomic.Int32
	res, err := s.Transact(context.Background(), conflictingIncrement(s, subID, &attempts, func(a int32) bool { return a == 1 }))
	if err != nil {
		t.Fatal(err)
	}
	if attempts.Load() != 2 || s.Stats().Retries != 1 {
		t.Fatalf("%d attempts, stats %+v: want 2 attempts, 1 retry", attempts.Load(), s.Stats())
	}
	// 100 from the conflicting writer, +1 from the operation, once.
	if got := res.([]*models.Subscription); len(got) != 1 || got[0].NotificationIndex != 101 {
		t.Fatalf("increment returned %+v, want index 101", got)
	}
	if n := availabilityCount(t, s); n != 1 {
		t.Fatalf("%d availability rows, want only the committed attempt's", n)
	}
}

func TestRetriesExhaustedIsUnavailable(t *testing.T) {
	s := openStore(t, func(c *Config) { c.MaxRetries = 2 })
	subID := uid(0)
	setupSub(t, s, subID)
	var attempts atomic.Int32
	_, err := s.Transact(context.Background(), conflictingIncrement(s, subID, &attempts, func(int32) bool { return true }))
	if models.CodeOf(err) != models.CodeUnavailable || attempts.Load() != 3 {
		t.Fatalf("got %v after %d attempts, want CodeUnavailable after 3", err, attempts.Load())
	}
	if st := s.Stats(); st.Exhausted != 1 || st.Retries != 2 {
		t.Fatalf("stats %+v", st)
	}
	got, err := s.Transact(context.Background(), getSub(subID))
	if err != nil {
		t.Fatal(err)
	}
	if idx := got.(*models.Subscription).NotificationIndex; idx != 300 {
		t.Fatalf("notification index %d, want 300: only the three committed conflicting updates", idx)
	}
	if n := availabilityCount(t, s); n != 0 {
		t.Fatalf("%d availability rows from failed attempts", n)
	}
}

func TestFailuresAreCoded(t *testing.T) {
	s := openStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Transact(ctx, getSub(uid(1))); models.CodeOf(err) != models.CodeUnavailable {
		t.Errorf("ended context: %v, want CodeUnavailable", err)
	}
	_, err := s.Transact(context.Background(), write(func(ctx context.Context, r repos.Repo) (any, error) {
		if err := r.UpsertSubscription(ctx, sub(1, cells(1), at(0), at(time.Hour), true, false)); err != nil {
			return nil, err
		}
		panic("operation bug")
	}))
	if models.CodeOf(err) != models.CodeInternal {
		t.Errorf("panicking operation: %v, want CodeInternal", err)
	}
	if got, err := s.Transact(context.Background(), getSub(uid(1))); err != nil || got.(*models.Subscription) != nil {
		t.Errorf("panicking operation's write: %v %v, want rolled back", got, err)
	}
	// An operation that ignores a database error still fails with it,
	// because PostgreSQL has aborted the transaction.
	_, err = s.Transact(context.Background(), write(func(ctx context.Context, r repos.Repo) (any, error) {
		_ = r.UpsertOperationalIntent(ctx, oir(1, uid(77), cells(1), at(0), at(time.Hour), 0, 1))
		return nil, nil
	}))
	if models.CodeOf(err) != models.CodeInternal || !isDBError(err) {
		t.Errorf("swallowed database error: %v, want it reported as CodeInternal", err)
	}
	var kept repos.Repo
	if _, err := s.Transact(context.Background(), read(func(_ context.Context, r repos.Repo) (any, error) { kept = r; return nil, nil })); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.GetSubscription(context.Background(), uid(1)); models.CodeOf(err) != models.CodeInternal {
		t.Errorf("repo used after its operation: %v, want CodeInternal", err)
	}
}

// TestLockWaitsFailFast: a write that cannot make progress, because a
// session outside the store holds the row it must update or the writer lock
// itself, fails within the retry budget with a 503 naming what it waited
// for, instead of waiting for the request's deadline; the counters say so;
// and once the lock is released the same write succeeds.
func TestLockWaitsFailFast(t *testing.T) {
	s := openStore(t, func(c *Config) {
		c.RetryBudget = 500 * time.Millisecond
		c.WriterLockTimeout = 200 * time.Millisecond
	})
	subID := uid(0)
	setupSub(t, s, subID)
	increment := write(func(ctx context.Context, r repos.Repo) (any, error) {
		return r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents,
			&models.Volume4D{Cells: cells(7), StartTime: ptr(at(0)), EndTime: ptr(at(time.Hour))})
	})
	ctx := context.Background()
	for _, c := range []struct {
		name, lock, want string
		stat             func(Stats) int64
	}{
		{"row lock", `SELECT 1 FROM scd_subscriptions FOR UPDATE`,
			"lock wait timed out while incrementing notification indices", func(st Stats) int64 { return st.RowLockTimeouts }},
		{"writer lock", fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, int64(writerLock)),
			"lock wait timed out while waiting for the writer lock", func(st Stats) int64 { return st.WriterLockTimeouts }},
	} {
		t.Run(c.name, func(t *testing.T) {
			holder, err := s.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = holder.Rollback(ctx) }()
			if _, err := holder.Exec(ctx, c.lock); err != nil {
				t.Fatal(err)
			}
			before := c.stat(s.Stats())
			reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			t1 := time.Now()
			_, err = s.Transact(reqCtx, increment)
			took := time.Since(t1)
			if models.CodeOf(err) != models.CodeUnavailable || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want CodeUnavailable naming %q", err, c.want)
			}
			if took > 3*time.Second {
				t.Fatalf("failed after %v: the budget is 500 ms", took)
			}
			if c.stat(s.Stats()) == before {
				t.Fatalf("stats %+v: the lock timeouts were not counted", s.Stats())
			}
			if err := holder.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Transact(reqCtx, increment); err != nil {
				t.Fatalf("after the lock was released: %v", err)
			}
		})
	}
}

// TestWriterQueueBoundedByBudget: writers that cannot get a writer slot
// (every slot is taken by a write that does not finish) are answered 503
// "database busy" when the retry budget runs out, long before the request's
// deadline, and counted; a write whose request ends first gets the request's
// own error; reads still find a connection meanwhile; once the slot is free,
// the same write succeeds.
func TestWriterQueueBoundedByBudget(t *testing.T) {
	const budget = 300 * time.Millisecond
	s := openStore(t, func(c *Config) {
		c.MaxConns = 2 // one writer slot, one connection kept for reads
		c.RetryBudget = budget
	})
	if n := cap(s.writers); n != 1 {
		t.Fatalf("%d writer slots for 2 connections, want 1", n)
	}
	ctx := context.Background()
	hold, held := make(chan struct{}), make(chan struct{})
	holderDone := make(chan error, 1)
	go func() {
		_, err := s.Transact(ctx, write(func(context.Context, repos.Repo) (any, error) {
			close(held)
			<-hold
			return nil, nil
		}))
		holderDone <- err
	}()
	<-held
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
			if err := <-holderDone; err != nil {
				t.Errorf("the holding write: %v", err)
			}
		}
	}
	defer release()

	noop := write(func(context.Context, repos.Repo) (any, error) { return nil, nil })
	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t1 := time.Now()
	_, err := s.Transact(reqCtx, noop)
	took := time.Since(t1)
	const want = "database busy: the retry budget (300ms) ran out while waiting for a writer connection"
	if models.CodeOf(err) != models.CodeUnavailable || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want CodeUnavailable %q", err, want)
	}
	if took < budget || took > 3*time.Second {
		t.Fatalf("answered after %v; the budget is %v and the request's deadline 10 s", took, budget)
	}
	if st := s.Stats(); st.QueueTimeouts != 1 || st.Exhausted != 1 {
		t.Fatalf("stats %+v: want one queue timeout, one exhausted operation", st)
	}

	// The request's own deadline, shorter than the budget, is reported as
	// such (the server answers it as a timeout).
	shortCtx, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = s.Transact(shortCtx, noop)
	cancelShort()
	if models.CodeOf(err) != models.CodeUnavailable ||
		!strings.Contains(err.Error(), "request ended before the database answered, while waiting for a writer connection") {
		t.Fatalf("request deadline first: %v", err)
	}
	if st := s.Stats(); st.QueueTimeouts != 1 {
		t.Fatalf("stats %+v: the request's own deadline counted as a queue timeout", st)
	}

	// Reads do not queue behind writers.
	if _, err := s.Transact(reqCtx, read(func(context.Context, repos.Repo) (any, error) { return nil, nil })); err != nil {
		t.Fatalf("a read while the writer slot is taken: %v", err)
	}
	release()
	if _, err := s.Transact(reqCtx, noop); err != nil {
		t.Fatalf("after the slot was freed: %v", err)
	}
}
