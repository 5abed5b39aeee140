package sqlstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// expiredWhere selects rows ending strictly before $1/$2, to the nanosecond
// like memstore. The plain ends_at bound, implied by the row comparison, lets
// the planner use the ends_at index: the scan, and under SERIALIZABLE its
// predicate locks, then cover only expired rows, so a batch does not
// conflict with client writes of live entities.
const expiredWhere = `ends_at <= $1::timestamptz AND (ends_at, ends_at_ns) < ($1::timestamptz, $2::int2)`

// ListExpired implements repos.Expiry. uuid order is the byte order of the
// canonical text form, the order memstore sorts IDs in, so both backends
// return the same page.
func (r *repo) ListExpired(ctx context.Context, q *repos.ExpiredQuery) ([]models.ID, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, err
	}
	ids := []models.ID{}
	if q.After != "" && !isUUID(q.After) {
		// Every stored ID is a UUID; a page cursor that is not one was not
		// returned by this method.
		return nil, models.Errorf(models.CodeInternal, "expired query after %q: not a UUID", q.After)
	}
	table := "scd_operations"
	switch q.Kind {
	case repos.ExpiredConstraints:
		table = "scd_constraints"
	case repos.ExpiredSubscriptions:
		table = "scd_subscriptions"
	}
	query := `SELECT id::text FROM ` + table + ` AS e WHERE ` + expiredWhere
	args := []any{q.Before, subMicro(q.Before), q.Limit}
	if q.After != "" {
		query += ` AND id > $4::uuid`
		args = append(args, string(q.After))
	}
	if q.Unreferenced {
		query += ` AND NOT EXISTS (SELECT 1 FROM scd_operations AS o WHERE o.subscription_id = e.id)`
	}
	query += ` ORDER BY id LIMIT $3`
	rows, err := r.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, r.fail(err, "listing expired entities")
	}
	strs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, r.fail(err, "listing expired entities")
	}
	for _, s := range strs {
		ids = append(ids, models.ID(s))
	}
	return ids, nil
}
