package scd

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// Execute lists the caller's unexpired subscriptions intersecting the area
// of interest (spec §6.3 Query). Only this query hides expired entities
// (§12): a subscription ending before Now is excluded.
func (op *QuerySubscriptions) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if len(op.Area.Cells) == 0 {
		return nil, models.Errorf(models.CodeBadRequest, "area_of_interest has no footprint")
	}
	area := op.Area
	subs, err := repo.SearchSubscriptions(ctx, &area)
	if err != nil {
		return nil, fmt.Errorf("searching subscriptions: %w", err)
	}
	out := []SubscriptionView{}
	for _, s := range subs {
		if s == nil || s.Manager != op.Caller || s.EndTime.Before(op.Now) {
			continue
		}
		deps, err := dependents(ctx, repo, s.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, SubscriptionView{Sub: s, Dependents: deps})
	}
	slices.SortFunc(out, func(x, y SubscriptionView) int { return cmp.Compare(x.Sub.ID, y.Sub.ID) })
	return out, nil
}

// Execute reads one of the caller's subscriptions (spec §6.3 Get): unlike
// OIRs and CRs, another USS's subscription is 403.
func (op *GetSubscription) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	sub, err := repo.GetSubscription(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading subscription %s: %w", op.ID, err)
	}
	if sub == nil {
		return nil, models.Errorf(models.CodeNotFound, "subscription %s not found", op.ID)
	}
	if sub.Manager != op.Caller {
		return nil, models.Errorf(models.CodePermissionDenied, "subscription %s is managed by another USS", op.ID)
	}
	deps, err := dependents(ctx, repo, op.ID)
	if err != nil {
		return nil, err
	}
	return SubscriptionView{Sub: sub, Dependents: deps}, nil
}

// Execute creates or updates an explicit subscription (spec §6.3 B–F).
func (op *PutSubscription) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if len(op.Extents.Cells) == 0 {
		return nil, models.Errorf(models.CodeBadRequest, "extents have no footprint")
	}
	if !op.NotifyForOperationalIntents && !op.NotifyForConstraints {
		return nil, models.Errorf(models.CodeBadRequest,
			"at least one of notify_for_operational_intents and notify_for_constraints must be true")
	}

	// B. Time normalisation comes before the existence and version checks,
	// so its 400s win over their 409s (§6.3 order).
	old, err := repo.GetSubscription(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading subscription %s: %w", op.ID, err)
	}
	start, end, err := op.timeRange(old)
	if err != nil {
		return nil, err
	}

	// C. Version before owner, unlike OIRs and CRs (§15).
	switch {
	case old == nil && op.Version != "":
		return nil, models.Errorf(models.CodeBadRequest,
			"subscription %s does not exist; create it without a version", op.ID)
	case old != nil && op.Version == "":
		return nil, models.Errorf(models.CodeAlreadyExists,
			"subscription %s already exists; update it with its current version", op.ID)
	case old != nil && op.Version != old.Version():
		return nil, models.Errorf(models.CodeVersionMismatch,
			"version %q is not the current version of subscription %s", op.Version, op.ID)
	case old != nil && old.Manager != op.Caller:
		return nil, models.Errorf(models.CodePermissionDenied, "subscription %s is managed by another USS", op.ID)
	}

	cells := normalizedCells(op.Extents.Cells)
	// The quota comes after the existence, version and owner checks, so
	// their answers win (docs/quotas.md).
	quota := quotaCheck{kind: repos.QuotaSubscriptions, limit: op.MaxSubscriptionsPerCell,
		manager: op.Caller, now: op.Now, cells: cells, exceptSub: op.ID}
	if old != nil && !old.Implicit && inForce(old.EndTime, op.Now) {
		quota.held = normalizedCells(old.Cells)
	}
	if err := quota.run(ctx, repo); err != nil {
		return nil, err
	}

	sub := &models.Subscription{
		ID:                          op.ID,
		Manager:                     op.Caller,
		USSBaseURL:                  op.USSBaseURL,
		NotifyForOperationalIntents: op.NotifyForOperationalIntents,
		NotifyForConstraints:        op.NotifyForConstraints,
		// Writing through this endpoint always makes the subscription
		// explicit, so deleting its OIRs no longer deletes it (§6.3 E).
		Implicit:  false,
		StartTime: start,
		EndTime:   end,
		Cells:     cells,
		UpdatedAt: op.Now,
	}
	deps := []models.ID{}
	if old != nil {
		// D. The subscription must keep covering every OIR relying on it.
		sub.UpdatedAt = writeTime(old.UpdatedAt, op.Now)
		sub.NotificationIndex = old.NotificationIndex
		if deps, err = dependents(ctx, repo, op.ID); err != nil {
			return nil, err
		}
		for _, id := range deps {
			if err := op.checkCovers(ctx, repo, id, cells, start, end); err != nil {
				return nil, err
			}
		}
	}

	// E. Write.
	stored := *sub
	if err := repo.UpsertSubscription(ctx, &stored); err != nil {
		return nil, fmt.Errorf("writing subscription %s: %w", op.ID, err)
	}

	// F. What the new subscription already overlaps. OIRs are matched on the
	// stored (normalised) time range, CRs on the request's own times, absent
	// bounds not filtering (reference parity).
	res := PutSubscriptionResult{Sub: SubscriptionView{Sub: sub, Dependents: deps}}
	if sub.NotifyForOperationalIntents {
		oirs, err := repo.SearchOperationalIntents(ctx, timeVolume(cells, start, end))
		if err != nil {
			return nil, fmt.Errorf("searching operational intents: %w", err)
		}
		if res.OIRs, err = newAvailabilities(repo).views(ctx, oirs); err != nil {
			return nil, err
		}
	}
	if sub.NotifyForConstraints {
		crs, err := repo.SearchConstraints(ctx, &models.Volume4D{Cells: cells,
			StartTime: copyTime(op.Extents.StartTime), EndTime: copyTime(op.Extents.EndTime)})
		if err != nil {
			return nil, fmt.Errorf("searching constraints: %w", err)
		}
		res.CRs = sortedConstraints(crs)
	}
	return res, nil
}

