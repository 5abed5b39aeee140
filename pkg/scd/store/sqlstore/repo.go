package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// repo is the repos.Repo of one transaction attempt. Its semantics are those
// of memstore's repo, method by method: the same matching rules (spec §4),
// the same results in the same order (sorted by ID), the same errors.
type repo struct {
	tx       pgx.Tx
	readOnly bool
	closed   bool
	// failed is the first database error of the transaction. PostgreSQL
	// rejects every later statement of an aborted transaction, so later
	// calls return it again instead of asking.
	failed *models.Error
}

var _ repos.Repo = (*repo)(nil)

func (r *repo) checkRead() error {
	if r.closed {
		return models.Errorf(models.CodeInternal, "sqlstore: repository used after its operation returned")
	}
	if r.failed != nil {
		return r.failed
	}
	return nil
}

func (r *repo) checkWrite(what string) error {
	if err := r.checkRead(); err != nil {
		return err
	}
	if r.readOnly {
		return models.Errorf(models.CodeInternal, "sqlstore: %s in a read-only operation", what)
	}
	return nil
}

func (r *repo) fail(err error, what string) error {
	e := dbError(err, what)
	if r.failed == nil {
		r.failed = e
	}
	return e
}

// ---- Columns and conversions ----

// Every instant is stored as timestamptz (whole microseconds, rounded down
// by pgx) plus the nanoseconds below the microsecond (see the migration).
func subMicro(t time.Time) int16 { return int16(t.Nanosecond() % 1000) }

func instant(ts time.Time, ns int16) time.Time { return ts.Add(time.Duration(ns)).UTC() }

