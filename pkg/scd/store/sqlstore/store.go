package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// Config configures Open.
type Config struct {
	// URL is a PostgreSQL connection URL or DSN, e.g.
	// postgres://user:pass@host:5432/scd?sslmode=verify-full. A
	// connect_timeout in it overrides DefaultConnectTimeout.
	URL string
	// MaxConns bounds the connection pool, and so the number of operations
	// running at once; 0 means DefaultMaxConns. Writers use at most
	// writerSlots(MaxConns) of them, so reads always find a connection.
	MaxConns int32
	// MaxRetries is how often an operation is retried after a conflict
	// (serialization failure, deadlock, lock wait timeout), so it runs at
	// most MaxRetries+1 times, before Transact gives up with
	// CodeUnavailable; 0 or less means DefaultMaxRetries.
	MaxRetries int
	// RetryBudget bounds the time an operation spends in attempts: no new
	// attempt starts after it; 0 or less means DefaultRetryBudget.
	RetryBudget time.Duration
	// LockTimeout is how long a statement of a parallel attempt waits for a
	// row lock before the attempt is abandoned and rerun exclusively (see
	// writerLock); 0 or less means DefaultLockTimeout.
	LockTimeout time.Duration
	// WriterLockTimeout bounds the wait for the writer lock (and any lock
	// wait of an exclusive attempt or a read); 0 or less means
	// DefaultWriterLockTimeout.
	WriterLockTimeout time.Duration
	// StatementTimeout bounds every statement of an operation, the wait of
	// a read for its safe snapshot included; 0 or less means
	// DefaultStatementTimeout.
	StatementTimeout time.Duration
	// Migrate applies the embedded migrations up to SchemaVersion at Open.
	// Without it Open only checks the version.
	Migrate bool
	// Logger receives database failures and retry exhaustion; nil logs
	// nothing.
	Logger *zap.Logger
}

// Defaults of Config.
const (
	DefaultMaxConns          = 16
	DefaultMaxRetries        = 10
	DefaultConnectTimeout    = 5 * time.Second
	DefaultRetryBudget       = 4 * time.Second
	DefaultLockTimeout       = 50 * time.Millisecond
	DefaultWriterLockTimeout = 2 * time.Second
	DefaultStatementTimeout  = 5 * time.Second
)

// Backoff between exclusive attempts (the first retry, the escalation to an
// exclusive attempt, waits in the writer lock's queue instead): attempt n
// waits a random duration in [d/2, d) with d = min(backoffMax,
// backoffBase·2^(n-2)). The jitter keeps two transactions that just
// conflicted from colliding again in lock-step.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 200 * time.Millisecond
)

// Store is the SCD store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool       *pgxpool.Pool
	log        *zap.Logger
	maxRetries int
	budget     time.Duration

	// writers holds one token per connection writers may use at once; esc
	// one token for the attempt of this process that waits for (or holds)
	// the writer lock exclusively. Both are waited for before a connection
	// is taken from the pool (see runOnce).
	writers chan struct{}
	esc     chan struct{}

	// BEGIN statements, with the transaction's lock and statement timeouts.
	beginParallel, beginExclusive, beginRead string
	// lockParallel and lockExclusive take the writer lock with the writer
	// lock timeout; unlockWriter releases it and restores the session.
	lockParallel, lockExclusive string

	attempts, retries, escalated, exhausted                    atomic.Int64
	serializationFailures, deadlocks, rowLockTimeouts          atomic.Int64
	writerLockTimeouts, statementTimeouts, queueTimeouts       atomic.Int64
	writerLockWaitNanos, writerSlotWaitNanos, escGateWaitNanos atomic.Int64
}

var _ store.Store[repos.Repo] = (*Store)(nil)