// timeRange is §6.3 B: defaults come from the stored subscription when there
// is one, else from the request time.
func (op *PutSubscription) timeRange(old *models.Subscription) (start, end time.Time, err error) {
	switch {
	case op.Extents.StartTime != nil:
		start = *op.Extents.StartTime
		if op.Now.Sub(start) > maxStartInPast {
			return start, end, models.Errorf(models.CodeBadRequest,
				"time_start must not be more than %s in the past", maxStartInPast)
		}
	case old != nil:
		start = old.StartTime
	default:
		start = op.Now
	}
	switch {
	case op.Extents.EndTime != nil:
		end = *op.Extents.EndTime
	case old != nil:
		end = old.EndTime
	default:
		end = start.Add(maxSubscriptionDuration)
	}
	// Deviation (§6.3 B): end == start is rejected here too, not by a
	// storage constraint with a 500.
	if !end.After(start) {
		return start, end, models.Errorf(models.CodeBadRequest, "time_end must be after time_start")
	}
	if end.Sub(start) > maxSubscriptionDuration {
		return start, end, models.Errorf(models.CodeBadRequest,
			"a subscription may last at most %s", maxSubscriptionDuration)
	}
	return start, end, nil
}

// checkCovers is §6.3 D for one dependent OIR. Altitudes come from the
// request (subscriptions store none); an absent bound covers everything
// (Deviation: the reference dereferences nil).
func (op *PutSubscription) checkCovers(ctx context.Context, repo repos.Repo, id models.ID, cells []models.CellID, start, end time.Time) error {
	oir, err := repo.GetOperationalIntent(ctx, id)
	if err != nil {
		return fmt.Errorf("reading dependent operational intent %s: %w", id, err)
	}
	if oir == nil {
		// A dependent that no longer exists constrains nothing.
		return nil
	}
	var why string
	switch {
	case !models.CellsContainAll(cells, oir.Cells):
		why = "area"
	case op.Extents.AltitudeLower != nil && *op.Extents.AltitudeLower > oir.AltitudeLower,
		op.Extents.AltitudeUpper != nil && *op.Extents.AltitudeUpper < oir.AltitudeUpper:
		why = "altitude range"
	case start.Sub(oir.StartTime) > dependentStartTolerance, oir.EndTime.After(end):
		why = "time range"
	default:
		return nil
	}
	return models.Errorf(models.CodeBadRequest,
		"the subscription would no longer cover the %s of its dependent operational intent %s", why, id)
}

// Execute deletes a subscription (spec §6.3 Delete): owner before version,
// and never while an OIR depends on it, implicit or not.
func (op *DeleteSubscription) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if op.Version == "" {
		return nil, models.Errorf(models.CodeBadRequest, "missing version")
	}
	old, err := repo.GetSubscription(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading subscription %s: %w", op.ID, err)
	}
	if old == nil {
		return nil, models.Errorf(models.CodeNotFound, "subscription %s not found", op.ID)
	}
	if old.Manager != op.Caller {
		return nil, models.Errorf(models.CodePermissionDenied, "subscription %s is managed by another USS", op.ID)
	}
	if old.Version() != op.Version {
		return nil, models.Errorf(models.CodeVersionMismatch,
			"version %q is not the current version of subscription %s", op.Version, op.ID)
	}
	deps, err := dependents(ctx, repo, op.ID)
	if err != nil {
		return nil, err
	}
	if len(deps) > 0 {
		return nil, models.Errorf(models.CodeBadRequest,
			"subscription %s still has %d dependent operational intent(s)", op.ID, len(deps))
	}
	if err := repo.DeleteSubscription(ctx, op.ID); err != nil {
		return nil, deleteErr(err, "subscription", op.ID)
	}
	return SubscriptionView{Sub: old, Dependents: deps}, nil
}

// dependents returns the IDs of the OIRs referencing subscription id, sorted,
// never nil (the response always carries an array, §5.3).
func dependents(ctx context.Context, repo repos.Repo, id models.ID) ([]models.ID, error) {
	deps, err := repo.GetDependentOperationalIntents(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the dependents of subscription %s: %w", id, err)
	}
	out := slices.Clone(deps)
	if out == nil {
		out = []models.ID{}
	}
	slices.Sort(out)
	return out, nil
}

// copyTime keeps the operation's own pointers out of the repo.
func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}
