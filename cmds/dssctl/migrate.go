package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/raftdss/dss/pkg/scd/store/sqlstore"
)

// runMigrate implements `dssctl migrate`: it moves the SCD schema of a
// PostgreSQL database to the latest version this build knows, or to --to.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("datastore_url", "", "PostgreSQL URL of the SCD database, e.g. postgres://user:pass@host:5432/scd")
	to := fs.Int("to", sqlstore.SchemaVersion, "schema version to migrate to (0 removes every SCD table and its data)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dssctl migrate --datastore_url URL [--to N]")
		fmt.Fprintf(fs.Output(), "\nApplies the embedded SQL store migrations up (default: the latest, %d) or down to N, in one\n", sqlstore.SchemaVersion)
		fmt.Fprintln(fs.Output(), "transaction, and prints the schema version before and after. Migrating down deletes the data\nof the dropped tables.\n\nflags:")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "migrate")
	switch {
	case *url == "":
		return usageErr("--datastore_url is required")
	case *to < 0 || *to > sqlstore.SchemaVersion:
		return usageErr("--to must be between 0 and %d (the versions this build knows)", sqlstore.SchemaVersion)
	}

	ctx, stop := signalContext()
	defer stop()
	pool, err := connect(ctx, *url)
	if err != nil {
		return fail(stderr, "migrate", err)
	}
	defer pool.Close()
	before, err := sqlstore.CurrentSchemaVersion(ctx, pool)
	if err != nil {
		return fail(stderr, "migrate", err)
	}
	fmt.Fprintf(stdout, "schema version before: %d\n", before)
	if err := sqlstore.Migrate(ctx, pool, *to); err != nil {
		return fail(stderr, "migrate", err)
	}
	after, err := sqlstore.CurrentSchemaVersion(ctx, pool)
	if err != nil {
		return fail(stderr, "migrate", err)
	}
	fmt.Fprintf(stdout, "schema version after: %d\n", after)
	return 0
}

// connect opens a small pool on url and checks that the database answers.
func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse error may quote the URL, password included.
		return nil, errors.New("the database URL cannot be parsed")
	}
	cfg.MaxConns = 2
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = sqlstore.DefaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database at %s:%d is unreachable: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// parseFlags parses args; done reports that the command must return code
// now (-h, or a flag error already printed by the flag package).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "dssctl %s: unexpected argument %q\n\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2, true
	}
	return 0, false
}

// usageErrorf returns a function that reports a usage error of command
// name, prints its usage, and returns exit status 2.
func usageErrorf(fs *flag.FlagSet, stderr io.Writer, name string) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dssctl "+name+": "+format+"\n\n", a...)
		fs.Usage()
		return 2
	}
}

// fail reports an error while doing the work (exit status 1).
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "dssctl %s: %v\n", name, err)
	return 1
}

// signalContext is cancelled by SIGINT or SIGTERM, so an interrupted
// command rolls back its transaction instead of leaving it to time out.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
