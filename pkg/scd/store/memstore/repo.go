package memstore

import (
	"context"
	"math"
	"slices"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// repo is the repos.Repo an operation runs against inside Apply. Every
// mutating method records an undo entry before changing the state.
type repo struct {
	s        *State
	readOnly bool
	closed   bool
}

var _ repos.Repo = (*repo)(nil)

func (r *repo) checkRead() error {
	if r.closed {
		return models.Errorf(models.CodeInternal, "memstore: repository used after its operation returned")
	}
	return nil
}

func (r *repo) checkWrite(what string) error {
	if err := r.checkRead(); err != nil {
		return err
	}
	if r.readOnly {
		return models.Errorf(models.CodeInternal, "memstore: %s in a read-only operation", what)
	}
	return nil
}

// queryCells validates a search volume and returns its cells as a sorted,
// duplicate-free set without modifying the caller's slice.
func queryCells(v *models.Volume4D) ([]models.CellID, error) {
	if v == nil || len(v.Cells) == 0 {
		// Spec §4 and repos: a search needs a footprint.
		return nil, models.Errorf(models.CodeBadRequest, "missing area: a search needs at least one S2 cell")
	}
	return sortedCells(v.Cells), nil
}

// sortedCells returns cells if it is already a sorted set (the normal case:
// pkg/geo produces sets), else a normalised copy. The caller's slice is never
// written: it may be shared with other entities of the same operation.
func sortedCells(cells []models.CellID) []models.CellID {
	if len(cells) == 0 {
		return nil // one representation of "no cells", as after a snapshot
	}
	for i := 1; i < len(cells); i++ {
		if cells[i] <= cells[i-1] {
			return models.NormalizeCells(slices.Clone(cells))
		}
	}
	return cells
}

// ---- Operational intents ----

func (r *repo) GetOperationalIntent(_ context.Context, id models.ID) (*models.OperationalIntent, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if o := r.s.oirs.get(id); o != nil {
		c := *o
		return &c, nil
	}
	return nil, nil
}

func (r *repo) SearchOperationalIntents(_ context.Context, v *models.Volume4D) ([]*models.OperationalIntent, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	q, err := queryCells(v)
	if err != nil {
		return nil, err
	}
	f := newFilter(v, true)
	found := r.s.oirs.search(q, &f, nil)
	return copyOut(found, repos.MaxSearchResults), nil
}

// VisitOperationalIntents calls yield, in ID order, for each OIR that
// SearchOperationalIntents would return, with its OVN from the state's
// cache, until yield returns false. yield gets the stored value and must
// neither modify nor keep it. It is not part of repos.Repo: the key check of
// pkg/scd uses it where a repo offers it, saving a copy and a SHA-256 per
// OIR it meets.
func (r *repo) VisitOperationalIntents(_ context.Context, v *models.Volume4D, yield func(o *models.OperationalIntent, ovn models.OVN) bool) error {
	if err := r.checkRead(); err != nil {
		return err
	}
	q, err := queryCells(v)
	if err != nil {
		return err
	}
	f := newFilter(v, true)
	found := r.s.oirs.searchKeyed(q, &f, nil)
	if len(found) > repos.MaxSearchResults {
		found = found[:repos.MaxSearchResults]
	}
	for _, k := range found {
		if !yield(k.e, r.s.oirOVNs[k.slot]) {
			break
		}
	}
	return nil
}

func (r *repo) UpsertOperationalIntent(_ context.Context, oir *models.OperationalIntent) error {
	if err := r.checkWrite("UpsertOperationalIntent"); err != nil {
		return err
	}
	if oir == nil || oir.ID == "" {
		return models.Errorf(models.CodeInternal, "memstore: upsert of an OIR without ID")
	}
	c := *oir
	if c.SubscriptionID != "" {
		// Like the SQL schema's foreign key (spec §11), an OIR may only
		// reference an existing subscription; sharing its ID string also
		// saves memory.
		sub := r.s.subs.get(c.SubscriptionID)
		if sub == nil {
			return models.Errorf(models.CodeInternal, "memstore: OIR %s references unknown subscription %s", c.ID, c.SubscriptionID)
		}
		c.SubscriptionID = sub.ID
	}
	c.StartTime, c.EndTime, c.UpdatedAt = c.StartTime.UTC(), c.EndTime.UTC(), c.UpdatedAt.UTC()
	c.Cells = sortedCells(c.Cells)
	if len(c.PastOVNs) == 0 {
		c.PastOVNs = nil
	}
	r.s.undo = append(r.s.undo, undoEntry{kind: kindOIR, id: string(c.ID), oir: r.s.oirs.get(c.ID)})
	r.s.putOIR(&c)
	return nil
}

func (r *repo) DeleteOperationalIntent(_ context.Context, id models.ID) error {
	if err := r.checkWrite("DeleteOperationalIntent"); err != nil {
		return err
	}
	return r.deleteOIR(id)
}

func (r *repo) deleteOIR(id models.ID) error {
	old := r.s.oirs.get(id)
	if old == nil {
		return models.Errorf(models.CodeNotFound, "operational intent %s not found", id)
	}
	r.s.undo = append(r.s.undo, undoEntry{kind: kindOIR, id: string(id), oir: old})
	r.s.removeOIR(id)
	return nil
}

func (r *repo) GetDependentOperationalIntents(_ context.Context, subID models.ID) ([]models.ID, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	return r.s.dependentIDs(subID), nil
}

// ---- Subscriptions ----

func (r *repo) GetSubscription(_ context.Context, id models.ID) (*models.Subscription, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if s := r.s.subs.get(id); s != nil {
		c := *s
		return &c, nil
	}
	return nil, nil
}

// matchSubs returns the subscriptions matching v on cells and time (spec
// §4: altitude ignored), sorted by ID, each with its slot
// (IncrementNotificationIndices writes there).
func (r *repo) matchSubs(v *models.Volume4D, extra func(*models.Subscription) bool) ([]byIDKey[models.Subscription], error) {
	q, err := queryCells(v)
	if err != nil {
		return nil, err
	}
	f := newFilter(v, false)
	return r.s.subs.searchKeyed(q, &f, extra), nil
}

func (r *repo) SearchSubscriptions(_ context.Context, v *models.Volume4D) ([]*models.Subscription, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	found, err := r.matchSubs(v, nil)
	if err != nil {
		return nil, err
	}
	return copyOut(entitiesOf(found), repos.MaxSearchResults), nil
}

func (r *repo) UpsertSubscription(_ context.Context, sub *models.Subscription) error {
	if err := r.checkWrite("UpsertSubscription"); err != nil {
		return err
	}
	if sub == nil || sub.ID == "" {
		return models.Errorf(models.CodeInternal, "memstore: upsert of a subscription without ID")
	}
	c := *sub
	c.StartTime, c.EndTime, c.UpdatedAt = c.StartTime.UTC(), c.EndTime.UTC(), c.UpdatedAt.UTC()
	c.Cells = sortedCells(c.Cells)
	r.s.undo = append(r.s.undo, undoEntry{kind: kindSub, id: string(c.ID), sub: r.s.subs.get(c.ID)})
	r.s.putSub(&c)
	return nil
}

// DeleteSubscription also deletes the OIRs that depend on the subscription,
// like the SQL schema's ON DELETE CASCADE (spec §11), so both backends agree.
// The SCD operations never rely on it: they refuse to delete a subscription
// with dependents (spec §15) and release implicit ones only after the OIR
// stopped referencing them.
func (r *repo) DeleteSubscription(_ context.Context, id models.ID) error {
	if err := r.checkWrite("DeleteSubscription"); err != nil {
		return err
	}
	old := r.s.subs.get(id)
	if old == nil {
		return models.Errorf(models.CodeNotFound, "subscription %s not found", id)
	}
	for _, dep := range r.s.dependentIDs(id) {
		if err := r.deleteOIR(dep); err != nil {
			return err
		}
	}
	r.s.undo = append(r.s.undo, undoEntry{kind: kindSub, id: string(id), sub: old})
	r.s.removeSub(id)
	return nil
}

func (r *repo) IncrementNotificationIndices(_ context.Context, kind models.SubscriberKind, v *models.Volume4D) ([]*models.Subscription, error) {
	if err := r.checkWrite("IncrementNotificationIndices"); err != nil {
		return nil, err
	}
	var flag func(*models.Subscription) bool
	switch kind {
	case models.NotifyOperationalIntents:
		flag = func(s *models.Subscription) bool { return s.NotifyForOperationalIntents }
	case models.NotifyConstraints:
		flag = func(s *models.Subscription) bool { return s.NotifyForConstraints }
	default:
		return nil, models.Errorf(models.CodeInternal, "memstore: unknown subscriber kind %d", kind)
	}
	found, err := r.matchSubs(v, flag)
	if err != nil {
		return nil, err
	}
	// Check before writing anything, so an overflow (the SQL int4 column
	// would reject it too) fails the whole operation cleanly.
	for _, k := range found {
		if k.e.NotificationIndex == math.MaxInt32 {
			return nil, models.Errorf(models.CodeInternal, "memstore: notification index of subscription %s would overflow", k.id)
		}
	}
	// Every matching subscription is incremented exactly once (spec §9),
	// uncapped: a lost increment would hide a change from its subscriber.
	// Stored entities are immutable, so each increment installs a new
	// copy; every write of the DSS pays this for each subscription over its
	// area, so the copies are allocated bumpChunk at a time rather than one
	// by one (a chunk stays alive while any of its copies is stored: at
	// most bumpChunk-1 stale copies per live one).
	out := make([]models.Subscription, len(found))
	res := make([]*models.Subscription, len(found))
	var chunk []models.Subscription
	for i, k := range found {
		if len(chunk) == 0 {
			chunk = make([]models.Subscription, min(bumpChunk, len(found)-i))
		}
		next := &chunk[0]
		chunk = chunk[1:]
		*next = *k.e
		next.NotificationIndex++ // UpdatedAt untouched: the version stays (spec §3.6)
		r.s.undo = append(r.s.undo, undoEntry{kind: kindSub, id: string(k.id), sub: k.e})
		r.s.bumpSub(k.slot, next)
		out[i] = *next
		res[i] = &out[i]
	}
	return res, nil
}

// bumpChunk is how many incremented subscriptions share one allocation.
const bumpChunk = 16

// ---- Constraints ----

func (r *repo) GetConstraint(_ context.Context, id models.ID) (*models.Constraint, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if c := r.s.crs.get(id); c != nil {
		cp := *c
		ownAltitudes(&cp)
		return &cp, nil
	}
	return nil, nil
}

func (r *repo) SearchConstraints(_ context.Context, v *models.Volume4D) ([]*models.Constraint, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	q, err := queryCells(v)
	if err != nil {
		return nil, err
	}
	// Spec §4: constraints match on cells and time only.
	f := newFilter(v, false)
	out := copyOut(r.s.crs.search(q, &f, nil), repos.MaxSearchResults)
	for _, c := range out {
		ownAltitudes(c)
	}
	return out, nil
}

func (r *repo) UpsertConstraint(_ context.Context, cr *models.Constraint) error {
	if err := r.checkWrite("UpsertConstraint"); err != nil {
		return err
	}
	if cr == nil || cr.ID == "" {
		return models.Errorf(models.CodeInternal, "memstore: upsert of a constraint without ID")
	}
	c := *cr
	ownAltitudes(&c)
	c.StartTime, c.EndTime, c.UpdatedAt = c.StartTime.UTC(), c.EndTime.UTC(), c.UpdatedAt.UTC()
	c.Cells = sortedCells(c.Cells)
	r.s.undo = append(r.s.undo, undoEntry{kind: kindCR, id: string(c.ID), cr: r.s.crs.get(c.ID)})
	r.s.putCR(&c)
	return nil
}

func (r *repo) DeleteConstraint(_ context.Context, id models.ID) error {
	if err := r.checkWrite("DeleteConstraint"); err != nil {
		return err
	}
	old := r.s.crs.get(id)
	if old == nil {
		return models.Errorf(models.CodeNotFound, "constraint %s not found", id)
	}
	r.s.undo = append(r.s.undo, undoEntry{kind: kindCR, id: string(id), cr: old})
	r.s.removeCR(id)
	return nil
}

// ---- USS availability ----

func (r *repo) GetUssAvailability(_ context.Context, uss string) (*models.UssAvailability, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if a := r.s.avail[uss]; a != nil {
		c := *a
		return &c, nil
	}
	return nil, nil
}

func (r *repo) UpsertUssAvailability(_ context.Context, a *models.UssAvailability) error {
	if err := r.checkWrite("UpsertUssAvailability"); err != nil {
		return err
	}
	if a == nil || a.USS == "" {
		return models.Errorf(models.CodeInternal, "memstore: upsert of an availability record without USS")
	}
	c := *a
	c.UpdatedAt = c.UpdatedAt.UTC()
	r.s.undo = append(r.s.undo, undoEntry{kind: kindAvail, id: c.USS, avail: r.s.avail[c.USS]})
	r.s.putAvail(&c)
	return nil
}

// copyOut returns caller-owned copies of the first limit entities, backed by
// one allocation.
func copyOut[T any](found []*T, limit int) []*T {
	if len(found) > limit {
		found = found[:limit]
	}
	vals := make([]T, len(found))
	out := make([]*T, len(found))
	for i, e := range found {
		vals[i] = *e
		out[i] = &vals[i]
	}
	return out
}

// ownAltitudes gives c its own copies of the optional altitudes, so that
// neither the caller that wrote a constraint nor one that read it can change
// the stored value through a shared pointer.
func ownAltitudes(c *models.Constraint) {
	if c.AltitudeLower != nil {
		v := *c.AltitudeLower
		c.AltitudeLower = &v
	}
	if c.AltitudeUpper != nil {
		v := *c.AltitudeUpper
		c.AltitudeUpper = &v
	}
}