// isUUID reports whether id can be stored in a uuid column. IDs reaching the
// repo are canonical UUIDs (models.ParseID); anything else cannot be stored,
// so it is simply absent, as memstore would find it absent.
func isUUID(id models.ID) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// storedCells returns cells as the sorted, duplicate-free set memstore
// stores, as int64s for the bigint[] column. The caller's slice is not
// modified.
func storedCells(cells []models.CellID) []int64 {
	out := make([]int64, len(cells))
	sorted := true
	for i, c := range cells {
		out[i] = int64(c)
		if i > 0 && c <= cells[i-1] {
			sorted = false
		}
	}
	if !sorted {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out
}

// cellSet converts a bigint[] back; no cells is nil, as in memstore.
func cellSet(v []int64) []models.CellID {
	if len(v) == 0 {
		return nil
	}
	out := make([]models.CellID, len(v))
	for i, c := range v {
		out[i] = models.CellID(c)
	}
	return out
}

func queryCellArg(v *models.Volume4D) ([]int64, error) {
	if v == nil || len(v.Cells) == 0 {
		// Spec §4 and repos: a search needs a footprint.
		return nil, models.Errorf(models.CodeBadRequest, "missing area: a search needs at least one S2 cell")
	}
	out := make([]int64, len(v.Cells))
	for i, c := range v.Cells {
		out[i] = int64(c)
	}
	return out, nil
}

// matchArgs are the arguments $1..$5 of matchWhere: the query cells and its
// time bounds, NULL when absent (a NULL bound makes its comparison NULL,
// which COALESCE turns into "no filter").
func matchArgs(cells []int64, v *models.Volume4D) []any {
	args := []any{cells, nil, nil, nil, nil}
	if v.StartTime != nil {
		args[1], args[2] = *v.StartTime, subMicro(*v.StartTime)
	}
	if v.EndTime != nil {
		args[3], args[4] = *v.EndTime, subMicro(*v.EndTime)
	}
	return args
}

// matchWhere is spec §4 on cells and time: a shared cell (&&, served by the
// GIN index), entity.end ≥ query.start and entity.start ≤ query.end,
// inclusive, compared to the nanosecond as (microseconds, rest) pairs.
const matchWhere = `cells && $1::int8[]
	AND COALESCE((ends_at, ends_at_ns) >= ($2::timestamptz, $3::int2), true)
	AND COALESCE((starts_at, starts_at_ns) <= ($4::timestamptz, $5::int2), true)`

// ---- Operational intents ----

const oirColumns = `id::text, owner, version, state, COALESCE(uss_requested_ovn, ''), past_ovns, url,
	COALESCE(subscription_id::text, ''), starts_at, starts_at_ns, ends_at, ends_at_ns,
	altitude_lower, altitude_upper, cells, updated_at, updated_at_ns`

type scanner interface{ Scan(dest ...any) error }

func scanOIR(row scanner) (*models.OperationalIntent, error) {
	var (
		o                 models.OperationalIntent
		id, state         string
		requested, subID  string
		past              []string
		cells             []int64
		start, end, upd   time.Time
		startNs, endNs, u int16
	)
	if err := row.Scan(&id, &o.Manager, &o.Version, &state, &requested, &past, &o.USSBaseURL, &subID,
		&start, &startNs, &end, &endNs, &o.AltitudeLower, &o.AltitudeUpper, &cells, &upd, &u); err != nil {
		return nil, err
	}
	o.ID, o.State, o.RequestedOVN, o.SubscriptionID = models.ID(id), models.OperationalIntentState(state),
		models.OVN(requested), models.ID(subID)
	if len(past) > 0 {
		o.PastOVNs = make([]models.OVN, len(past))
		for i, p := range past {
			o.PastOVNs[i] = models.OVN(p)
		}
	}
	o.StartTime, o.EndTime, o.UpdatedAt = instant(start, startNs), instant(end, endNs), instant(upd, u)
	o.Cells = cellSet(cells)
	return &o, nil
}

func (r *repo) GetOperationalIntent(ctx context.Context, id models.ID) (*models.OperationalIntent, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if !isUUID(id) {
		return nil, nil
	}
	o, err := scanOIR(r.tx.QueryRow(ctx, `SELECT `+oirColumns+` FROM scd_operations WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(err, "reading an operational intent")
	}
	return o, nil
}

// searchOIRs adds the altitude rule, for OIRs only (spec §4).
const searchOIRsSQL = `SELECT ` + oirColumns + ` FROM scd_operations WHERE ` + matchWhere + `
	AND COALESCE(altitude_upper >= $6::real, true)
	AND COALESCE(altitude_lower <= $7::real, true)
	ORDER BY id LIMIT 10000`

func (r *repo) SearchOperationalIntents(ctx context.Context, v *models.Volume4D) ([]*models.OperationalIntent, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	cells, err := queryCellArg(v)
	if err != nil {
		return nil, err
	}
	args := append(matchArgs(cells, v), nil, nil)
	if v.AltitudeLower != nil {
		args[5] = *v.AltitudeLower
	}
	if v.AltitudeUpper != nil {
		args[6] = *v.AltitudeUpper
	}
	rows, err := r.tx.Query(ctx, searchOIRsSQL, args...)
	if err != nil {
		return nil, r.fail(err, "searching operational intents")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*models.OperationalIntent, error) { return scanOIR(row) })
	if err != nil {
		return nil, r.fail(err, "searching operational intents")
	}
	return out, nil
}

func (r *repo) UpsertOperationalIntent(ctx context.Context, oir *models.OperationalIntent) error {
	if err := r.checkWrite("UpsertOperationalIntent"); err != nil {
		return err
	}
	if oir == nil || oir.ID == "" {
		return models.Errorf(models.CodeInternal, "sqlstore: upsert of an OIR without ID")
	}
	if !isUUID(oir.ID) {
		return models.Errorf(models.CodeInternal, "sqlstore: OIR ID %q is not a UUID", oir.ID)
	}
	var subID, requested any
	if oir.SubscriptionID != "" {
		if !isUUID(oir.SubscriptionID) {
			// memstore: the subscription cannot exist.
			return models.Errorf(models.CodeInternal, "sqlstore: OIR %s references unknown subscription %s", oir.ID, oir.SubscriptionID)
		}
		subID = string(oir.SubscriptionID)
	}
	if oir.RequestedOVN != "" {
		requested = string(oir.RequestedOVN)
	}
	past := make([]string, len(oir.PastOVNs))
	for i, p := range oir.PastOVNs {
		past[i] = string(p)
	}
	// The foreign key on subscription_id rejects a reference to an unknown
	// subscription, as memstore does (spec §11).
	_, err := r.tx.Exec(ctx, `INSERT INTO scd_operations (id, owner, version, url, altitude_lower, altitude_upper,
			starts_at, starts_at_ns, ends_at, ends_at_ns, subscription_id, updated_at, updated_at_ns, state, cells,
			uss_requested_ovn, past_ovns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, version = EXCLUDED.version, url = EXCLUDED.url,
			altitude_lower = EXCLUDED.altitude_lower, altitude_upper = EXCLUDED.altitude_upper,
			starts_at = EXCLUDED.starts_at, starts_at_ns = EXCLUDED.starts_at_ns,
			ends_at = EXCLUDED.ends_at, ends_at_ns = EXCLUDED.ends_at_ns,
			subscription_id = EXCLUDED.subscription_id,
			updated_at = EXCLUDED.updated_at, updated_at_ns = EXCLUDED.updated_at_ns,
			state = EXCLUDED.state, cells = EXCLUDED.cells,
			uss_requested_ovn = EXCLUDED.uss_requested_ovn, past_ovns = EXCLUDED.past_ovns`,
		string(oir.ID), oir.Manager, oir.Version, oir.USSBaseURL, oir.AltitudeLower, oir.AltitudeUpper,
		oir.StartTime, subMicro(oir.StartTime), oir.EndTime, subMicro(oir.EndTime), subID,
		oir.UpdatedAt, subMicro(oir.UpdatedAt), string(oir.State), storedCells(oir.Cells), requested, past)
	if err != nil {
		return r.fail(err, "writing an operational intent")
	}
	return nil
}

func (r *repo) DeleteOperationalIntent(ctx context.Context, id models.ID) error {
	if err := r.checkWrite("DeleteOperationalIntent"); err != nil {
		return err
	}
	n := int64(0)
	if isUUID(id) {
		tag, err := r.tx.Exec(ctx, `DELETE FROM scd_operations WHERE id = $1`, string(id))
		if err != nil {
			return r.fail(err, "deleting an operational intent")
		}
		n = tag.RowsAffected()
	}
	if n == 0 {
		return models.Errorf(models.CodeNotFound, "operational intent %s not found", id)
	}
	return nil
}

func (r *repo) GetDependentOperationalIntents(ctx context.Context, subID models.ID) ([]models.ID, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	ids := []models.ID{}
	if !isUUID(subID) {
		return ids, nil
	}
	rows, err := r.tx.Query(ctx, `SELECT id::text FROM scd_operations WHERE subscription_id = $1 ORDER BY id`, string(subID))
	if err != nil {
		return nil, r.fail(err, "reading dependent operational intents")
	}
	strs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, r.fail(err, "reading dependent operational intents")
	}
	for _, s := range strs {
		ids = append(ids, models.ID(s))
	}
	return ids, nil
}

// ---- Subscriptions ----

const subColumns = `id::text, owner, notification_index, url, notify_for_operations, notify_for_constraints,
	implicit, starts_at, starts_at_ns, ends_at, ends_at_ns, cells, updated_at, updated_at_ns`

func scanSub(row scanner) (*models.Subscription, error) {
	var (
		s                 models.Subscription
		id                string
		cells             []int64
		start, end, upd   time.Time
		startNs, endNs, u int16
	)
	if err := row.Scan(&id, &s.Manager, &s.NotificationIndex, &s.USSBaseURL, &s.NotifyForOperationalIntents,
		&s.NotifyForConstraints, &s.Implicit, &start, &startNs, &end, &endNs, &cells, &upd, &u); err != nil {
		return nil, err
	}
	s.ID = models.ID(id)
	s.StartTime, s.EndTime, s.UpdatedAt = instant(start, startNs), instant(end, endNs), instant(upd, u)
	s.Cells = cellSet(cells)
	return &s, nil
}

func (r *repo) GetSubscription(ctx context.Context, id models.ID) (*models.Subscription, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if !isUUID(id) {
		return nil, nil
	}
	s, err := scanSub(r.tx.QueryRow(ctx, `SELECT `+subColumns+` FROM scd_subscriptions WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(err, "reading a subscription")
	}
	return s, nil
}

func (r *repo) SearchSubscriptions(ctx context.Context, v *models.Volume4D) ([]*models.Subscription, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	cells, err := queryCellArg(v)
	if err != nil {
		return nil, err
	}
	// Spec §4: subscriptions match on cells and time only.
	rows, err := r.tx.Query(ctx, `SELECT `+subColumns+` FROM scd_subscriptions WHERE `+matchWhere+`
		ORDER BY id LIMIT 10000`, matchArgs(cells, v)...)
	if err != nil {
		return nil, r.fail(err, "searching subscriptions")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*models.Subscription, error) { return scanSub(row) })
	if err != nil {
		return nil, r.fail(err, "searching subscriptions")
	}
	return out, nil
}

func (r *repo) UpsertSubscription(ctx context.Context, sub *models.Subscription) error {
	if err := r.checkWrite("UpsertSubscription"); err != nil {
		return err
	}
	if sub == nil || sub.ID == "" {
		return models.Errorf(models.CodeInternal, "sqlstore: upsert of a subscription without ID")
	}
	if !isUUID(sub.ID) {
		return models.Errorf(models.CodeInternal, "sqlstore: subscription ID %q is not a UUID", sub.ID)
	}
	_, err := r.tx.Exec(ctx, `INSERT INTO scd_subscriptions (id, owner, url, notification_index,
			notify_for_operations, notify_for_constraints, implicit, starts_at, starts_at_ns, ends_at, ends_at_ns,
			cells, updated_at, updated_at_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, url = EXCLUDED.url,
			notification_index = EXCLUDED.notification_index,
			notify_for_operations = EXCLUDED.notify_for_operations,
			notify_for_constraints = EXCLUDED.notify_for_constraints, implicit = EXCLUDED.implicit,
			starts_at = EXCLUDED.starts_at, starts_at_ns = EXCLUDED.starts_at_ns,
			ends_at = EXCLUDED.ends_at, ends_at_ns = EXCLUDED.ends_at_ns, cells = EXCLUDED.cells,
			updated_at = EXCLUDED.updated_at, updated_at_ns = EXCLUDED.updated_at_ns`,
		string(sub.ID), sub.Manager, sub.USSBaseURL, sub.NotificationIndex,
		sub.NotifyForOperationalIntents, sub.NotifyForConstraints, sub.Implicit,
		sub.StartTime, subMicro(sub.StartTime), sub.EndTime, subMicro(sub.EndTime),
		storedCells(sub.Cells), sub.UpdatedAt, subMicro(sub.UpdatedAt))
	if err != nil {
		return r.fail(err, "writing a subscription")
	}
	return nil
}

// DeleteSubscription also deletes the dependent OIRs (ON DELETE CASCADE on
// scd_operations.subscription_id), exactly like memstore.
func (r *repo) DeleteSubscription(ctx context.Context, id models.ID) error {
	if err := r.checkWrite("DeleteSubscription"); err != nil {
		return err
	}
	n := int64(0)
	if isUUID(id) {
		tag, err := r.tx.Exec(ctx, `DELETE FROM scd_subscriptions WHERE id = $1`, string(id))
		if err != nil {
			return r.fail(err, "deleting a subscription")
		}
		n = tag.RowsAffected()
	}
	if n == 0 {
		return models.Errorf(models.CodeNotFound, "subscription %s not found", id)
	}
	return nil
}

// incrementSQL is the single statement of spec §11 per notification kind.
// The subquery locks the matching rows in ID order, so that two writers
// incrementing overlapping sets queue behind each other instead of
// deadlocking; updated_at is untouched, so versions stay (spec §3.6).
// NO KEY UPDATE, not UPDATE: an OIR insert holds KEY SHARE on its
// subscription row through the foreign key, and FOR UPDATE conflicts with
// that, so two writers in one cell would deadlock (PostgreSQL breaks each
// deadlock only after deadlock_timeout, 1 s).
func incrementSQL(flag string) string {
	return `UPDATE scd_subscriptions SET notification_index = notification_index + 1
		WHERE id IN (SELECT id FROM scd_subscriptions WHERE ` + matchWhere + ` AND ` + flag + `
			ORDER BY id FOR NO KEY UPDATE)
		RETURNING ` + subColumns
}

var (
	incrementForOIRs = incrementSQL("notify_for_operations")
	incrementForCRs  = incrementSQL("notify_for_constraints")
)

func (r *repo) IncrementNotificationIndices(ctx context.Context, kind models.SubscriberKind, v *models.Volume4D) ([]*models.Subscription, error) {
	if err := r.checkWrite("IncrementNotificationIndices"); err != nil {
		return nil, err
	}
	var sql string
	switch kind {
	case models.NotifyOperationalIntents:
		sql = incrementForOIRs
	case models.NotifyConstraints:
		sql = incrementForCRs
	default:
		return nil, models.Errorf(models.CodeInternal, "sqlstore: unknown subscriber kind %d", kind)
	}
	cells, err := queryCellArg(v)
	if err != nil {
		return nil, err
	}
	// An index at MaxInt32 makes the int4 addition fail, and with it the
	// whole operation, as memstore refuses the overflow.
	rows, err := r.tx.Query(ctx, sql, matchArgs(cells, v)...)
	if err != nil {
		return nil, r.fail(err, "incrementing notification indices")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*models.Subscription, error) { return scanSub(row) })
	if err != nil {
		return nil, r.fail(err, "incrementing notification indices")
	}
	// RETURNING has no order.
	slices.SortFunc(out, func(a, b *models.Subscription) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ---- Constraints ----

const crColumns = `id::text, owner, version, url, altitude_lower, altitude_upper,
	starts_at, starts_at_ns, ends_at, ends_at_ns, cells, updated_at, updated_at_ns`

func scanCR(row scanner) (*models.Constraint, error) {
	var (
		c                 models.Constraint
		id                string
		cells             []int64
		start, end, upd   time.Time
		startNs, endNs, u int16
	)
	if err := row.Scan(&id, &c.Manager, &c.Version, &c.USSBaseURL, &c.AltitudeLower, &c.AltitudeUpper,
		&start, &startNs, &end, &endNs, &cells, &upd, &u); err != nil {
		return nil, err
	}
	c.ID = models.ID(id)
	c.StartTime, c.EndTime, c.UpdatedAt = instant(start, startNs), instant(end, endNs), instant(upd, u)
	c.Cells = cellSet(cells)
	return &c, nil
}

func (r *repo) GetConstraint(ctx context.Context, id models.ID) (*models.Constraint, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if !isUUID(id) {
		return nil, nil
	}
	c, err := scanCR(r.tx.QueryRow(ctx, `SELECT `+crColumns+` FROM scd_constraints WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(err, "reading a constraint")
	}
	return c, nil
}

func (r *repo) SearchConstraints(ctx context.Context, v *models.Volume4D) ([]*models.Constraint, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	cells, err := queryCellArg(v)
	if err != nil {
		return nil, err
	}
	// Spec §4: constraints match on cells and time only.
	rows, err := r.tx.Query(ctx, `SELECT `+crColumns+` FROM scd_constraints WHERE `+matchWhere+`
		ORDER BY id LIMIT 10000`, matchArgs(cells, v)...)
	if err != nil {
		return nil, r.fail(err, "searching constraints")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*models.Constraint, error) { return scanCR(row) })
	if err != nil {
		return nil, r.fail(err, "searching constraints")
	}
	return out, nil
}

func (r *repo) UpsertConstraint(ctx context.Context, cr *models.Constraint) error {
	if err := r.checkWrite("UpsertConstraint"); err != nil {
		return err
	}
	if cr == nil || cr.ID == "" {
		return models.Errorf(models.CodeInternal, "sqlstore: upsert of a constraint without ID")
	}
	if !isUUID(cr.ID) {
		return models.Errorf(models.CodeInternal, "sqlstore: constraint ID %q is not a UUID", cr.ID)
	}
	_, err := r.tx.Exec(ctx, `INSERT INTO scd_constraints (id, owner, version, url, altitude_lower, altitude_upper,
			starts_at, starts_at_ns, ends_at, ends_at_ns, cells, updated_at, updated_at_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, version = EXCLUDED.version, url = EXCLUDED.url,
			altitude_lower = EXCLUDED.altitude_lower, altitude_upper = EXCLUDED.altitude_upper,
			starts_at = EXCLUDED.starts_at, starts_at_ns = EXCLUDED.starts_at_ns,
			ends_at = EXCLUDED.ends_at, ends_at_ns = EXCLUDED.ends_at_ns, cells = EXCLUDED.cells,
			updated_at = EXCLUDED.updated_at, updated_at_ns = EXCLUDED.updated_at_ns`,
		string(cr.ID), cr.Manager, cr.Version, cr.USSBaseURL, cr.AltitudeLower, cr.AltitudeUpper,
		cr.StartTime, subMicro(cr.StartTime), cr.EndTime, subMicro(cr.EndTime),
		storedCells(cr.Cells), cr.UpdatedAt, subMicro(cr.UpdatedAt))
	if err != nil {
		return r.fail(err, "writing a constraint")
	}
	return nil
}

func (r *repo) DeleteConstraint(ctx context.Context, id models.ID) error {
	if err := r.checkWrite("DeleteConstraint"); err != nil {
		return err
	}
	n := int64(0)
	if isUUID(id) {
		tag, err := r.tx.Exec(ctx, `DELETE FROM scd_constraints WHERE id = $1`, string(id))
		if err != nil {
			return r.fail(err, "deleting a constraint")
		}
		n = tag.RowsAffected()
	}
	if n == 0 {
		return models.Errorf(models.CodeNotFound, "constraint %s not found", id)
	}
	return nil
}

// ---- USS availability ----

func (r *repo) GetUssAvailability(ctx context.Context, uss string) (*models.UssAvailability, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	var (
		av  string
		upd time.Time
		ns  int16
	)
	err := r.tx.QueryRow(ctx, `SELECT availability, updated_at, updated_at_ns FROM scd_uss_availability WHERE id = $1`,
		uss).Scan(&av, &upd, &ns)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(err, "reading a USS availability")
	}
	return &models.UssAvailability{USS: uss, Availability: models.Availability(av), UpdatedAt: instant(upd, ns)}, nil
}

func (r *repo) UpsertUssAvailability(ctx context.Context, a *models.UssAvailability) error {
	if err := r.checkWrite("UpsertUssAvailability"); err != nil {
		return err
	}
	if a == nil || a.USS == "" {
		return models.Errorf(models.CodeInternal, "sqlstore: upsert of an availability record without USS")
	}
	_, err := r.tx.Exec(ctx, `INSERT INTO scd_uss_availability (id, availability, updated_at, updated_at_ns)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET availability = EXCLUDED.availability,
			updated_at = EXCLUDED.updated_at, updated_at_ns = EXCLUDED.updated_at_ns`,
		a.USS, string(a.Availability), a.UpdatedAt, subMicro(a.UpdatedAt))
	if err != nil {
		return r.fail(err, "writing a USS availability")
	}
	return nil
}

// ---- Pool (repos.Pool) ----

const instanceColumns = `id, public_endpoint, hb_timestamp, hb_timestamp_ns, hb_reporter, hb_source, hb_index,
	hb_next_before, hb_next_before_ns`

func scanInstance(row pgx.Row) (*models.DSSInstance, error) {
	var (
		inst         models.DSSInstance
		ts           time.Time
		tsNs, nextNs int16
		next         *time.Time
	)
	hb := &inst.Heartbeat
	if err := row.Scan(&inst.ID, &inst.PublicEndpoint, &ts, &tsNs, &hb.Reporter, &hb.Source, &hb.Index,
		&next, &nextNs); err != nil {
		return nil, err
	}
	hb.Timestamp = instant(ts, tsNs)
	if next != nil {
		hb.NextExpectedBefore = instant(*next, nextNs)
	}
	return &inst, nil
}

func (r *repo) GetDSSInstance(ctx context.Context, id string) (*models.DSSInstance, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	inst, err := scanInstance(r.tx.QueryRow(ctx, `SELECT `+instanceColumns+` FROM aux_dss_instances WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(err, "reading a DSS instance")
	}
	return inst, nil
}

func (r *repo) ListDSSInstances(ctx context.Context) ([]*models.DSSInstance, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	// COLLATE "C": byte order, as memstore sorts.
	rows, err := r.tx.Query(ctx, `SELECT `+instanceColumns+` FROM aux_dss_instances ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, r.fail(err, "listing DSS instances")
	}
	defer rows.Close()
	out := []*models.DSSInstance{}
	for rows.Next() {
		inst, err := scanInstance(rows)
		if err != nil {
			return nil, r.fail(err, "listing DSS instances")
		}
		out = append(out, inst)
	}
	if err := rows.Err(); err != nil {
		return nil, r.fail(err, "listing DSS instances")
	}
	return out, nil
}

func (r *repo) UpsertDSSInstance(ctx context.Context, inst *models.DSSInstance) error {
	if err := r.checkWrite("UpsertDSSInstance"); err != nil {
		return err
	}
	if inst == nil || inst.ID == "" {
		return models.Errorf(models.CodeInternal, "sqlstore: upsert of a DSS instance without ID")
	}
	hb := &inst.Heartbeat
	var next *time.Time
	if !hb.NextExpectedBefore.IsZero() {
		next = &hb.NextExpectedBefore
	}
	_, err := r.tx.Exec(ctx, `INSERT INTO aux_dss_instances (`+instanceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET public_endpoint = EXCLUDED.public_endpoint,
			hb_timestamp = EXCLUDED.hb_timestamp, hb_timestamp_ns = EXCLUDED.hb_timestamp_ns,
			hb_reporter = EXCLUDED.hb_reporter, hb_source = EXCLUDED.hb_source, hb_index = EXCLUDED.hb_index,
			hb_next_before = EXCLUDED.hb_next_before, hb_next_before_ns = EXCLUDED.hb_next_before_ns`,
		inst.ID, inst.PublicEndpoint, hb.Timestamp, subMicro(hb.Timestamp), hb.Reporter, hb.Source, hb.Index,
		next, subMicro(hb.NextExpectedBefore))
	if err != nil {
		return r.fail(err, "writing a DSS instance")
	}
	return nil
}
