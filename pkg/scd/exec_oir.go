package scd

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// Execute searches OIRs intersecting the area of interest, altitude included
// (spec §6.1 Query, §4).
func (op *QueryOperationalIntents) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if len(op.Area.Cells) == 0 {
		return nil, models.Errorf(models.CodeBadRequest, "area_of_interest has no footprint")
	}
	area := op.Area
	oirs, err := repo.SearchOperationalIntents(ctx, &area)
	if err != nil {
		return nil, fmt.Errorf("searching operational intents: %w", err)
	}
	return newAvailabilities(repo).views(ctx, oirs)
}

// Execute reads one OIR (spec §6.1 Get). Any caller may read any OIR.
func (op *GetOperationalIntent) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	oir, err := repo.GetOperationalIntent(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading operational intent %s: %w", op.ID, err)
	}
	if oir == nil {
		return nil, models.Errorf(models.CodeNotFound, "operational intent %s not found", op.ID)
	}
	av, err := newAvailabilities(repo).of(ctx, oir.Manager)
	if err != nil {
		return nil, err
	}
	return OperationalIntentView{OIR: oir, Availability: av}, nil
}

// Execute creates or updates an OIR: spec §6.1 steps C to I, with the key
// check of §7, the implicit subscriptions of §8 and the notifications of §9.
// Every step runs in the order the spec lists, because the first failing
// check decides the status code.
func (op *PutOperationalIntent) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	ext, err := op.extents()
	if err != nil {
		return nil, err
	}

	// C. Existence, ownership (before OVN), version.
	old, err := repo.GetOperationalIntent(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading operational intent %s: %w", op.ID, err)
	}
	version := int32(1)
	if old != nil {
		if old.Manager != op.Caller {
			return nil, models.Errorf(models.CodePermissionDenied, "operational intent %s is managed by another USS", op.ID)
		}
		if cur := old.OVN(); cur != op.OVN {
			if op.OVN == "" {
				return nil, models.Errorf(models.CodeAlreadyExists,
					"operational intent %s already exists; update it with its current OVN", op.ID)
			}
			return nil, models.Errorf(models.CodeVersionMismatch,
				"OVN %q is not the current OVN of operational intent %s", op.OVN, op.ID)
		}
		version = old.Version + 1
	} else if op.OVN != "" {
		// The reference maps this not-found to 400 (§15).
		return nil, models.Errorf(models.CodeBadRequest,
			"operational intent %s does not exist; create it without an OVN", op.ID)
	}

	// The per-USS quota, before anything is written. Nonconforming and
	// Contingent writes are exempt: a USS whose aircraft left its plan must
	// always be able to tell the airspace where it is (docs/quotas.md).
	if op.State.RequiresKeyCheck() {
		quota := quotaCheck{kind: repos.QuotaEntities, limit: op.MaxEntitiesPerCell,
			manager: op.Caller, now: op.Now, cells: ext.cells, exceptOIR: op.ID}
		if old != nil && inForce(old.EndTime, op.Now) {
			quota.held = normalizedCells(old.Cells)
		}
		if err := quota.run(ctx, repo); err != nil {
			return nil, err
		}
	}

	// D. Subscription resolution.
	var prev *models.Subscription
	if old != nil && old.SubscriptionID != "" {
		// A dangling reference leaves prev nil: nothing to release.
		if prev, err = repo.GetSubscription(ctx, old.SubscriptionID); err != nil {
			return nil, fmt.Errorf("reading subscription %s: %w", old.SubscriptionID, err)
		}
	}
	attached, err := op.resolveSubscription(ctx, repo, ext, prev)
	if err != nil {
		return nil, err
	}
	releasePrev := false
	if prev != nil && prev.Implicit && (attached == nil || attached.ID != prev.ID) {
		deps, err := repo.GetDependentOperationalIntents(ctx, prev.ID)
		if err != nil {
			return nil, fmt.Errorf("reading the dependents of subscription %s: %w", prev.ID, err)
		}
		releasePrev = onlyDependent(deps, op.ID)
	}

	// E. Key check (§7); Nonconforming and Contingent skip it.
	avail := newAvailabilities(repo)
	if op.State.RequiresKeyCheck() {
		if err := op.checkKey(ctx, repo, avail, ext, attached); err != nil {
			return nil, err
		}
	}

	// F. Write the OIR.
	oir := &models.OperationalIntent{
		ID:            op.ID,
		Manager:       op.Caller,
		Version:       version,
		State:         op.State,
		RequestedOVN:  op.RequestedOVN,
		USSBaseURL:    op.USSBaseURL,
		StartTime:     ext.start,
		EndTime:       ext.end,
		AltitudeLower: ext.lower,
		AltitudeUpper: ext.upper,
		Cells:         ext.cells,
		UpdatedAt:     op.Now,
	}
	if attached != nil {
		oir.SubscriptionID = attached.ID
	}
	if old != nil {
		oir.UpdatedAt = writeTime(old.UpdatedAt, op.Now)
		oir.PastOVNs = append(slices.Clone(old.PastOVNs), old.OVN())
	}
	if err := checkFreshOVN(old, oir); err != nil {
		return nil, err
	}
	stored := *oir
	if err := repo.UpsertOperationalIntent(ctx, &stored); err != nil {
		return nil, fmt.Errorf("writing operational intent %s: %w", op.ID, err)
	}

	// G. Release the previous implicit subscription after the OIR no longer
	// references it.
	if releasePrev {
		if err := repo.DeleteSubscription(ctx, prev.ID); err != nil {
			return nil, deleteErr(err, "released implicit subscription", prev.ID)
		}
	}

	// H. Notifications over union(old, new). This comes after D and G, so a
	// just-created implicit subscription of this OIR is notified (index 1)
	// and a released one is not.
	vol := timeVolume(ext.cells, ext.start, ext.end)
	if old != nil {
		vol = spanVolume(old.Cells, old.StartTime, old.EndTime, ext.cells, ext.start, ext.end)
	}
	subscribers, err := notify(ctx, repo, models.NotifyOperationalIntents, vol)
	if err != nil {
		return nil, err
	}

	// I.
	av, err := avail.of(ctx, op.Caller)
	if err != nil {
		return nil, err
	}
	return OperationalIntentResult{OIR: OperationalIntentView{OIR: oir, Availability: av}, Subscribers: subscribers}, nil
}

