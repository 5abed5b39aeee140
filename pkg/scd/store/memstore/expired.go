package memstore

import (
	"container/heap"
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
	sel := &lowestIDs{limit: q.Limit}
	switch q.Kind {
	case repos.ExpiredOperationalIntents:
		expiredIn(&r.s.oirs, before, q.After, func(o *models.OperationalIntent) time.Time { return o.EndTime }, nil, sel)
	case repos.ExpiredConstraints:
		expiredIn(&r.s.crs, before, q.After, func(c *models.Constraint) time.Time { return c.EndTime }, nil, sel)
	case repos.ExpiredSubscriptions:
		var keep func(*models.Subscription) bool
		if q.Unreferenced {
			keep = func(s *models.Subscription) bool { return len(r.s.dependents[s.ID]) == 0 }
		}
		expiredIn(&r.s.subs, before, q.After, func(s *models.Subscription) time.Time { return s.EndTime }, keep, sel)
	}
	ids := []models.ID(sel.ids)
	slices.Sort(ids)
	if ids == nil {
		ids = []models.ID{}
	}
	return ids, nil
}

// lowestIDs keeps the limit lowest IDs offered, as a max-heap: a batch
// among many expired entities costs O(n log limit), not a sort of them all.
type lowestIDs struct {
	limit int
	ids   idMaxHeap
}

func (l *lowestIDs) offer(id models.ID) {
	switch {
	case len(l.ids) < l.limit:
		heap.Push(&l.ids, id)
	case id < l.ids[0]:
		l.ids[0] = id
		heap.Fix(&l.ids, 0)
	}
}

type idMaxHeap []models.ID

func (h idMaxHeap) Len() int           { return len(h) }
func (h idMaxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h idMaxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idMaxHeap) Push(x any)        { *h = append(*h, x.(models.ID)) }
func (h *idMaxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expiredIn offers to sel the IDs above after of the entities of t ending
// before before and accepted by keep (nil keeps all).
func expiredIn[T any](t *table[T], before stamp, after models.ID, end func(*T) time.Time, keep func(*T) bool, sel *lowestIDs) {
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
		sel.offer(id)
	}
}
