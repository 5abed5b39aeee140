package scd

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// Quotas are the per-USS limits (docs/quotas.md). A node's handler copies
// them into every PUT it builds, so Execute uses the limits the proposing
// node decided and never a value of the node that applies the entry. 0
// means no limit.
type Quotas struct {
	// SubscriptionsPerCell bounds the explicit subscriptions one USS
	// (token subject) holds in force in any one S2 cell.
	SubscriptionsPerCell uint32
	// EntitiesPerCell bounds the OIRs and CRs, together, that one USS holds
	// in force in any one S2 cell.
	EntitiesPerCell uint32
}

// Default quotas, as the core-service flags default to (docs/quotas.md).
const (
	// DefaultSubscriptionsPerCell is the limit of the InterUSS DSS (ASTM
	// F3411 DSS0030 "maxSubscriptionsPerArea"): 10 per USS per cell.
	DefaultSubscriptionsPerCell = 10
	// DefaultEntitiesPerCell is 100 OIRs and CRs per USS per ~1.3 km² cell.
	DefaultEntitiesPerCell = 100
)

// The names of the quotas in messages, as the core-service flags spell them.
const (
	subscriptionQuotaName = "max_subscriptions_per_uss_per_cell"
	entityQuotaName       = "max_entities_per_uss_per_cell"
)

// quotaCheck is one quota check of a PUT (docs/quotas.md):
//
//   - Only entities in force count: those ending at or after the request
//     time. Expired ones wait for the cleanup and block nobody.
//   - The entity being written never counts against itself, and only the
//     cells it newly occupies are checked: held lists the cells it already
//     occupies and counts in (nil for a new entity, or one that did not
//     count: expired, or an implicit subscription made explicit). So an
//     update that stays in its cells is never refused, even after the
//     limit was lowered below what the USS holds.
type quotaCheck struct {
	kind    repos.QuotaKind
	limit   uint32
	manager string
	now     time.Time
	cells   []models.CellID // the new extents' cells, a sorted set
	held    []models.CellID // a sorted set
	// except is the entity being written.
	exceptSub, exceptOIR, exceptCR models.ID
}

func (c *quotaCheck) run(ctx context.Context, repo repos.Repo) error {
	if c.limit == 0 {
		return nil
	}
	cells := newCells(c.cells, c.held)
	if len(cells) == 0 {
		return nil
	}
	// An int holds every uint32 on 64-bit platforms; the cap only matters
	// on 32-bit ones, where it is still more than a cell can hold.
	limit := int(min(uint64(c.limit), math.MaxInt32))
	cell, full, err := repo.FirstFullCell(ctx, &repos.QuotaQuery{
		Kind: c.kind, Manager: c.manager, Cells: cells, NotBefore: c.now,
		ExceptSubscription: c.exceptSub, ExceptOperationalIntent: c.exceptOIR, ExceptConstraint: c.exceptCR,
		Limit: limit,
	})
	if err != nil {
		return fmt.Errorf("checking the per-USS quota: %w", err)
	}
	if !full {
		return nil
	}
	what, quota := "explicit subscriptions", subscriptionQuotaName
	if c.kind == repos.QuotaEntities {
		what, quota = "operational intents and constraints", entityQuotaName
	}
	return models.Errorf(models.CodeQuotaExceeded,
		"this USS already holds %d %s in force in S2 cell %s, the most one USS may hold in one cell "+
			"(quota %s = %d); delete some there, or wait for them to end, before adding another",
		limit, what, cellToken(cell), quota, c.limit)
}

// newCells returns the cells of a that are not in b (both sorted sets).
func newCells(a, b []models.CellID) []models.CellID {
	if len(b) == 0 {
		return a
	}
	out := make([]models.CellID, 0, len(a))
	j := 0
	for _, c := range a {
		for j < len(b) && b[j] < c {
			j++
		}
		if j < len(b) && b[j] == c {
			continue
		}
		out = append(out, c)
	}
	return out
}

// cellToken is the S2 token of a cell (its 64-bit ID in hex without
// trailing zeros), the form S2 tools accept.
func cellToken(c models.CellID) string {
	if c == 0 {
		return "X"
	}
	return strings.TrimRight(fmt.Sprintf("%016x", uint64(c)), "0")
}

// inForce reports whether an entity ending at end counts against a quota at
// now.
func inForce(end, now time.Time) bool { return !end.Before(now) }
