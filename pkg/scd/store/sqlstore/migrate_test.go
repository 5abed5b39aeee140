package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/models"
)

var schemaTables = []string{"scd_subscriptions", "scd_operations", "scd_constraints", "scd_uss_availability", "schema_versions",
	"aux_dss_instances", "aux_pool"}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func tablesPresent(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*) FROM unnest($1::text[]) AS t(name) WHERE to_regclass(name) IS NOT NULL`, schemaTables).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantVersion(t *testing.T, pool *pgxpool.Pool, want int) {
	t.Helper()
	v, err := CurrentSchemaVersion(context.Background(), pool)
	if err != nil || v != want {
		t.Fatalf("schema version %d (%v), want %d", v, err, want)
	}
}

func TestEmbeddedMigrationsEndAtSchemaVersion(t *testing.T) {
	steps, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != SchemaVersion {
		t.Fatalf("%d embedded migrations, SchemaVersion is %d", len(steps), SchemaVersion)
	}
}

func TestMigrateUpDownUp(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool := newPool(t, url)
	wantVersion(t, pool, 0)
	all := len(schemaTables)
	for _, step := range []struct{ target, tables int }{{2, all}, {2, all}, {1, all - 2}, {0, 0}, {0, 0}, {1, all - 2}, {2, all}} {
		if err := Migrate(ctx, pool, step.target); err != nil {
			t.Fatalf("Migrate(%d): %v", step.target, err)
		}
		wantVersion(t, pool, step.target)
		if n := tablesPresent(t, pool); n != step.tables {
			t.Fatalf("after Migrate(%d): %d of the schema's tables exist, want %d", step.target, n, step.tables)
		}
	}
	if err := Migrate(ctx, pool, SchemaVersion+1); err == nil {
		t.Fatal("migrating to an unknown version succeeded")
	}
	// The migrated schema serves the store.
	s, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Transact(ctx, upsertSub(sub(1, cells(1), at(0), at(time.Hour), true, false))); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesWrongSchemaVersion(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	_, err := Open(ctx, Config{URL: url})
	if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "--migrate") {
		t.Fatalf("Open of an empty database: %v, want ErrSchemaVersion telling to migrate", err)
	}
	pool := newPool(t, url)
	if err := Migrate(ctx, pool, SchemaVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE schema_versions SET schema_version = $1`, fmt.Sprint(SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{URL: url}); !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaVersion", err)
	}
	if _, err := Open(ctx, Config{URL: url, Migrate: true}); !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("Open with Migrate of a newer schema: %v, want ErrSchemaVersion", err)
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = Open(context.Background(), Config{URL: "postgres://u:secret@" + addr + "/scd?sslmode=disable"})
	if models.CodeOf(err) != models.CodeUnavailable {
		t.Fatalf("Open of an unreachable database: %v, want CodeUnavailable", err)
	}
	var me *models.Error
	if errors.As(err, &me) && strings.Contains(me.Message, "secret") {
		t.Fatalf("error message %q shows the password", me.Message)
	}
	if d := time.Since(start); d > DefaultConnectTimeout {
		t.Fatalf("Open took %v to report an unreachable database", d)
	}
}

func TestDatabaseGoneIsUnavailable(t *testing.T) {
	srv := pgtest.Start(t) // its own server: this test stops it
	s, err := Open(context.Background(), Config{URL: srv.URL(), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []*funcOp{getSub(uid(1)), upsertSub(sub(1, cells(1), at(0), at(time.Hour), true, false))} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		_, err := s.Transact(ctx, op)
		cancel()
		if models.CodeOf(err) != models.CodeUnavailable {
			t.Fatalf("Transact (read-only %v) with the database stopped: %v, want CodeUnavailable", op.ro, err)
		}
		if d := time.Since(start); d > DefaultConnectTimeout {
			t.Fatalf("Transact took %v to fail", d)
		}
	}
}
