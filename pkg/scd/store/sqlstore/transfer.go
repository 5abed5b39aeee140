package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// ErrNotEmpty is returned by Import when the target database already holds
// SCD data.
var ErrNotEmpty = errors.New("sqlstore: the database already holds SCD data")

// scdTables are the data tables, in the order Import fills them
// (subscriptions before the OIRs that reference them).
var scdTables = []string{"scd_subscriptions", "scd_operations", "scd_constraints", "scd_uss_availability",
	"aux_dss_instances"}

// Export reads every SCD entity of the database at url (which must be at
// SchemaVersion) in one read-only SERIALIZABLE DEFERRABLE transaction: a
// snapshot no concurrent writer can invalidate, so the result is a state the
// database really was in even while a DSS keeps writing. Instants keep their
// nanoseconds, OIRs their past and requested OVNs, subscriptions their
// notification indices and implicit flags.
//
// The state's last write time, which PostgreSQL does not record, is the
// newest UpdatedAt (see memstore.NewStateFromEntities).
func Export(ctx context.Context, url string) (*memstore.State, error) {
	s, err := Open(ctx, Config{URL: url, MaxConns: 1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var e memstore.Entities
	err = pgx.BeginTxFunc(ctx, s.pool, readOnlyTx, func(tx pgx.Tx) error {
		var err error
		if e.Subscriptions, err = collectAll(ctx, tx, `SELECT `+subColumns+` FROM scd_subscriptions ORDER BY id`, scanSub); err != nil {
			return fmt.Errorf("sqlstore: reading subscriptions: %w", err)
		}
		if e.Constraints, err = collectAll(ctx, tx, `SELECT `+crColumns+` FROM scd_constraints ORDER BY id`, scanCR); err != nil {
			return fmt.Errorf("sqlstore: reading constraints: %w", err)
		}
		if e.OperationalIntents, err = collectAll(ctx, tx, `SELECT `+oirColumns+` FROM scd_operations ORDER BY id`, scanOIR); err != nil {
			return fmt.Errorf("sqlstore: reading operational intents: %w", err)
		}
		e.Availabilities, err = collectAll(ctx, tx,
			`SELECT id, availability, updated_at, updated_at_ns FROM scd_uss_availability ORDER BY id`,
			func(row scanner) (*models.UssAvailability, error) {
				var (
					a   models.UssAvailability
					av  string
					upd time.Time
					ns  int16
				)
				if err := row.Scan(&a.USS, &av, &upd, &ns); err != nil {
					return nil, err
				}
				a.Availability, a.UpdatedAt = models.Availability(av), instant(upd, ns)
				return &a, nil
			})
		if err != nil {
			return fmt.Errorf("sqlstore: reading availability records: %w", err)
		}
		// The pool's instances (docs/spec/aux.md); the pool identity
		// (aux_pool) stays with its database and is not exported.
		insts, err := (&repo{tx: tx, readOnly: true}).ListDSSInstances(ctx)
		if err != nil {
			return fmt.Errorf("sqlstore: reading DSS instances: %w", err)
		}
		if len(insts) > 0 {
			e.DSSInstances = insts
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return memstore.NewStateFromEntities(&e)
}

func collectAll[T any](ctx context.Context, tx pgx.Tx, sql string, scan func(scanner) (*T, error)) ([]*T, error) {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*T, error) { return scan(row) })
}

// Import writes every entity of st into the database at url, which must be
// at SchemaVersion and hold no SCD data (else ErrNotEmpty), in one
// transaction: either everything is imported or nothing is.
//
// The tables are locked (EXCLUSIVE: readers may proceed, writers wait) before
// the emptiness check, so a DSS already writing to this database cannot slip
// an entity in between the check and the import. Rows are written by the
// same code the SQL store uses for its own writes, so the columns mean
// exactly what they mean there.
func Import(ctx context.Context, url string, st *memstore.State) error {
	if st == nil {
		return errors.New("sqlstore: nil state")
	}
	e := st.Entities()
	s, err := Open(ctx, Config{URL: url, MaxConns: 1})
	if err != nil {
		return err
	}
	defer s.Close()
	return pgx.BeginTxFunc(ctx, s.pool, readWriteTx, func(tx pgx.Tx) error {
		for _, t := range scdTables {
			if _, err := tx.Exec(ctx, `LOCK TABLE `+t+` IN EXCLUSIVE MODE`); err != nil {
				return fmt.Errorf("sqlstore: locking %s: %w", t, err)
			}
		}
		for _, t := range scdTables {
			var nonEmpty bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&nonEmpty); err != nil {
				return fmt.Errorf("sqlstore: checking that %s is empty: %w", t, err)
			}
			if nonEmpty {
				return fmt.Errorf("%w (table %s is not empty)", ErrNotEmpty, t)
			}
		}
		r := &repo{tx: tx}
		for _, sub := range e.Subscriptions {
			if err := r.UpsertSubscription(ctx, sub); err != nil {
				return fmt.Errorf("sqlstore: importing subscription %s: %w", sub.ID, err)
			}
		}
		for _, o := range e.OperationalIntents {
			if err := r.UpsertOperationalIntent(ctx, o); err != nil {
				return fmt.Errorf("sqlstore: importing operational intent %s: %w", o.ID, err)
			}
		}
		for _, c := range e.Constraints {
			if err := r.UpsertConstraint(ctx, c); err != nil {
				return fmt.Errorf("sqlstore: importing constraint %s: %w", c.ID, err)
			}
		}
		for _, a := range e.Availabilities {
			if err := r.UpsertUssAvailability(ctx, a); err != nil {
				return fmt.Errorf("sqlstore: importing availability of %s: %w", a.USS, err)
			}
		}
		for _, inst := range e.DSSInstances {
			if err := r.UpsertDSSInstance(ctx, inst); err != nil {
				return fmt.Errorf("sqlstore: importing DSS instance %q: %w", inst.ID, err)
			}
		}
		return nil
	})
}