// oirExtents is the validated union volume of an OIR PUT.
type oirExtents struct {
	cells        []models.CellID
	start, end   time.Time
	lower, upper float32
}

// extents checks what stateless validation guarantees (§6.1 A), so that a
// malformed operation (e.g. decoded from a log) fails cleanly instead of
// dereferencing nil.
func (op *PutOperationalIntent) extents() (oirExtents, error) {
	e := op.Extents
	switch {
	case len(e.Cells) == 0:
		return oirExtents{}, models.Errorf(models.CodeBadRequest, "extents have no footprint")
	case e.StartTime == nil || e.EndTime == nil:
		return oirExtents{}, models.Errorf(models.CodeBadRequest, "extents lack a start or end time")
	case e.AltitudeLower == nil || e.AltitudeUpper == nil:
		return oirExtents{}, models.Errorf(models.CodeBadRequest, "extents lack a lower or upper altitude")
	case op.SubscriptionID != "" && op.NewSubscription != nil:
		return oirExtents{}, models.Errorf(models.CodeBadRequest, "subscription_id and new_subscription are mutually exclusive")
	}
	return oirExtents{cells: normalizedCells(e.Cells), start: *e.StartTime, end: *e.EndTime,
		lower: *e.AltitudeLower, upper: *e.AltitudeUpper}, nil
}

// resolveSubscription is §6.1 D: it returns the subscription the OIR will
// reference (nil for none), creating or extending it in the repo as needed.
func (op *PutOperationalIntent) resolveSubscription(ctx context.Context, repo repos.Repo, ext oirExtents, prev *models.Subscription) (*models.Subscription, error) {
	if op.SubscriptionID == "" {
		if op.NewSubscription == nil {
			return nil, nil
		}
		return op.createImplicitSubscription(ctx, repo, ext)
	}

	sub := prev
	if sub == nil || sub.ID != op.SubscriptionID {
		var err error
		if sub, err = repo.GetSubscription(ctx, op.SubscriptionID); err != nil {
			return nil, fmt.Errorf("reading subscription %s: %w", op.SubscriptionID, err)
		}
	}
	if sub == nil {
		return nil, models.Errorf(models.CodeBadRequest, "subscription %s does not exist", op.SubscriptionID)
	}
	if sub.Manager != op.Caller {
		return nil, models.Errorf(models.CodePermissionDenied, "subscription %s is managed by another USS", op.SubscriptionID)
	}
	// Altitude is not checked and there is no start tolerance here (§6.1 D).
	coversTime := !sub.StartTime.After(ext.start) && !sub.EndTime.Before(ext.end)
	coversCells := models.CellsContainAll(sub.Cells, ext.cells)
	if coversTime && coversCells {
		return sub, nil
	}
	if !sub.Implicit {
		what := "time range"
		if !coversCells {
			what = "area"
		}
		return nil, models.Errorf(models.CodeBadRequest,
			"subscription %s does not cover the %s of the operational intent", op.SubscriptionID, what)
	}
	// An implicit subscription grows with its OIRs (§8).
	grown := *sub
	grown.StartTime = earlier(sub.StartTime, ext.start)
	grown.EndTime = later(sub.EndTime, ext.end)
	grown.Cells = models.UnionCells(sub.Cells, ext.cells)
	grown.UpdatedAt = writeTime(sub.UpdatedAt, op.Now)
	stored := grown
	if err := repo.UpsertSubscription(ctx, &stored); err != nil {
		return nil, fmt.Errorf("extending implicit subscription %s: %w", sub.ID, err)
	}
	return &grown, nil
}

