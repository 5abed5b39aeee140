package scd

import (
	"context"
	"fmt"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// Execute searches CRs intersecting the area of interest on cells and time
// only (spec §6.2 Query, §4).
func (op *QueryConstraints) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if len(op.Area.Cells) == 0 {
		return nil, models.Errorf(models.CodeBadRequest, "area_of_interest has no footprint")
	}
	area := op.Area
	crs, err := repo.SearchConstraints(ctx, &area)
	if err != nil {
		return nil, fmt.Errorf("searching constraints: %w", err)
	}
	return sortedConstraints(crs), nil
}

// Execute reads one CR (spec §6.2 Get).
func (op *GetConstraint) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	cr, err := repo.GetConstraint(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading constraint %s: %w", op.ID, err)
	}
	if cr == nil {
		return nil, models.Errorf(models.CodeNotFound, "constraint %s not found", op.ID)
	}
	return cr, nil
}

// Execute creates or updates a CR (spec §6.2 B–D).
func (op *PutConstraint) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	e := op.Extents
	if len(e.Cells) == 0 {
		return nil, models.Errorf(models.CodeBadRequest, "extents have no footprint")
	}
	if e.StartTime == nil || e.EndTime == nil {
		return nil, models.Errorf(models.CodeBadRequest, "extents lack a start or end time")
	}

	// B. Unlike an OIR update, a CR update of a missing id is 409 (§6.2 B,
	// §15); ownership is checked before the OVN.
	old, err := repo.GetConstraint(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading constraint %s: %w", op.ID, err)
	}
	version := int32(1)
	if old == nil {
		if op.OVN != "" {
			return nil, models.Errorf(models.CodeVersionMismatch,
				"constraint %s does not exist; create it without an OVN", op.ID)
		}
	} else {
		if old.Manager != op.Caller {
			return nil, models.Errorf(models.CodePermissionDenied, "constraint %s is managed by another USS", op.ID)
		}
		if old.OVN() != op.OVN {
			if op.OVN == "" {
				return nil, models.Errorf(models.CodeAlreadyExists,
					"constraint %s already exists; update it with its current OVN", op.ID)
			}
			return nil, models.Errorf(models.CodeVersionMismatch,
				"OVN %q is not the current OVN of constraint %s", op.OVN, op.ID)
		}
		version = old.Version + 1
	}

	// The per-USS quota, before the write (docs/quotas.md).
	cells := normalizedCells(e.Cells)
	quota := quotaCheck{kind: repos.QuotaEntities, limit: op.MaxEntitiesPerCell,
		manager: op.Caller, now: op.Now, cells: cells, exceptCR: op.ID}
	if old != nil && inForce(old.EndTime, op.Now) {
		quota.held = normalizedCells(old.Cells)
	}
	if err := quota.run(ctx, repo); err != nil {
		return nil, err
	}

	// C. Write, then notify over union(old, new).
	cr := &models.Constraint{
		ID:         op.ID,
		Manager:    op.Caller,
		Version:    version,
		USSBaseURL: op.USSBaseURL,
		StartTime:  *e.StartTime,
		EndTime:    *e.EndTime,
		Cells:      cells,
		UpdatedAt:  op.Now,
	}
	if old != nil {
		cr.UpdatedAt = writeTime(old.UpdatedAt, op.Now)
	}
	// Fresh pointers: the operation's own values stay out of the repo.
	if e.AltitudeLower != nil {
		v := *e.AltitudeLower
		cr.AltitudeLower = &v
	}
	if e.AltitudeUpper != nil {
		v := *e.AltitudeUpper
		cr.AltitudeUpper = &v
	}
	stored := *cr
	if err := repo.UpsertConstraint(ctx, &stored); err != nil {
		return nil, fmt.Errorf("writing constraint %s: %w", op.ID, err)
	}
	vol := timeVolume(cr.Cells, cr.StartTime, cr.EndTime)
	if old != nil {
		vol = spanVolume(old.Cells, old.StartTime, old.EndTime, cr.Cells, cr.StartTime, cr.EndTime)
	}
	subscribers, err := notify(ctx, repo, models.NotifyConstraints, vol)
	if err != nil {
		return nil, err
	}
	return ConstraintResult{CR: cr, Subscribers: subscribers}, nil
}

// Execute deletes a CR (spec §6.2 Delete) and notifies constraint
// subscribers over its old volume.
func (op *DeleteConstraint) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if op.OVN == "" {
		return nil, models.Errorf(models.CodeBadRequest, "missing OVN")
	}
	old, err := repo.GetConstraint(ctx, op.ID)
	if err != nil {
		return nil, fmt.Errorf("reading constraint %s: %w", op.ID, err)
	}
	if old == nil {
		return nil, models.Errorf(models.CodeNotFound, "constraint %s not found", op.ID)
	}
	if old.Manager != op.Caller {
		return nil, models.Errorf(models.CodePermissionDenied, "constraint %s is managed by another USS", op.ID)
	}
	if old.OVN() != op.OVN {
		return nil, models.Errorf(models.CodeVersionMismatch, "OVN %q is not the current OVN of constraint %s", op.OVN, op.ID)
	}
	if err := repo.DeleteConstraint(ctx, op.ID); err != nil {
		return nil, deleteErr(err, "constraint", op.ID)
	}
	subscribers, err := notify(ctx, repo, models.NotifyConstraints, timeVolume(old.Cells, old.StartTime, old.EndTime))
	if err != nil {
		return nil, err
	}
	return ConstraintResult{CR: old, Subscribers: subscribers}, nil
}