// Open connects to the database, optionally migrates it, and checks that
// its schema version is SchemaVersion. An unreachable database is a
// CodeUnavailable error; a wrong schema version wraps ErrSchemaVersion.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("sqlstore: no database URL")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("sqlstore: the database URL cannot be parsed")
	}
	pcfg.MaxConns = DefaultMaxConns
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	params := pcfg.ConnConfig.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = "raftdss"
	}
	// Every query of this package is an index lookup (primary key, GIN on
	// cells, subscription_id). On small tables the planner would still
	// prefer sequential scans, and under SERIALIZABLE a sequential scan
	// takes a predicate lock on the whole table: every concurrent write
	// would then conflict with every read, and disjoint OIR creates would
	// fail and retry instead of running in parallel.
	params["enable_seqscan"] = "off"

	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &models.Error{Code: models.CodeUnavailable,
			Message: fmt.Sprintf("database at %s:%d is unreachable", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port),
			Cause:   err}
	}
	if cfg.Migrate {
		if err := Migrate(ctx, pool, SchemaVersion); err != nil {
			pool.Close()
			return nil, err
		}
	}
	v, err := CurrentSchemaVersion(ctx, pool)
	if err == nil && v != SchemaVersion {
		err = fmt.Errorf("%w: the database is at version %d, this build needs %d: run core-service --migrate or dssctl migrate",
			ErrSchemaVersion, v, SchemaVersion)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return newStore(pool, log, cfg), nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func newStore(pool *pgxpool.Pool, log *zap.Logger, cfg Config) *Store {
	lockTimeout := orDefault(cfg.LockTimeout, DefaultLockTimeout)
	writerTimeout := orDefault(cfg.WriterLockTimeout, DefaultWriterLockTimeout)
	stmtTimeout := orDefault(cfg.StatementTimeout, DefaultStatementTimeout)
	ms := func(d time.Duration) string { return fmt.Sprintf("'%dms'", max(1, d.Milliseconds())) }
	timeouts := func(lock time.Duration) string {
		return "; SET LOCAL lock_timeout = " + ms(lock) + "; SET LOCAL statement_timeout = " + ms(stmtTimeout)
	}
	s := &Store{
		pool:           pool,
		log:            log,
		maxRetries:     orDefault(cfg.MaxRetries, DefaultMaxRetries),
		budget:         orDefault(cfg.RetryBudget, DefaultRetryBudget),
		writers:        make(chan struct{}, writerSlots(pool.Config().MaxConns)),
		esc:            make(chan struct{}, 1),
		beginParallel:  "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE" + timeouts(lockTimeout),
		beginExclusive: "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE" + timeouts(writerTimeout),
		beginRead:      "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE" + timeouts(writerTimeout),
		lockParallel: fmt.Sprintf("SET lock_timeout = %s; SELECT pg_advisory_lock_shared(%d)",
			ms(writerTimeout), int64(writerLock)),
		lockExclusive: fmt.Sprintf("SET lock_timeout = %s; SELECT pg_advisory_lock(%d)",
			ms(writerTimeout), int64(writerLock)),
	}
	return s
}

// unlockWriter releases the writer lock of a session and gives it back its
// default lock timeout.
const unlockWriter = "SELECT pg_advisory_unlock_all(); RESET lock_timeout"

// writerSlots is how many of a pool's connections writers may hold at once:
// all but a quarter (at least one) kept for reads. Writers wait in a queue
// (the writer lock) under contention, and a read stuck behind them for a
// connection would wait as long as the whole queue.
func writerSlots(maxConns int32) int {
	if maxConns <= 1 {
		return 1
	}
	return int(maxConns - max(1, maxConns/4))
}

// Close closes every connection; operations still running fail.
func (s *Store) Close() { s.pool.Close() }

// Stats counts what Transact did since Open.
type Stats struct {
	// Attempts is the number of transactions started (first runs and
	// retries).
	Attempts int64
	// Retries is the number of reruns after a conflict.
	Retries int64
	// Escalated is the number of attempts that ran exclusively among
	// writers (every rerun of a write).
	Escalated int64
	// Exhausted is the number of operations that failed because every
	// attempt conflicted, or the retry budget ran out.
	Exhausted int64
	// SerializationFailures, Deadlocks and RowLockTimeouts count the
	// conflicts that aborted an attempt, by kind: SQLSTATE 40001, 40P01,
	// and 55P03 inside a transaction (a row or table lock waited for longer
	// than the lock timeout).
	SerializationFailures, Deadlocks, RowLockTimeouts int64
	// WriterLockTimeouts counts waits for the writer lock that ran out of
	// the writer lock timeout; StatementTimeouts statements that PostgreSQL
	// canceled after the statement timeout; QueueTimeouts operations whose
	// retry budget ran out while they waited in this process for a writer
	// slot, their turn to escalate or a pooled connection (overload).
	WriterLockTimeouts, StatementTimeouts, QueueTimeouts int64
	// WriterLockWait is the total time attempts waited in PostgreSQL for
	// the writer lock; WriterSlotWait the total time writers waited in this
	// process for a writer connection slot or their turn to escalate.
	WriterLockWait, WriterSlotWait time.Duration
}

// Stats returns the counters of s.
func (s *Store) Stats() Stats {
	return Stats{Attempts: s.attempts.Load(), Retries: s.retries.Load(), Escalated: s.escalated.Load(),
		Exhausted:             s.exhausted.Load(),
		SerializationFailures: s.serializationFailures.Load(), Deadlocks: s.deadlocks.Load(),
		RowLockTimeouts: s.rowLockTimeouts.Load(), WriterLockTimeouts: s.writerLockTimeouts.Load(),
		StatementTimeouts: s.statementTimeouts.Load(), QueueTimeouts: s.queueTimeouts.Load(),
		WriterLockWait: time.Duration(s.writerLockWaitNanos.Load()),
		WriterSlotWait: time.Duration(s.writerSlotWaitNanos.Load() + s.escGateWaitNanos.Load()),
	}
}

// Transaction modes of Export and Import, which run outside Transact.
// A read-only, deferrable serializable transaction (Transact's beginRead as
// well) waits (if needed) for a snapshot that no concurrent writer can
// invalidate, and then runs without predicate locks and can never fail to
// serialize: the right mode for GET and queries (spec §10 "one consistent
// snapshot").
var (
	readWriteTx = pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadWrite}
	readOnlyTx  = pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly, DeferrableMode: pgx.Deferrable}
)