// createImplicitSubscription is §8: a subscription covering exactly the
// OIR's extents, with none of the explicit subscriptions' time limits.
func (op *PutOperationalIntent) createImplicitSubscription(ctx context.Context, repo repos.Repo, ext oirExtents) (*models.Subscription, error) {
	if op.NewSubscriptionID == "" {
		return nil, internalf(nil, "no ID was chosen for the implicit subscription")
	}
	// The ID was drawn at random by the handler; overwriting an existing
	// subscription on a collision would silently corrupt another USS's data.
	existing, err := repo.GetSubscription(ctx, op.NewSubscriptionID)
	if err != nil {
		return nil, fmt.Errorf("reading subscription %s: %w", op.NewSubscriptionID, err)
	}
	if existing != nil {
		return nil, internalf(nil, "the ID chosen for the implicit subscription, %s, is already in use", op.NewSubscriptionID)
	}
	sub := &models.Subscription{
		ID:                          op.NewSubscriptionID,
		Manager:                     op.Caller,
		USSBaseURL:                  op.NewSubscription.USSBaseURL,
		NotifyForOperationalIntents: true,
		NotifyForConstraints:        op.NewSubscription.NotifyForConstraints,
		Implicit:                    true,
		StartTime:                   ext.start,
		EndTime:                     ext.end,
		Cells:                       ext.cells,
		UpdatedAt:                   op.Now,
	}
	stored := *sub
	if err := repo.UpsertSubscription(ctx, &stored); err != nil {
		return nil, fmt.Errorf("creating implicit subscription %s: %w", sub.ID, err)
	}
	return sub, nil
}

// checkKey is §7: every OIR (any manager, the caller's own included) and,
// when the attached subscription wants constraints, every CR intersecting
// the new extents must have its OVN in the key.
func (op *PutOperationalIntent) checkKey(ctx context.Context, repo repos.Repo, avail *availabilities, ext oirExtents, attached *models.Subscription) error {
	key := make(map[models.OVN]struct{}, len(op.Key))
	for _, k := range op.Key {
		key[k] = struct{}{}
	}
	lower, upper := ext.lower, ext.upper
	var missingOIRs []*models.OperationalIntent
	var availErr error
	err := visitOIRs(ctx, repo, &models.Volume4D{Cells: ext.cells,
		StartTime: &ext.start, EndTime: &ext.end, AltitudeLower: &lower, AltitudeUpper: &upper},
		func(o *models.OperationalIntent, ovn models.OVN) bool {
			if o.ID == op.ID {
				return true
			}
			if _, ok := key[ovn]; ok {
				return true
			}
			// An Accepted OIR of a USS that is Down needs no key (§5.4), so
			// a failed USS cannot block the airspace with plans it never
			// flies.
			if o.State == models.StateAccepted {
				av, err := avail.of(ctx, o.Manager)
				if err != nil {
					availErr = err
					return false
				}
				if av == models.AvailabilityDown {
					return true
				}
			}
			missing := *o // o is only lent by visitOIRs
			missingOIRs = append(missingOIRs, &missing)
			return true
		})
	if availErr != nil {
		return availErr
	}
	if err != nil {
		return fmt.Errorf("searching operational intents for the key check: %w", err)
	}
	var availabilities map[string]models.Availability
	if len(missingOIRs) > 0 {
		availabilities = make(map[string]models.Availability)
		for _, o := range missingOIRs {
			av, err := avail.of(ctx, o.Manager)
			if err != nil {
				return err
			}
			availabilities[o.Manager] = av
		}
	}

	var missingCRs []*models.Constraint
	if attached != nil && attached.NotifyForConstraints {
		crs, err := repo.SearchConstraints(ctx, timeVolume(ext.cells, ext.start, ext.end))
		if err != nil {
			return fmt.Errorf("searching constraints for the key check: %w", err)
		}
		for _, c := range sortedConstraints(crs) {
			if _, ok := key[c.OVN()]; !ok {
				missingCRs = append(missingCRs, c)
			}
		}
	}

	if len(missingOIRs) == 0 && len(missingCRs) == 0 {
		return nil
	}
	return &models.Error{
		Code: models.CodeMissingKey,
		Message: fmt.Sprintf("the key lacks the OVNs of %d operational intent(s) and %d constraint(s) intersecting the extents",
			len(missingOIRs), len(missingCRs)),
		MissingOIRs:    missingOIRs,
		MissingCRs:     missingCRs,
		Availabilities: availabilities,
	}
}

