package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/sqlstore"
	"github.com/raftdss/dss/pkg/store"
)

// sqlConfig is what the --datastore_* and --migrate flags decide.
type sqlConfig struct {
	url         string
	migrate     bool
	maxConns    int
	maxRetries  int
	lockTimeout time.Duration
	retryBudget time.Duration
}

func (c *sqlConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "datastore_url", "",
		"PostgreSQL connection URL (postgres://user:password@host:5432/db?sslmode=verify-full): "+
			"selects the SQL store instead of the Raft store")
	fs.BoolVar(&c.migrate, "migrate", false,
		"with --datastore_url: apply this build's embedded schema migrations at start-up "+
			"(without it, a database at another schema version refuses to start)")
	fs.IntVar(&c.maxConns, "datastore_max_conns", sqlstore.DefaultMaxConns,
		"with --datastore_url: size of the connection pool, i.e. how many operations run in the database at once")
	fs.IntVar(&c.maxRetries, "datastore_max_retries", sqlstore.DefaultMaxRetries,
		"with --datastore_url: reruns of an operation that conflicted (serialization failure, deadlock, lock wait timeout) before it is answered 503")
	fs.DurationVar(&c.lockTimeout, "datastore_lock_timeout", sqlstore.DefaultLockTimeout,
		"with --datastore_url: how long a write running in parallel with others waits for a row lock "+
			"before it gives up and reruns exclusively among writers (PostgreSQL lock_timeout)")
	fs.DurationVar(&c.retryBudget, "datastore_retry_budget", sqlstore.DefaultRetryBudget,
		"with --datastore_url: time after which an operation that keeps conflicting starts no new attempt "+
			"and is answered 503 naming the conflict (keep it below --server_timeout)")
}

// validate checks the SQL flags. They only mean something with the SQL
// store; given without --datastore_url they are refused rather than ignored,
// since an operator passing --migrate expects a migration to happen.
//
// The retry budget must end before the request's deadline (serverTimeout):
// an operation that keeps conflicting is then answered 503 naming the
// conflict, rather than "request timed out". A budget given explicitly at
// or above --server_timeout is refused; the default one is lowered to half
// of a --server_timeout that is shorter than it.
func (c *sqlConfig) validate(fs *flag.FlagSet, selected bool, serverTimeout time.Duration) error {
	if !selected {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "migrate", "datastore_max_conns", "datastore_max_retries", "datastore_lock_timeout", "datastore_retry_budget":
				set = append(set, "--"+f.Name)
			}
		})
		if len(set) > 0 {
			return fmt.Errorf("%s only apply to the SQL store: add --datastore_url", strings.Join(set, ", "))
		}
		return nil
	}
	if c.maxConns <= 0 || c.maxConns > math.MaxInt32 {
		return fmt.Errorf("--datastore_max_conns must be positive, got %d", c.maxConns)
	}
	// sqlstore reads 0 as "its default", so "never retry" cannot be asked
	// for; refusing 0 beats silently retrying ten times.
	if c.maxRetries <= 0 {
		return fmt.Errorf("--datastore_max_retries must be positive, got %d", c.maxRetries)
	}
	if c.lockTimeout < time.Millisecond {
		return fmt.Errorf("--datastore_lock_timeout must be at least 1ms, got %v", c.lockTimeout)
	}
	if c.retryBudget <= 0 {
		return fmt.Errorf("--datastore_retry_budget must be positive, got %v", c.retryBudget)
	}
	if c.retryBudget >= serverTimeout {
		budgetSet := false
		fs.Visit(func(f *flag.Flag) { budgetSet = budgetSet || f.Name == "datastore_retry_budget" })
		if budgetSet {
			return fmt.Errorf("--datastore_retry_budget (%v) must be below --server_timeout (%v), so that an operation "+
				"that keeps conflicting is answered 503 naming the conflict before the request times out",
				c.retryBudget, serverTimeout)
		}
		c.retryBudget = serverTimeout / 2
	}
	return nil
}

// openSQLStore connects to PostgreSQL, migrates when asked, and checks the
// schema version. Every error names the database by its redacted URL: the
// message ends up in logs and on terminals, the password must not.
func openSQLStore(ctx context.Context, c *sqlConfig, log *zap.Logger, reg prometheus.Registerer) (*backend, error) {
	where := redactURL(c.url)
	slog := log.Named("sql")
	st, err := sqlstore.Open(ctx, sqlstore.Config{
		URL:         c.url,
		MaxConns:    int32(c.maxConns),
		MaxRetries:  c.maxRetries,
		LockTimeout: c.lockTimeout,
		RetryBudget: c.retryBudget,
		Migrate:     c.migrate,
		Logger:      slog,
	})
	switch {
	case errors.Is(err, sqlstore.ErrSchemaVersion):
		// sqlstore's message already says which versions and to run
		// --migrate or `dssctl migrate`.
		return nil, fmt.Errorf("the PostgreSQL database at %s is not at this build's schema version %d: %w",
			where, sqlstore.SchemaVersion, err)
	case err != nil:
		return nil, fmt.Errorf("opening the PostgreSQL store at %s: %w", where, err)
	}
	registerSQLMetrics(reg, st)
	slog.Info("sql store open", zap.String("url", where), zap.Int("schema_version", sqlstore.SchemaVersion),
		zap.Bool("migrated", c.migrate), zap.Int("max_conns", c.maxConns), zap.Int("max_retries", c.maxRetries),
		zap.Duration("lock_timeout", c.lockTimeout), zap.Duration("retry_budget", c.retryBudget))
	return &backend{
		store: st,
		ping:  func(ctx context.Context) error { _, err := st.Transact(ctx, pingOp{}); return err },
		darID: st.DarID,
		done:  nil,
		err:   func() error { return nil },
		close: st.Close,
	}, nil
}

