// Package repos defines Repo, the transactional view of SCD data that
// operations run against. Every backend (memstore, sqlstore, and the Raft
// store, which applies operations to a memstore) implements the same
// semantics, including the matching rules of spec §4.
//
// Contract for every method:
//   - Values passed in are owned by the repo afterwards; the caller must not
//     modify them (or their slices) again.
//   - Values returned are owned by the caller, but slices inside them (Cells,
//     PastOVNs) may be shared with the repo and must never be modified in
//     place: copy before changing.
//   - Errors are *models.Error where the caller could act on them
//     (CodeNotFound on deleting an absent entity); anything else is a store
//     failure.
//   - A repo instance is used by one operation at a time and is not safe for
//     concurrent use; the Store around it provides isolation.
package repos

import (
	"context"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// MaxSearchResults caps every search (spec §4).
const MaxSearchResults = 10000

// Repo is the SCD data of one transaction.
type Repo interface {
	OperationalIntents
	Subscriptions
	Constraints
	Availabilities
	Quotas
	Expiry
	Pool
}

// OperationalIntents stores OIRs.
type OperationalIntents interface {
	// GetOperationalIntent returns nil and no error if id is absent.
	GetOperationalIntent(ctx context.Context, id models.ID) (*models.OperationalIntent, error)
	// SearchOperationalIntents returns the OIRs intersecting v: a shared
	// cell, overlapping time and overlapping altitude, inclusive, absent
	// bounds not filtering (spec §4). v.Cells must be non-empty. At most
	// MaxSearchResults, in no particular order.
	SearchOperationalIntents(ctx context.Context, v *models.Volume4D) ([]*models.OperationalIntent, error)
	// UpsertOperationalIntent inserts or replaces the OIR with oir.ID as
	// given (the operation has already set Version, UpdatedAt, PastOVNs...).
	UpsertOperationalIntent(ctx context.Context, oir *models.OperationalIntent) error
	// DeleteOperationalIntent returns CodeNotFound if id is absent.
	DeleteOperationalIntent(ctx context.Context, id models.ID) error
	// GetDependentOperationalIntents returns the IDs of the OIRs whose
	// SubscriptionID is subID (empty, not nil, if none), in no particular order.
	GetDependentOperationalIntents(ctx context.Context, subID models.ID) ([]models.ID, error)
}

// Subscriptions stores subscriptions.
type Subscriptions interface {
	// GetSubscription returns nil and no error if id is absent.
	GetSubscription(ctx context.Context, id models.ID) (*models.Subscription, error)
	// SearchSubscriptions returns the subscriptions sharing a cell with v
	// and overlapping its time range (altitude ignored), of any manager.
	SearchSubscriptions(ctx context.Context, v *models.Volume4D) ([]*models.Subscription, error)
	// UpsertSubscription inserts or replaces sub as given (including its
	// NotificationIndex, Implicit flag and UpdatedAt).
	UpsertSubscription(ctx context.Context, sub *models.Subscription) error
	// DeleteSubscription returns CodeNotFound if id is absent.
	DeleteSubscription(ctx context.Context, id models.ID) error
	// IncrementNotificationIndices adds 1 to the notification index of every
	// subscription that matches v like SearchSubscriptions and has the notify
	// flag of kind set, without touching UpdatedAt, and returns them with
	// their new indices (spec §9).
	IncrementNotificationIndices(ctx context.Context, kind models.SubscriberKind, v *models.Volume4D) ([]*models.Subscription, error)
}

// Constraints stores constraint references.
type Constraints interface {
	// GetConstraint returns nil and no error if id is absent.
	GetConstraint(ctx context.Context, id models.ID) (*models.Constraint, error)
	// SearchConstraints matches cells and time only (altitude ignored).
	SearchConstraints(ctx context.Context, v *models.Volume4D) ([]*models.Constraint, error)
	UpsertConstraint(ctx context.Context, c *models.Constraint) error
	// DeleteConstraint returns CodeNotFound if id is absent.
	DeleteConstraint(ctx context.Context, id models.ID) error
}

// Availabilities stores USS availability records.
type Availabilities interface {
	// GetUssAvailability returns nil and no error if uss has no record.
	GetUssAvailability(ctx context.Context, uss string) (*models.UssAvailability, error)
	UpsertUssAvailability(ctx context.Context, a *models.UssAvailability) error
}

// QuotaKind says what a QuotaQuery counts.
type QuotaKind uint8

const (
	// QuotaSubscriptions counts explicit subscriptions (Implicit false).
	QuotaSubscriptions QuotaKind = iota + 1
	// QuotaEntities counts OIRs and CRs together.
	QuotaEntities
)

// QuotaQuery asks whether one manager already holds Limit entities of a
// kind in any of a set of cells (the per-USS quotas, docs/quotas.md).
type QuotaQuery struct {
	Kind    QuotaKind
	Manager string
	// Cells are the cells to check: sorted, duplicate-free, non-empty.
	Cells []models.CellID
	// NotBefore is the request time: an entity ending before it (expired)
	// does not count.
	NotBefore time.Time
	// The entity being written is not counted: ExceptSubscription for
	// QuotaSubscriptions, ExceptOperationalIntent or ExceptConstraint for
	// QuotaEntities ("" excludes nothing).
	ExceptSubscription      models.ID
	ExceptOperationalIntent models.ID
	ExceptConstraint        models.ID
	// Limit is at least 1.
	Limit int
}

// Check refuses a query this contract does not allow (a store bug, never
// the client's), so that every backend refuses it the same way.
func (q *QuotaQuery) Check() error {
	switch {
	case q == nil:
		return models.Errorf(models.CodeInternal, "quota query is nil")
	case q.Kind != QuotaSubscriptions && q.Kind != QuotaEntities:
		return models.Errorf(models.CodeInternal, "quota query of unknown kind %d", q.Kind)
	case len(q.Cells) == 0:
		return models.Errorf(models.CodeInternal, "quota query without cells")
	case q.Limit < 1:
		return models.Errorf(models.CodeInternal, "quota query with limit %d", q.Limit)
	}
	return nil
}

// Quotas answers the per-USS quota checks.
type Quotas interface {
	// FirstFullCell returns the lowest of q.Cells (in CellID order) in which
	// the entities that q counts (manager q.Manager, kind q.Kind, ending at
	// or after q.NotBefore, other than the excepted one) number at least
	// q.Limit, and true; or false when no cell is that full. The answer is
	// exact: no search cap applies.
	FirstFullCell(ctx context.Context, q *QuotaQuery) (models.CellID, bool, error)
}

// ExpiredKind says what an ExpiredQuery lists.
type ExpiredKind uint8

const (
	ExpiredOperationalIntents ExpiredKind = iota + 1
	ExpiredConstraints
	ExpiredSubscriptions
)

// ExpiredQuery asks for the entities of one kind that ended before a
// cut-off (eviction, docs/operations.md).
type ExpiredQuery struct {
	Kind ExpiredKind
	// Before is the cut-off: an entity whose end time is strictly before it
	// is expired.
	Before time.Time
	// After skips every ID up to and including it ("" skips nothing), so a
	// caller can page through a long list.
	After models.ID
	// Unreferenced, for subscriptions only, leaves out every subscription
	// that an OIR still references.
	Unreferenced bool
	// Limit is at least 1.
	Limit int
}

// Check refuses a query this contract does not allow (a store bug).
func (q *ExpiredQuery) Check() error {
	switch {
	case q == nil:
		return models.Errorf(models.CodeInternal, "expired query is nil")
	case q.Kind != ExpiredOperationalIntents && q.Kind != ExpiredConstraints && q.Kind != ExpiredSubscriptions:
		return models.Errorf(models.CodeInternal, "expired query of unknown kind %d", q.Kind)
	case q.Unreferenced && q.Kind != ExpiredSubscriptions:
		return models.Errorf(models.CodeInternal, "expired query: Unreferenced applies to subscriptions only")
	case q.Limit < 1:
		return models.Errorf(models.CodeInternal, "expired query with limit %d", q.Limit)
	}
	return nil
}

// Expiry lists expired entities.
type Expiry interface {
	// ListExpired returns the IDs of the entities q selects, in ascending
	// ID order (the byte order of the canonical lower-case UUID text, which
	// is also PostgreSQL's uuid order), at most q.Limit, empty (not nil)
	// if none. Every backend returns the same list for the same data.
	ListExpired(ctx context.Context, q *ExpiredQuery) ([]models.ID, error)
}

// Pool stores the DSS instances of the pool with their heartbeats
// (docs/spec/aux.md). It lives beside the SCD data so that heartbeats are
// replicated, snapshotted and hashed like any other write.
type Pool interface {
	// GetDSSInstance returns nil and no error if id is absent.
	GetDSSInstance(ctx context.Context, id string) (*models.DSSInstance, error)
	// ListDSSInstances returns every instance in increasing ID order (empty,
	// not nil, if none).
	ListDSSInstances(ctx context.Context) ([]*models.DSSInstance, error)
	// UpsertDSSInstance inserts or replaces the instance with inst.ID as
	// given. inst.ID must not be empty.
	UpsertDSSInstance(ctx context.Context, inst *models.DSSInstance) error
}