// oirVisitor is implemented by repos that keep the OVN of every stored OIR
// (the memstore, and so the Raft store). VisitOperationalIntents calls
// yield for each OIR that SearchOperationalIntents would return, in ID
// order, with ovn == o.OVN(), until yield returns false. o is the repo's
// own value, lent for the call: yield must neither modify nor keep it.
// This spares the key check a copy of every OIR it meets and the
// derivation of its OVN (a SHA-256), in every replica's apply.
type oirVisitor interface {
	VisitOperationalIntents(ctx context.Context, v *models.Volume4D, yield func(o *models.OperationalIntent, ovn models.OVN) bool) error
}

// visitOIRs calls yield like oirVisitor.VisitOperationalIntents, for any
// repo: the OIRs that SearchOperationalIntents returns, nil entries
// dropped, in ID order, with their OVNs.
func visitOIRs(ctx context.Context, repo repos.Repo, v *models.Volume4D, yield func(o *models.OperationalIntent, ovn models.OVN) bool) error {
	if vis, ok := repo.(oirVisitor); ok {
		return vis.VisitOperationalIntents(ctx, v, yield)
	}
	oirs, err := repo.SearchOperationalIntents(ctx, v)
	if err != nil {
		return err
	}
	for _, o := range sortedOIRs(oirs) {
		if !yield(o, o.OVN()) {
			break
		}
	}
	return nil
}

// checkFreshOVN enforces §3.6: the new OVN differs from the current and every
// past OVN. A requested OVN that repeats one is the client's mistake (400,
// a Deviation from the reference's 500); a derived one repeats only if the
// store's write times did not advance.
func checkFreshOVN(old, oir *models.OperationalIntent) error {
	if old == nil {
		return nil
	}
	ovn := oir.OVN()
	if ovn != old.OVN() && !slices.Contains(old.PastOVNs, ovn) {
		return nil
	}
	if oir.RequestedOVN != "" {
		return models.Errorf(models.CodeBadRequest,
			"requested OVN %q was already used by operational intent %s", ovn, oir.ID)
	}
	return internalf(nil, "operational intent %s would get OVN %q again: write time %s did not advance",
		oir.ID, ovn, oir.UpdatedAt.UTC().Format(time.RFC3339Nano))
}

// Execute deletes an OIR (spec §6.1 Delete): subscribers are computed over
// its stored volume before its implicit subscription is released, so that
// subscription is notified too.
func (op *DeleteOperationalIntent) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if op.OVN == "" {
		return nil, models.Errorf(models.CodeBadRequest, "missing OVN")
	}
	old, err := repo.GetOperationalIntent(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading operational intent %s: %w", op.ID, err)
	}
	if old == nil {
		return nil, models.Errorf(models.CodeNotFound, "operational intent %s not found", op.ID)
	}
	if old.Manager != op.Caller {
		return nil, models.Errorf(models.CodePermissionDenied, "operational intent %s is managed by another USS", op.ID)
	}
	if old.OVN() != op.OVN {
		return nil, models.Errorf(models.CodeVersionMismatch,
			"OVN %q is not the current OVN of operational intent %s", op.OVN, op.ID)
	}

	var release *models.Subscription
	if old.SubscriptionID != "" {
		sub, err := repo.GetSubscription(ctx, old.SubscriptionID)
		if err != nil {
			return nil, fmt.Errorf("reading subscription %s: %w", old.SubscriptionID, err)
		}
		if sub != nil && sub.Implicit {
			deps, err := repo.GetDependentOperationalIntents(ctx, sub.ID)
			if err != nil {
				return nil, fmt.Errorf("reading the dependents of subscription %s: %w", sub.ID, err)
			}
			if onlyDependent(deps, op.ID) {
				release = sub
			}
		}
	}

	subscribers, err := notify(ctx, repo, models.NotifyOperationalIntents,
		timeVolume(old.Cells, old.StartTime, old.EndTime))
	if err != nil {
		return nil, err
	}
	if err := repo.DeleteOperationalIntent(ctx, op.ID); err != nil {
		return nil, deleteErr(err, "operational intent", op.ID)
	}
	if release != nil {
		if err := repo.DeleteSubscription(ctx, release.ID); err != nil {
			return nil, deleteErr(err, "released implicit subscription", release.ID)
		}
	}
	av, err := newAvailabilities(repo).of(ctx, old.Manager)
	if err != nil {
		return nil, err
	}
	return OperationalIntentResult{OIR: OperationalIntentView{OIR: old, Availability: av}, Subscribers: subscribers}, nil
}