// Transact runs op in one SERIALIZABLE transaction and commits it.
//
// A write runs first in parallel with other writers; when PostgreSQL
// aborts that attempt for a conflict (serialization failure 40001,
// deadlock 40P01, or a lock wait longer than LockTimeout, 55P03), nothing
// of it was applied, and the operation runs again exclusively among
// writers (see writerLock), where it cannot conflict again. Reruns are
// bounded by MaxRetries and RetryBudget; then the result is
// CodeUnavailable naming the last conflict. Errors of op are returned as
// they are; database failures are CodeUnavailable when the database cannot
// answer now (connection lost, timeout, too many connections, ctx ended)
// and CodeInternal otherwise (logged with cause).
func (s *Store) Transact(ctx context.Context, op store.Operation[repos.Repo]) (any, error) {
	if op == nil {
		return nil, models.Errorf(models.CodeInternal, "sqlstore: nil operation")
	}
	began := time.Now()
	deadline := began.Add(s.budget)
	exclusive := false
	for attempt := 1; ; attempt++ {
		res, err := s.runOnce(ctx, op, exclusive, deadline)
		if err == nil {
			return res, nil
		}
		if isQueueTimeout(err) {
			s.exhausted.Add(1)
			return nil, s.finalError(op, err)
		}
		if !isRetryable(err) {
			return nil, s.finalError(op, err)
		}
		elapsed := time.Since(began)
		if attempt > s.maxRetries || elapsed >= s.budget {
			s.exhausted.Add(1)
			s.log.Warn("sqlstore: operation gave up on contention",
				zap.Uint16("op_type", uint16(op.Type())), zap.Int("attempts", attempt),
				zap.Duration("elapsed", elapsed), zap.Error(err))
			return nil, &models.Error{Code: models.CodeUnavailable,
				Message: fmt.Sprintf("%s (gave up after %d attempts in %v), retry",
					messageOf(err), attempt, elapsed.Round(time.Millisecond)),
				Cause: err}
		}
		s.retries.Add(1)
		if exclusive {
			// Only a lock timeout (the writer lock queue is long, or a
			// session outside this store holds a row) or a conflict with
			// such a session gets here: back off before queueing again.
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, &models.Error{Code: models.CodeUnavailable,
					Message: "request ended while waiting to retry a conflicting transaction", Cause: err}
			}
		}
		exclusive = !op.ReadOnly()
	}
}

