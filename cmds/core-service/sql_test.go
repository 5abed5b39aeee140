package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/raftdss/dss/internal/pgtest"
)

func TestSQLFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--dev", "--datastore_url", "postgres://x/scd", "--migrate",
		"--datastore_max_conns", "7", "--datastore_max_retries", "3", "--datastore_lock_timeout", "20ms",
		"--datastore_retry_budget", "3s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.store != storeSQL || cfg.sql.url != "postgres://x/scd" || !cfg.sql.migrate ||
		cfg.sql.maxConns != 7 || cfg.sql.maxRetries != 3 || cfg.sql.lockTimeout != 20*time.Millisecond ||
		cfg.sql.retryBudget != 3*time.Second {
		t.Fatalf("store %v, sql %+v", cfg.store, cfg.sql)
	}
	if cfg, err = parseFlags([]string{"--dev", "--datastore_url", "postgres://x/scd"}, io.Discard); err != nil ||
		cfg.sql.migrate || cfg.sql.maxConns != 16 || cfg.sql.maxRetries != 10 ||
		cfg.sql.lockTimeout != 50*time.Millisecond || cfg.sql.retryBudget != 4*time.Second {
		t.Fatalf("defaults: %v %+v", err, cfg.sql)
	}
	// The default budget ends before a short --server_timeout.
	if cfg, err = parseFlags([]string{"--dev", "--datastore_url", "postgres://x/scd", "--server_timeout", "3s"},
		io.Discard); err != nil || cfg.sql.retryBudget != 1500*time.Millisecond {
		t.Fatalf("--server_timeout 3s: %v, retry budget %v, want 1.5s", err, cfg.sql.retryBudget)
	}
	if cfg, err = parseFlags([]string{"--dev", "--datastore_url", "postgres://x/scd", "--server_timeout", "3s",
		"--datastore_retry_budget", "2s"}, io.Discard); err != nil || cfg.sql.retryBudget != 2*time.Second {
		t.Fatalf("--server_timeout 3s --datastore_retry_budget 2s: %v, retry budget %v", err, cfg.sql.retryBudget)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://dss:s3cret@db:5432/scd?sslmode=verify-full": "postgres://dss:xxxxx@db:5432/scd?sslmode=verify-full",
		"postgres://dss@db/scd?password=s3cret":                 "postgres://dss@db/scd?password=xxxxx",
		"postgres://db/scd":                                     "postgres://db/scd",
		"host=db user=dss password=s3cret dbname=scd":           "host=db user=dss password=xxxxx dbname=scd",
		"host=db password = 's3 cret' dbname=scd":               "host=db password = xxxxx dbname=scd",
		"postgres://dss:s3cret@db:bad-port/scd":                 "(an unparsable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSQLStore: an empty database is refused without --migrate, with a
// message saying what to run; --migrate makes it usable; a second node on
// the same database (no --migrate needed now) sees the first one's writes;
// a database at another schema version is refused.
func TestSQLStore(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	devDir := t.TempDir()

	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"--dev", "--dev_dir", devDir, "--addr", "127.0.0.1:0",
		"--datastore_url", dbURL}, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "--migrate") ||
		!strings.Contains(stderr.String(), "dssctl migrate") || !strings.Contains(stderr.String(), "version 0") {
		t.Fatalf("empty database without --migrate: exit %d, stderr:\n%s", code, stderr.String())
	}

	a := startNode(t, devDir, "--datastore_url", dbURL, "--migrate", "--datastore_max_conns", "4")
	a.waitReady()
	if code, body := a.call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT availability: %d %s", code, body)
	}
	if st := a.status(); st.Store != "sql" || st.StateHash != "" {
		t.Fatalf("/status: %+v", st)
	}
	if _, metrics := a.call("GET", "/metrics", ""); !strings.Contains(metrics, "dss_sql_transaction_attempts_total") ||
		!strings.Contains(metrics, `dss_sql_transaction_conflicts_total{kind="row_lock_timeout"}`) ||
		!strings.Contains(metrics, `dss_sql_transaction_conflicts_total{kind="queue_timeout"}`) ||
		!strings.Contains(metrics, "dss_sql_writer_lock_wait_seconds_total") {
		t.Errorf("/metrics lacks the SQL store's counters")
	}

	b := startNode(t, devDir, "--datastore_url", dbURL)
	b.waitReady()
	if code, body := b.call("GET", "/dss/v1/uss_availability/uss1", ""); code != http.StatusOK || !strings.Contains(body, "Down") {
		t.Fatalf("GET on the second node: %d %s", code, body)
	}
	for name, n := range map[string]*node{"first": a, "second": b} {
		if code := n.stop(); code != exitOK {
			t.Fatalf("%s node: exit code %d; stderr:\n%s", name, code, n.stderr.String())
		}
	}

	adminExec(t, dbURL, "UPDATE schema_versions SET schema_version = '999'")
	stdout, stderr = syncBuffer{}, syncBuffer{}
	code = run(context.Background(), []string{"--dev", "--dev_dir", devDir, "--addr", "127.0.0.1:0",
		"--datastore_url", dbURL}, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "version 999") || !strings.Contains(stderr.String(), "--migrate") {
		t.Fatalf("database at a newer version: exit %d, stderr:\n%s", code, stderr.String())
	}
}

// TestSQLReadyzPingsTheDatabase: /readyz asks the database, so a node whose
// database disappeared is not ready, and it still shuts down cleanly.
func TestSQLReadyzPingsTheDatabase(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	n := startNode(t, t.TempDir(), "--datastore_url", dbURL, "--migrate")
	n.waitReady()

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	adminExec(t, pgtest.Shared(t).DatabaseURL("postgres"), "DROP DATABASE "+strings.TrimPrefix(u.Path, "/")+" WITH (FORCE)")
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := n.call("GET", "/readyz", "")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "database") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with the database gone: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := n.stop(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, n.stderr.String())
	}
}

// TestSQLUnreachableDatabase: a database that cannot be reached stops the
// start with exit code 1 and a message naming the URL, without its
// password.
func TestSQLUnreachableDatabase(t *testing.T) {
	// A port nothing listens on (closed again before use).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dbURL := "postgres://dss:pw-s3cret@127.0.0.1:" + strconv.Itoa(port) + "/scd?sslmode=disable&connect_timeout=2"
	var stdout, stderr syncBuffer
	start := time.Now()
	code := run(context.Background(), []string{"--dev", "--dev_dir", t.TempDir(), "--addr", "127.0.0.1:0",
		"--datastore_url", dbURL}, &stdout, &stderr)
	out := stderr.String()
	if code != exitFailure {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitFailure, out)
	}
	if want := "postgres://dss:xxxxx@127.0.0.1:" + strconv.Itoa(port) + "/scd"; !strings.Contains(out, want) ||
		!strings.Contains(out, "unreachable") {
		t.Fatalf("stderr does not name %s as unreachable:\n%s", want, out)
	}
	if strings.Contains(out+stdout.String(), "pw-s3cret") {
		t.Fatalf("the password was printed:\n%s", out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("giving up took %v", d)
	}
}

// adminExec runs one statement on the database at dbURL.
func adminExec(t *testing.T, dbURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
