// Package pgtest starts throwaway PostgreSQL servers for tests, from the
// PostgreSQL binaries installed on the machine (pg_config --bindir or
// /usr/lib/postgresql/*/bin).
//
// A Server lives in its own temporary directory (data directory, Unix
// socket directory, log file), listens on a free loopback port, runs with
// fsync on so that measurements taken against it mean something, and is
// stopped and deleted by Stop. Tests normally share one server per test
// binary (Shared, stopped by Main in TestMain) and get an isolated database
// each (NewDatabase), which keeps a package's test time to one start-up.
//
// It owns the server processes it starts and nothing else: it never touches
// another PostgreSQL on the machine. A test that needs PostgreSQL fails, never
// skips, when the binaries are missing: a silently skipped test would pass on
// a machine that cannot run it.
package pgtest