// Writers take the advisory lock writerLock on their session before BEGIN:
// in shared mode on their first attempt, so that writers run in parallel,
// and in exclusive mode on every rerun, so that the rerun runs alone among
// writers and cannot conflict again.
//
// Why, and why this way: every OIR write bumps the notification index of
// every subscription over its area (spec §9), so the writers of one busy
// area all update the same rows. Under SERIALIZABLE, waiting for such a row
// is futile: when its holder commits, the waiter fails with 40001 all the
// same. Worse, writers also lock subscription rows before the increment
// (an implicit subscription created, grown or released; the foreign key
// of an OIR insert), so increments locking in ID order still form cycles,
// some of which PostgreSQL's deadlock detector (one check per wait, after
// deadlock_timeout) never sees: measured, ten writers in one cell queued in
// such cycles for the whole 10 s request timeout. So:
//
//   - a parallel attempt waits at most LockTimeout for any lock inside its
//     transaction (lock_timeout; 55P03 is retried like 40001): contention
//     costs it milliseconds, and no lock cycle can last;
//   - the rerun takes the lock exclusively, after every parallel writer
//     finished and before its snapshot is taken (the lock is taken before
//     BEGIN), so it reads the latest data, waits for no row, and commits;
//     contending writers thus form one FIFO queue, across all instances on
//     the database, in PostgreSQL's lock queue;
//   - no attempt waits for the writer lock while holding a connection that
//     others need: writers use at most writerSlots of the pool's
//     connections (reads keep the rest), and of one process only one
//     rerun at a time waits in PostgreSQL for the exclusive lock (s.esc),
//     the others wait for their turn in the process, holding nothing;
//   - every wait is bounded: the writer lock by WriterLockTimeout, each
//     statement by StatementTimeout, the waits in this process (for a
//     writer slot, the turn to escalate, a pooled connection) by what is
//     left of RetryBudget, and the start of any further attempt by
//     RetryBudget. A writer that queues past its budget in this process is
//     answered 503 "database busy" at once instead of running into the
//     request's deadline: that is overload, which a longer wait would not
//     cure.
//
// Read-only transactions are DEFERRABLE, never abort, take no lock, and do
// not count against the writer slots.
const writerLock = 0x5CD5_0001

