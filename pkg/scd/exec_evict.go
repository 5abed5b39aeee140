package scd

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// MaxEvictBatch bounds the entities one EvictExpired selects, so that one
// batch holds the Raft apply loop (or a SQL transaction) for milliseconds,
// not seconds.
const MaxEvictBatch = 10000

// EvictExpired removes, in one transaction, up to Limit entities that ended
// before Before: OIRs first, then constraints, then subscriptions that no OIR
// references; and with the OIRs, each implicit subscription they leave
// without a dependent, whatever its end (spec §8: an implicit subscription
// lives as long as an OIR uses it). Like the reference's cleanup (spec §12)
// it deletes without notifying anyone: the entities ended long ago, so no
// subscriber's view of the airspace changes, and notification indices stay
// as they were. An OIR's OVN history goes with it.
//
// Before is decided by the proposer (now minus the retention): Execute reads
// no clock, so every replica removes the same entities. The selection is by
// content (the lowest IDs among the expired), so a batch applied twice, or
// proposed again by a new leader, removes only what is still there.
type EvictExpired struct {
	Before time.Time
	// Limit is 1..MaxEvictBatch.
	Limit uint32
}

// PreviewEviction counts what EvictExpired batches with the same Before
// would remove, run until one evicts less than its limit, if nothing else
// were written meanwhile (dssctl evict --dry-run). It is a read.
type PreviewEviction struct {
	Before time.Time
}

// EvictionCounts counts entities by kind. Subscriptions include the
// implicit ones released with their last OIR (ImplicitReleased of them).
type EvictionCounts struct {
	OperationalIntents int
	Constraints        int
	Subscriptions      int
	ImplicitReleased   int
}

// Total is the number of entities counted.
func (c EvictionCounts) Total() int { return c.OperationalIntents + c.Constraints + c.Subscriptions }

// Add adds o to c.
func (c *EvictionCounts) Add(o EvictionCounts) {
	c.OperationalIntents += o.OperationalIntents
	c.Constraints += o.Constraints
	c.Subscriptions += o.Subscriptions
	c.ImplicitReleased += o.ImplicitReleased
}

// EvictionResult answers EvictExpired. Full says the batch selected Limit
// entities (released implicit subscriptions not counted), so more may be
// left: the caller proposes another batch.
type EvictionResult struct {
	Evicted EvictionCounts
	Full    bool
}

func (*EvictExpired) Type() store.OpType    { return OpEvictExpired }
func (*PreviewEviction) Type() store.OpType { return OpPreviewEviction }
func (*EvictExpired) ReadOnly() bool        { return false }
func (*PreviewEviction) ReadOnly() bool     { return true }

func checkCutoff(before time.Time) error {
	if before.IsZero() {
		return models.Errorf(models.CodeBadRequest, "eviction without a cut-off time")
	}
	return nil
}

// Execute runs one eviction batch.
func (op *EvictExpired) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if err := checkCutoff(op.Before); err != nil {
		return nil, err
	}
	if op.Limit < 1 || op.Limit > MaxEvictBatch {
		return nil, models.Errorf(models.CodeBadRequest, "eviction batch limit %d outside 1..%d", op.Limit, MaxEvictBatch)
	}
	var res EvictionResult
	remaining := int(op.Limit)

	oirs, err := repo.ListExpired(ctx, &repos.ExpiredQuery{Kind: repos.ExpiredOperationalIntents, Before: op.Before, Limit: remaining})
	if err != nil {
		return nil, fmt.Errorf("listing expired operational intents: %w", err)
	}
	var backing []models.ID
	for _, id := range oirs {
		oir, err := repo.GetOperationalIntent(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading operational intent %s: %w", id, err)
		}
		if oir == nil {
			return nil, internalf(nil, "expired operational intent %s vanished", id)
		}
		if oir.SubscriptionID != "" {
			backing = append(backing, oir.SubscriptionID)
		}
		if err := repo.DeleteOperationalIntent(ctx, id); err != nil {
			return nil, deleteErr(err, "expired operational intent", id)
		}
	}
	res.Evicted.OperationalIntents = len(oirs)
	remaining -= len(oirs)

	// Only after every OIR of the batch is gone: two of them may share one
	// implicit subscription.
	slices.Sort(backing)
	for _, id := range slices.Compact(backing) {
		sub, err := repo.GetSubscription(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading subscription %s: %w", id, err)
		}
		if sub == nil || !sub.Implicit {
			continue
		}
		deps, err := repo.GetDependentOperationalIntents(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading the dependents of subscription %s: %w", id, err)
		}
		if len(deps) > 0 {
			continue
		}
		if err := repo.DeleteSubscription(ctx, id); err != nil {
			return nil, deleteErr(err, "released implicit subscription", id)
		}
		res.Evicted.Subscriptions++
		res.Evicted.ImplicitReleased++
	}

	if remaining > 0 {
		crs, err := repo.ListExpired(ctx, &repos.ExpiredQuery{Kind: repos.ExpiredConstraints, Before: op.Before, Limit: remaining})
		if err != nil {
			return nil, fmt.Errorf("listing expired constraints: %w", err)
		}
		for _, id := range crs {
			if err := repo.DeleteConstraint(ctx, id); err != nil {
				return nil, deleteErr(err, "expired constraint", id)
			}
		}
		res.Evicted.Constraints = len(crs)
		remaining -= len(crs)
	}

	if remaining > 0 {
		// Unreferenced: deleting a subscription deletes its OIRs (spec §11),
		// so one that an OIR still uses waits for that OIR to expire.
		subs, err := repo.ListExpired(ctx, &repos.ExpiredQuery{
			Kind: repos.ExpiredSubscriptions, Before: op.Before, Unreferenced: true, Limit: remaining})
		if err != nil {
			return nil, fmt.Errorf("listing expired subscriptions: %w", err)
		}
		for _, id := range subs {
			if err := repo.DeleteSubscription(ctx, id); err != nil {
				return nil, deleteErr(err, "expired subscription", id)
			}
		}
		res.Evicted.Subscriptions += len(subs)
		remaining -= len(subs)
	}
	res.Full = remaining == 0
	return res, nil
}

