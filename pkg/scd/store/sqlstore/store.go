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
	// running at once; 0 means DefaultMaxConns.
	MaxConns int32
	// MaxRetries is how often an operation is retried after a serialization
	// failure or deadlock (so it runs at most MaxRetries+1 times) before
	// Transact gives up with CodeUnavailable; 0 or less means
	// DefaultMaxRetries.
	MaxRetries int
	// Migrate applies the embedded migrations up to SchemaVersion at Open.
	// Without it Open only checks the version.
	Migrate bool
	// Logger receives database failures and retry exhaustion; nil logs
	// nothing.
	Logger *zap.Logger
}

// Defaults of Config.
const (
	DefaultMaxConns       = 16
	DefaultMaxRetries     = 10
	DefaultConnectTimeout = 5 * time.Second
)

// Backoff between attempts: attempt n waits a random duration in
// [d/2, d) with d = min(backoffMax, backoffBase·2^(n-1)). The jitter keeps
// two transactions that just conflicted from colliding again in lock-step;
// the cap keeps the worst case (10 retries) near two seconds.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 400 * time.Millisecond
)

// Store is the SCD store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool       *pgxpool.Pool
	log        *zap.Logger
	maxRetries int

	attempts  atomic.Int64
	retries   atomic.Int64
	escalated atomic.Int64
	exhausted atomic.Int64
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
	maxRetries := cfg.MaxRetries
	if maxRetries <= 0 {
		maxRetries = DefaultMaxRetries
	}
	return &Store{pool: pool, log: log, maxRetries: maxRetries}, nil
}

// Close closes every connection; operations still running fail.
func (s *Store) Close() { s.pool.Close() }

// Stats counts what Transact did since Open.
type Stats struct {
	// Attempts is the number of transactions started (first runs and
	// retries).
	Attempts int64
	// Retries is the number of reruns after a serialization failure or
	// deadlock.
	Retries int64
	// Escalated is the number of attempts that ran exclusively among
	// writers after repeated serialization failures.
	Escalated int64
	// Exhausted is the number of operations that failed because every
	// attempt conflicted.
	Exhausted int64
}

// Stats returns the counters of s.
func (s *Store) Stats() Stats {
	return Stats{Attempts: s.attempts.Load(), Retries: s.retries.Load(), Escalated: s.escalated.Load(),
		Exhausted: s.exhausted.Load()}
}

var (
	readWriteTx = pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadWrite}
	// A read-only, deferrable serializable transaction waits (if needed)
	// for a snapshot that no concurrent writer can invalidate, and then
	// runs without predicate locks and can never fail to serialize: the
	// right mode for GET and queries (spec §10 "one consistent snapshot").
	readOnlyTx = pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly, DeferrableMode: pgx.Deferrable}
)

// Transact runs op in one SERIALIZABLE transaction and commits it. When
// PostgreSQL aborts the transaction to keep it serializable (SQLSTATE
// 40001) or to break a deadlock (40P01), nothing of it was applied and the
// whole operation runs again, after a jittered exponential backoff, up to
// MaxRetries times; then the result is CodeUnavailable. Errors of op are
// returned as they are; database failures are CodeUnavailable when the
// database cannot answer now (connection lost, timeout, too many
// connections, ctx ended) and CodeInternal otherwise (logged with cause).
func (s *Store) Transact(ctx context.Context, op store.Operation[repos.Repo]) (any, error) {
	if op == nil {
		return nil, models.Errorf(models.CodeInternal, "sqlstore: nil operation")
	}
	opts := readWriteTx
	if op.ReadOnly() {
		opts = readOnlyTx
	}
	for attempt := 1; ; attempt++ {
		res, err := s.runOnce(ctx, op, opts, attempt)
		if err == nil {
			return res, nil
		}
		if !isRetryable(err) {
			return nil, s.finalError(op, err)
		}
		if attempt > s.maxRetries {
			s.exhausted.Add(1)
			s.log.Warn("sqlstore: operation failed to serialize on every attempt",
				zap.Uint16("op_type", uint16(op.Type())), zap.Int("attempts", attempt), zap.Error(err))
			return nil, &models.Error{Code: models.CodeUnavailable, Message: "contention, retry", Cause: err}
		}
		s.retries.Add(1)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, &models.Error{Code: models.CodeUnavailable,
				Message: "request ended while waiting to retry a conflicting transaction", Cause: err}
		}
	}
}

// Writers take the advisory lock writerLock, on their session before BEGIN:
// in shared mode normally, so they run in parallel, and in exclusive mode
// once an operation has failed to serialize escalateAfter times, so that
// its next attempt runs alone among writers and cannot fail again.
//
// Why: SERIALIZABLE in PostgreSQL locks index pages, not rows, so writes to
// disjoint areas still abort each other now and then when their index
// entries share a page, and under sustained load an unlucky operation could
// lose MaxRetries times in a row and fail a client for no real conflict.
// Taking the lock before BEGIN matters: the transaction's snapshot is then
// taken after every earlier writer finished, so nothing it reads is stale.
// Read-only transactions are DEFERRABLE, never abort, and take no lock.
const (
	writerLock    = 0x5CD5_0001
	escalateAfter = 5
)

// runOnce is one attempt: lock, begin, Execute, commit; rollback on any
// failure.
func (s *Store) runOnce(ctx context.Context, op store.Operation[repos.Repo], opts pgx.TxOptions, attempt int) (res any, err error) {
	s.attempts.Add(1)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, dbError(err, "acquiring a connection")
	}
	defer conn.Release()
	if !op.ReadOnly() {
		lock := "SELECT pg_advisory_lock_shared($1)"
		if attempt > escalateAfter {
			lock = "SELECT pg_advisory_lock($1)"
			s.escalated.Add(1)
		}
		// Close the session on any doubt about the lock (an error may
		// arrive after PostgreSQL granted it): a session lock left on a
		// pooled connection would block every escalation forever, and
		// closing the session releases its locks.
		if _, err := conn.Exec(ctx, lock, int64(writerLock)); err != nil {
			closeConn(ctx, conn)
			return nil, dbError(err, "taking the writer lock")
		}
		defer func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock_all()"); err != nil {
				closeConn(uctx, conn)
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, opts)
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
		d = min(backoffMax, backoffBase<<(attempt-1))
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
