package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// ListExpired scans the table of q.Kind. Eviction runs it once per batch
// (every few minutes, a few batches), so a scan of the slot array, which
// holds no index to maintain on every write, is the cheaper trade.
func (r *repo) ListExpired(_ context.Context, q *repos.ExpiredQuery) ([]models.ID, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, err
	}
	before := stampOf(q.Before)
	var ids []models.ID
	switch q.Kind {
	case repos.ExpiredOperationalIntents:
		ids = expiredIn(&r.s.oirs, before, q.After, func(o *models.OperationalIntent) time.Time { return o.EndTime }, nil)
	case repos.ExpiredConstraints:
		ids = expiredIn(&r.s.crs, before, q.After, func(c *models.Constraint) time.Time { return c.EndTime }, nil)
	case repos.ExpiredSubscriptions:
		var keep func(*models.Subscription) bool
		if q.Unreferenced {
			keep = func(s *models.Subscription) bool { return len(r.s.dependents[s.ID]) == 0 }
		}
		ids = expiredIn(&r.s.subs, before, q.After, func(s *models.Subscription) time.Time { return s.EndTime }, keep)
	}
	slices.Sort(ids)
	if len(ids) > q.Limit {
		ids = ids[:q.Limit]
	}
	if ids == nil {
		ids = []models.ID{}
	}
	return slices.Clip(ids), nil
}

// expiredIn returns, unsorted, the IDs above after of the entities of t
// ending before before and accepted by keep (nil keeps all).
func expiredIn[T any](t *table[T], before stamp, after models.ID, end func(*T) time.Time, keep func(*T) bool) []models.ID {
	var ids []models.ID
	for _, e := range t.slots {
		if e == nil || !before.after(stampOf(end(e))) {
			continue
		}
		id := t.idOf(e)
		if after != "" && id <= after {
			continue
		}
		if keep != nil && !keep(e) {
			continue
		}
		ids = append(ids, id)
	}
	return ids
}
