package scd

import (
	"context"
	"fmt"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// Execute reads the availability of any USS (spec §6.4 Get): a USS without a
// record is Unknown with version "".
func (op *GetUssAvailability) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if op.USS == "" {
		return nil, models.Errorf(models.CodeBadRequest, "missing USS id")
	}
	rec, err := repo.GetUssAvailability(ctx, op.USS)
	if err != nil {
		return nil, fmt.Errorf("reading the availability of USS %q: %w", op.USS, err)
	}
	return availabilityView(op.USS, rec), nil
}

// Execute sets the availability of a USS (spec §6.4 Set). Any arbitrator may
// set any USS, so the only guard is the version compare-and-set.
func (op *PutUssAvailability) Execute(ctx context.Context, repo repos.Repo) (any, error) {
	if op.USS == "" {
		return nil, models.Errorf(models.CodeBadRequest, "missing USS id")
	}
	switch op.Availability {
	case models.AvailabilityUnknown, models.AvailabilityNormal, models.AvailabilityDown:
	default:
		return nil, models.Errorf(models.CodeBadRequest, "invalid availability %q", op.Availability)
	}
	rec, err := repo.GetUssAvailability(ctx, op.USS)
	if err != nil {
		return nil, fmt.Errorf("reading the availability of USS %q: %w", op.USS, err)
	}
	if rec == nil {
		if op.OldVersion != "" {
			return nil, models.Errorf(models.CodeVersionMismatch,
				"USS %q has no availability record; set it with an empty old_version", op.USS)
		}
	} else {
		// An omitted old_version does not match an existing record either.
		if op.OldVersion != rec.Version() {
			return nil, models.Errorf(models.CodeVersionMismatch,
				"old_version %q is not the current version of the availability of USS %q", op.OldVersion, op.USS)
		}
	}
	next := &models.UssAvailability{USS: op.USS, Availability: op.Availability, UpdatedAt: op.Now}
	if rec != nil {
		next.UpdatedAt = writeTime(rec.UpdatedAt, op.Now)
	}
	stored := *next
	if err := repo.UpsertUssAvailability(ctx, &stored); err != nil {
		return nil, fmt.Errorf("writing the availability of USS %q: %w", op.USS, err)
	}
	return availabilityView(op.USS, next), nil
}

func availabilityView(uss string, rec *models.UssAvailability) AvailabilityView {
	if rec == nil {
		return AvailabilityView{USS: uss, Availability: models.AvailabilityUnknown, Version: ""}
	}
	av := rec.Availability
	if av == "" {
		av = models.AvailabilityUnknown
	}
	return AvailabilityView{USS: uss, Availability: av, Version: rec.Version()}
}