// acquire takes a token of sem, or fails when ctx ends; the wait is added
// to *waited.
func acquire(ctx context.Context, sem chan struct{}, waited *atomic.Int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	t := time.Now()
	defer func() { waited.Add(int64(time.Since(t))) }()
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runOnce is one attempt: slot, lock, begin, Execute, commit; rollback on
// any failure. The waits in this process end at deadline (the retry
// budget's end) as well as with ctx.
func (s *Store) runOnce(ctx context.Context, op store.Operation[repos.Repo], exclusive bool, deadline time.Time) (res any, err error) {
	// wctx bounds only the waits for a slot or a connection, never a
	// statement: a statement canceled by it would leave a commit's outcome
	// unknown for no reason.
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if !op.ReadOnly() {
		if exclusive {
			if err := acquire(wctx, s.esc, &s.escGateWaitNanos); err != nil {
				return nil, s.waitError(ctx, err, "waiting for this process's turn to take the writer lock")
			}
			defer func() { <-s.esc }()
		}
		if err := acquire(wctx, s.writers, &s.writerSlotWaitNanos); err != nil {
			return nil, s.waitError(ctx, err, "waiting for a writer connection")
		}
		defer func() { <-s.writers }()
	}
	s.attempts.Add(1)
	conn, err := s.pool.Acquire(wctx)
	if err != nil {
		return nil, s.waitError(ctx, err, "acquiring a connection")
	}
	defer conn.Release()
	begin := s.beginRead
	if !op.ReadOnly() {
		lock, what := s.lockParallel, "waiting for the writer lock (shared)"
		begin = s.beginParallel
		if exclusive {
			lock, what = s.lockExclusive, "waiting for the writer lock (exclusive)"
			begin = s.beginExclusive
			s.escalated.Add(1)
		}
		// Close the session on any doubt about the lock (an error may
		// arrive after PostgreSQL granted it): a session lock left on a
		// pooled connection would block every escalation forever, and
		// closing the session releases its locks.
		t := time.Now()
		_, err := conn.Exec(ctx, lock)
		s.writerLockWaitNanos.Add(int64(time.Since(t)))
		if err != nil {
			if isLockTimeout(err) {
				s.writerLockTimeouts.Add(1)
			}
			closeConn(ctx, conn)
			return nil, dbError(err, what)
		}
		defer func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(uctx, unlockWriter); err != nil {
				closeConn(uctx, conn)
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: begin})
	if err != nil {
		return nil, dbError(err, "beginning a transaction")
	}
	r := &repo{tx: tx, readOnly: op.ReadOnly()}
	defer func() {
		// The repo must not outlive Execute (store.Operation contract).
		r.closed = true
		if p := recover(); p != nil {
			res = nil
			err = &models.Error{Code: models.CodeInternal,
				Message: fmt.Sprintf("operation type %d panicked", op.Type()),
				Cause:   fmt.Errorf("panic: %v", p)}
		}
		if err != nil {
			s.countFailure(err)
			// Rollback even when ctx ended, but bounded: a connection that
			// cannot roll back is closed by pgx and leaves the pool.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()
	res, err = op.Execute(ctx, r)
	if r.failed != nil {
		// The first database error is what happened, whatever Execute made
		// of it: after it PostgreSQL refuses every statement of this
		// transaction, and only its SQLSTATE says whether to retry.
		return nil, r.failed
	}
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		// A serialization failure at commit is a definite abort (retried);
		// a lost connection leaves the outcome unknown and is never
		// retried, since the operation might have been applied.
		return nil, dbError(err, "committing")
	}
	return res, nil
}

// waitError is the error of a wait in this process that failed: a queue
// timeout when the retry budget ended it (ctx still runs), else what the
// database or ctx said.
func (s *Store) waitError(ctx context.Context, err error, what string) error {
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		s.queueTimeouts.Add(1)
		return &models.Error{Code: models.CodeUnavailable,
			Message: fmt.Sprintf("database busy: the retry budget (%v) ran out while %s, retry", s.budget, what),
			Cause:   &dbFailure{what: what, err: errQueueTimeout}}
	}
	return dbError(err, what)
}

// countFailure counts the database failures of a transaction by kind.
func (s *Store) countFailure(err error) {
	switch sqlstate(err) {
	case sqlstateSerializationFailure:
		s.serializationFailures.Add(1)
	case sqlstateDeadlockDetected:
		s.deadlocks.Add(1)
	case sqlstateLockNotAvailable:
		s.rowLockTimeouts.Add(1)
	case sqlstateQueryCanceled:
		if isStatementTimeout(err) {
			s.statementTimeouts.Add(1)
		}
	}
}

// closeConn closes the session of a pooled connection; the pool then drops
// it on Release.
func closeConn(ctx context.Context, conn *pgxpool.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(cctx)
}

// finalError logs database failures that are not the client's doing.
func (s *Store) finalError(op store.Operation[repos.Repo], err error) error {
	if isDBError(err) {
		level := zap.ErrorLevel
		if models.CodeOf(err) == models.CodeUnavailable {
			level = zap.WarnLevel
		}
		s.log.Log(level, "sqlstore: operation failed in the database",
			zap.Uint16("op_type", uint16(op.Type())), zap.Error(err))
	}
	return err
}

func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffMax, backoffBase<<max(0, attempt-2))
	}
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EntityCounts returns how many OIRs, constraints and subscriptions the
// database holds (the entities-by-kind metric), in one statement so the
// three counts are of one snapshot.
func (s *Store) EntityCounts(ctx context.Context) (oirs, constraints, subscriptions int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM scd_operations), (SELECT count(*) FROM scd_constraints),
		(SELECT count(*) FROM scd_subscriptions)`).Scan(&oirs, &constraints, &subscriptions)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("counting entities: %w", err)
	}
	return oirs, constraints, subscriptions, nil
}

// DarID returns the identity of this database's DSS Airspace Representation:
// the random ID migration 0002 stored in it (docs/spec/aux.md §2). Every
// node using the database reports the same one.
func (s *Store) DarID(ctx context.Context) (string, error) {
	var id string
	if err := s.pool.QueryRow(ctx, `SELECT dar_id::text FROM aux_pool`).Scan(&id); err != nil {
		return "", dbError(err, "reading the pool identity")
	}
	return id, nil
}