// pingOp is an empty read-only operation: running it acquires a pooled
// connection and runs BEGIN; COMMIT on it. PostgreSQL takes a transaction's
// snapshot at its first statement, so this never waits for the DEFERRABLE
// safe snapshot that read-only operations use, and takes no lock. It is
// /readyz's ping through the very pool the API uses (sqlstore exposes no
// Ping of its own): a pool that cannot reach the database, or an exhausted
// one that cannot hand out a connection in time, is not ready.
type pingOp struct{}

// pingOpType is never registered nor written to a log: the SQL store runs
// operations directly.
const pingOpType store.OpType = 0xFFFF

func (pingOp) Type() store.OpType                               { return pingOpType }
func (pingOp) ReadOnly() bool                                   { return true }
func (pingOp) Execute(context.Context, repos.Repo) (any, error) { return nil, nil }

// registerSQLMetrics exposes the store's transaction and contention
// counters: an operator sees contention (lock timeouts, escalations, time
// queued for the writer lock) rising before it costs requests (exhausted).
func registerSQLMetrics(reg prometheus.Registerer, st *sqlstore.Store) {
	counter := func(name, help string, labels prometheus.Labels, v func(sqlstore.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return v(st.Stats()) })
	}
	conflict := func(kind string, v func(sqlstore.Stats) int64) prometheus.Collector {
		return counter("dss_sql_transaction_conflicts_total",
			"Attempts aborted by a conflict, by kind: serialization failure, deadlock, row lock wait timeout "+
				"(inside a transaction), writer lock wait timeout, statement timeout, queue timeout (the retry "+
				"budget ran out while waiting in this process for a writer slot or a connection: overload).",
			prometheus.Labels{"kind": kind}, func(s sqlstore.Stats) float64 { return float64(v(s)) })
	}
	reg.MustRegister(
		counter("dss_sql_transaction_attempts_total", "Transactions started (first runs and retries).", nil,
			func(s sqlstore.Stats) float64 { return float64(s.Attempts) }),
		counter("dss_sql_transaction_retries_total", "Reruns after a conflict.", nil,
			func(s sqlstore.Stats) float64 { return float64(s.Retries) }),
		counter("dss_sql_transaction_escalations_total", "Attempts run exclusively among writers (every rerun of a write).", nil,
			func(s sqlstore.Stats) float64 { return float64(s.Escalated) }),
		counter("dss_sql_operations_exhausted_total",
			"Operations answered 503 because they kept conflicting (retries or retry budget used up).", nil,
			func(s sqlstore.Stats) float64 { return float64(s.Exhausted) }),
		conflict("serialization", func(s sqlstore.Stats) int64 { return s.SerializationFailures }),
		conflict("deadlock", func(s sqlstore.Stats) int64 { return s.Deadlocks }),
		conflict("row_lock_timeout", func(s sqlstore.Stats) int64 { return s.RowLockTimeouts }),
		conflict("writer_lock_timeout", func(s sqlstore.Stats) int64 { return s.WriterLockTimeouts }),
		conflict("statement_timeout", func(s sqlstore.Stats) int64 { return s.StatementTimeouts }),
		conflict("queue_timeout", func(s sqlstore.Stats) int64 { return s.QueueTimeouts }),
		counter("dss_sql_writer_lock_wait_seconds_total",
			"Time writers spent waiting in PostgreSQL for the writer lock (shared or exclusive).", nil,
			func(s sqlstore.Stats) float64 { return s.WriterLockWait.Seconds() }),
		counter("dss_sql_writer_slot_wait_seconds_total",
			"Time writers spent waiting in this process, holding no connection, for a writer connection or "+
				"for their turn to take the writer lock exclusively.", nil,
			func(s sqlstore.Stats) float64 { return s.WriterSlotWait.Seconds() }),
	)
}

// dsnPassword matches the password of a keyword/value connection string
// (password=secret or password='sec ret').
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactURL returns the database URL fit for logs and error messages: a
// URL's password becomes "xxxxx", as does a keyword/value DSN's.
func redactURL(raw string) string {
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "(an unparsable URL)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(raw, "${1}xxxxx")
}
