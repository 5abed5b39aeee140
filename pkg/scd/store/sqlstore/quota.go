package sqlstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// heldWhere selects one manager's rows sharing a cell with $1 and still in
// force at $3/$4 (ending at or after it, to the nanosecond, like memstore).
const heldWhere = `cells && $1::int8[] AND owner = $2
	AND (ends_at, ends_at_ns) >= ($3::timestamptz, $4::int2)`

// fullCellTail keeps the held cells that are among $1, counts each, and
// returns the lowest one with at least $6 entries.
const fullCellTail = `) AS held WHERE cell = ANY($1::int8[])
	GROUP BY cell HAVING count(*) >= $6 ORDER BY cell LIMIT 1`

const (
	fullCellSubsSQL = `SELECT cell FROM (
	SELECT unnest(cells) AS cell FROM scd_subscriptions WHERE ` + heldWhere + ` AND NOT implicit AND id::text <> $5
	` + fullCellTail
	fullCellEntitiesSQL = `SELECT cell FROM (
	SELECT unnest(cells) AS cell FROM scd_operations WHERE ` + heldWhere + ` AND id::text <> $5
	UNION ALL
	SELECT unnest(cells) AS cell FROM scd_constraints WHERE ` + heldWhere + ` AND id::text <> $7
	` + fullCellTail
)

// FirstFullCell implements repos.Quotas with one query, exactly as memstore
// counts. Under SERIALIZABLE, two concurrent writes that each see room for
// one more entity in a cell cannot both commit: one gets a serialization
// failure and is retried, and then sees the other's entity.
func (r *repo) FirstFullCell(ctx context.Context, q *repos.QuotaQuery) (models.CellID, bool, error) {
	if err := r.checkRead(); err != nil {
		return 0, false, err
	}
	if err := q.Check(); err != nil {
		return 0, false, err
	}
	args := []any{storedCells(q.Cells), q.Manager, q.NotBefore, subMicro(q.NotBefore)}
	query := fullCellSubsSQL
	if q.Kind == repos.QuotaSubscriptions {
		args = append(args, string(q.ExceptSubscription), q.Limit)
	} else {
		query = fullCellEntitiesSQL
		args = append(args, string(q.ExceptOperationalIntent), q.Limit, string(q.ExceptConstraint))
	}
	var cell int64
	err := r.tx.QueryRow(ctx, query, args...).Scan(&cell)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, r.fail(err, "counting a USS's entities for its quota")
	}
	return models.CellID(cell), true, nil
}
