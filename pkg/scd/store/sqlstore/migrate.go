package sqlstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the schema version this build reads and writes. Open
// refuses a database at any other version.
const SchemaVersion = 2

// ErrSchemaVersion is wrapped by Open's error when the database's schema
// version is not SchemaVersion.
var ErrSchemaVersion = errors.New("sqlstore: unexpected database schema version")

// The migrations travel inside the binary, so an operator never has to find
// the SQL files that match the binary they run.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered step, with the SQL to apply and to revert it.
type migration struct {
	version  int
	up, down string
}

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.(up|down)\.sql$`)

// loadMigrations reads the embedded steps and checks that they are numbered
// 1..n without gaps, each with an up and a down file.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: unexpected migration file name %q", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		step := byVersion[v]
		if step == nil {
			step = &migration{version: v}
			byVersion[v] = step
		}
		if m[2] == "up" {
			step.up = string(body)
		} else {
			step.down = string(body)
		}
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 || m.up == "" || m.down == "" {
			return nil, fmt.Errorf("sqlstore: migration %04d is missing, or lacks its up or down file", i+1)
		}
	}
	return out, nil
}

// migrationLock is the advisory lock key that serialises concurrent
// migrations (two nodes started with --migrate at once); any constant works
// as long as nothing else in the database uses it.
const migrationLock = 0x5CD5_1A7E

// Migrate moves the database's schema up or down to targetVersion (0 removes
// every SCD table). All steps run in one transaction (PostgreSQL DDL is
// transactional), so a failed migration leaves the schema as it was.
// Migrating down deletes the data of the dropped tables.
func Migrate(ctx context.Context, pool *pgxpool.Pool, targetVersion int) error {
	steps, err := loadMigrations()
	if err != nil {
		return err
	}
	if targetVersion < 0 || targetVersion > len(steps) {
		return fmt.Errorf("sqlstore: cannot migrate to schema version %d: this build knows versions 0 to %d", targetVersion, len(steps))
	}
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return fmt.Errorf("sqlstore: taking the migration lock: %w", err)
		}
		// Read after taking the lock: in READ COMMITTED this statement sees
		// whatever a concurrent migration committed meanwhile.
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > len(steps) {
			return fmt.Errorf("%w: database is at %d, newer than this build (%d)", ErrSchemaVersion, current, len(steps))
		}
		for v := current + 1; v <= targetVersion; v++ {
			// Multi-statement SQL without arguments runs over the simple
			// protocol.
			if _, err := tx.Exec(ctx, steps[v-1].up); err != nil {
				return fmt.Errorf("sqlstore: migrating up to %d: %w", v, err)
			}
		}
		for v := current; v > targetVersion; v-- {
			if _, err := tx.Exec(ctx, steps[v-1].down); err != nil {
				return fmt.Errorf("sqlstore: migrating down from %d: %w", v, err)
			}
		}
		if targetVersion == 0 || targetVersion == current {
			return nil // version 0 has no schema_versions table
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_versions (onerow_enforcer, schema_version) VALUES (true, $1)
			ON CONFLICT (onerow_enforcer) DO UPDATE SET schema_version = EXCLUDED.schema_version`,
			strconv.Itoa(targetVersion))
		return err
	})
}

// CurrentSchemaVersion returns the schema version of the database: 0 when
// it has no SCD schema at all.
func CurrentSchemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	return schemaVersion(ctx, pool)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('schema_versions') IS NOT NULL").Scan(&exists); err != nil {
		return 0, fmt.Errorf("sqlstore: reading the schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var text string
	err := q.QueryRow(ctx, "SELECT schema_version FROM schema_versions").Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: table schema_versions is empty", ErrSchemaVersion)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: reading the schema version: %w", err)
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %q is not a version this build understands", ErrSchemaVersion, text)
	}
	return v, nil
}