// previewPage is how many IDs PreviewEviction reads per repo call: few
// calls, since each may scan a whole table (memstore).
const previewPage = MaxEvictBatch

// Execute counts without writing.
func (op *PreviewEviction) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if err := checkCutoff(op.Before); err != nil {
		return nil, err
	}
	var c EvictionCounts
	expiredOIRs := map[models.ID]bool{}
	var backing []models.ID
	err := pageExpired(ctx, repo, repos.ExpiredOperationalIntents, op.Before, func(id models.ID) error {
		oir, err := repo.GetOperationalIntent(ctx, id)
		if err != nil {
			return fmt.Errorf("reading operational intent %s: %w", id, err)
		}
		if oir == nil {
			return internalf(nil, "expired operational intent %s vanished", id)
		}
		expiredOIRs[id] = true
		if oir.SubscriptionID != "" {
			backing = append(backing, oir.SubscriptionID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.OperationalIntents = len(expiredOIRs)
	if err := pageExpired(ctx, repo, repos.ExpiredConstraints, op.Before, func(models.ID) error {
		c.Constraints++
		return nil
	}); err != nil {
		return nil, err
	}
	// A subscription goes once every OIR using it has gone: an expired one
	// of any kind, or an implicit one that an expired OIR used.
	allExpired := func(id models.ID) (bool, error) {
		deps, err := repo.GetDependentOperationalIntents(ctx, id)
		if err != nil {
			return false, fmt.Errorf("reading the dependents of subscription %s: %w", id, err)
		}
		for _, d := range deps {
			if !expiredOIRs[d] {
				return false, nil
			}
		}
		return true, nil
	}
	counted := map[models.ID]bool{}
	slices.Sort(backing)
	for _, id := range slices.Compact(backing) {
		sub, err := repo.GetSubscription(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading subscription %s: %w", id, err)
		}
		if sub == nil || !sub.Implicit {
			continue
		}
		ok, err := allExpired(id)
		if err != nil {
			return nil, err
		}
		if ok {
			counted[id] = true
			c.Subscriptions++
			c.ImplicitReleased++
		}
	}
	if err := pageExpired(ctx, repo, repos.ExpiredSubscriptions, op.Before, func(id models.ID) error {
		if counted[id] {
			return nil
		}
		ok, err := allExpired(id)
		if ok {
			c.Subscriptions++
		}
		return err
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// pageExpired calls visit for every expired entity of kind, in ID order.
func pageExpired(ctx context.Context, repo repos.Repo, kind repos.ExpiredKind, before time.Time, visit func(models.ID) error) error {
	var after models.ID
	for {
		ids, err := repo.ListExpired(ctx, &repos.ExpiredQuery{Kind: kind, Before: before, After: after, Limit: previewPage})
		if err != nil {
			return fmt.Errorf("listing expired entities: %w", err)
		}
		for _, id := range ids {
			if err := visit(id); err != nil {
				return err
			}
		}
		if len(ids) < previewPage {
			return nil
		}
		after = ids[len(ids)-1]
	}
}
