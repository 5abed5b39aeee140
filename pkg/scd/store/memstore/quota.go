package memstore

import (
	"context"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// FirstFullCell implements repos.Quotas. It walks the cell index lists of
// q.Cells in order and stops at the first cell holding q.Limit matching
// entities, so a check costs at most the entries of the cells it visits;
// the time bound is read from the index entry, and only entities still in
// force are dereferenced to compare their manager.
func (r *repo) FirstFullCell(_ context.Context, q *repos.QuotaQuery) (models.CellID, bool, error) {
	if err := r.checkRead(); err != nil {
		return 0, false, err
	}
	if err := q.Check(); err != nil {
		return 0, false, err
	}
	notBefore := stampOf(q.NotBefore)
	for _, c := range sortedCells(q.Cells) {
		n := 0
		switch q.Kind {
		case repos.QuotaSubscriptions:
			n = countInCell(&r.s.subs, c, notBefore, q.Limit, func(s *models.Subscription) bool {
				return s.Manager == q.Manager && !s.Implicit && s.ID != q.ExceptSubscription
			})
		case repos.QuotaEntities:
			n = countInCell(&r.s.oirs, c, notBefore, q.Limit, func(o *models.OperationalIntent) bool {
				return o.Manager == q.Manager && o.ID != q.ExceptOperationalIntent
			})
			if n < q.Limit {
				n += countInCell(&r.s.crs, c, notBefore, q.Limit-n, func(k *models.Constraint) bool {
					return k.Manager == q.Manager && k.ID != q.ExceptConstraint
				})
			}
		}
		if n >= q.Limit {
			return c, true, nil
		}
	}
	return 0, false, nil
}

// countInCell counts the entities indexed in cell c that end at or after
// notBefore and that match accepts, stopping at limit.
func countInCell[T any](t *table[T], c models.CellID, notBefore stamp, limit int, accepts func(*T) bool) int {
	n := 0
	list := t.cells[c]
	for k := range list {
		if notBefore.after(list[k].b.end()) {
			continue
		}
		if e := t.slots[list[k].slot]; e != nil && accepts(e) {
			if n++; n >= limit {
				break
			}
		}
	}
	return n
}
