package scd

import (
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// Operation is an SCD operation: one per endpoint that touches the store.
type Operation = store.Operation[repos.Repo]

// Store runs SCD operations.
type Store = store.Store[repos.Repo]

// Operation types. They are written into replicated logs: never renumber or
// reuse a value.
const (
	OpQueryOperationalIntents store.OpType = iota + 1
	OpGetOperationalIntent
	OpPutOperationalIntent
	OpDeleteOperationalIntent
	OpQueryConstraints
	OpGetConstraint
	OpPutConstraint
	OpDeleteConstraint
	OpQuerySubscriptions
	OpGetSubscription
	OpPutSubscription
	OpDeleteSubscription
	OpGetUssAvailability
	OpPutUssAvailability
	// The PUTs carrying a per-USS quota (docs/quotas.md). A PUT whose quota
	// is 0 (none) keeps its original type and encoding above, so a log
	// written without quotas reads the same, and a node run with every
	// quota at 0 writes entries that builds without quotas can apply.
	OpPutOperationalIntentWithQuota
	OpPutConstraintWithQuota
	OpPutSubscriptionWithQuota
	// Eviction of expired entities (exec_evict.go).
	OpEvictExpired
	OpPreviewEviction
)

// Every field of every operation is decided before the operation runs:
// Now is the request time (it becomes UpdatedAt and so drives OVNs and
// versions), generated IDs are chosen by the handler, and volumes arrive
// with their S2 cells computed. Execute reads nothing else.

// QueryOperationalIntents is endpoint 1.
type QueryOperationalIntents struct {
	Caller string
	Area   models.Volume4D
}

// GetOperationalIntent is endpoint 2.
type GetOperationalIntent struct {
	Caller string
	ID     models.ID
}

// NewSubscription asks an OIR PUT to create an implicit subscription (§8).
type NewSubscription struct {
	USSBaseURL           string
	NotifyForConstraints bool
}

// PutOperationalIntent is endpoints 3 (OVN == "") and 4.
type PutOperationalIntent struct {
	Caller string
	Now    time.Time
	ID     models.ID
	// OVN is the path OVN of an update, "" for a create.
	OVN   models.OVN
	State models.OperationalIntentState
	// Extents is the union of the request's extents, all four bounds present.
	Extents    models.Volume4D
	Key        []models.OVN
	USSBaseURL string
	// SubscriptionID is "" when the request names none.
	SubscriptionID  models.ID
	NewSubscription *NewSubscription
	// NewSubscriptionID is the ID an implicit subscription gets if one is
	// created (decided by the handler, used only with NewSubscription).
	NewSubscriptionID models.ID
	// RequestedOVN is "{id}_{suffix}" when the request carried a valid
	// requested_ovn_suffix, else "".
	RequestedOVN models.OVN
	// MaxEntitiesPerCell is the proposing node's quota of OIRs and CRs per
	// USS per cell (0: none), decided by the handler from its flags.
	MaxEntitiesPerCell uint32
}

// DeleteOperationalIntent is endpoint 5.
type DeleteOperationalIntent struct {
	Caller string
	ID     models.ID
	OVN    models.OVN
}

// QueryConstraints is endpoint 6.
type QueryConstraints struct {
	Caller string
	Area   models.Volume4D
}

// GetConstraint is endpoint 7.
type GetConstraint struct {
	Caller string
	ID     models.ID
}

// PutConstraint is endpoints 8 (OVN == "") and 9.
type PutConstraint struct {
	Caller string
	Now    time.Time
	ID     models.ID
	OVN    models.OVN
	// Extents is the union of the request's extents; start and end present.
	Extents    models.Volume4D
	USSBaseURL string
	// MaxEntitiesPerCell is as in PutOperationalIntent.
	MaxEntitiesPerCell uint32
}

// DeleteConstraint is endpoint 10.
type DeleteConstraint struct {
	Caller string
	ID     models.ID
	OVN    models.OVN
}

// QuerySubscriptions is endpoint 11.
type QuerySubscriptions struct {
	Caller string
	Now    time.Time
	Area   models.Volume4D
}

// GetSubscription is endpoint 12.
type GetSubscription struct {
	Caller string
	ID     models.ID
}

// PutSubscription is endpoints 13 (Version == "") and 14.
type PutSubscription struct {
	Caller  string
	Now     time.Time
	ID      models.ID
	Version string
	// Extents as requested: cells computed, times and altitudes optional
	// (normalised inside Execute, spec §6.3 B).
	Extents                     models.Volume4D
	USSBaseURL                  string
	NotifyForOperationalIntents bool
	NotifyForConstraints        bool
	// MaxSubscriptionsPerCell is the proposing node's quota of explicit
	// subscriptions per USS per cell (0: none).
	MaxSubscriptionsPerCell uint32
}

// DeleteSubscription is endpoint 15.
type DeleteSubscription struct {
	Caller  string
	ID      models.ID
	Version string
}

// GetUssAvailability is endpoint 17.
type GetUssAvailability struct {
	USS string
}

// PutUssAvailability is endpoint 18.
type PutUssAvailability struct {
	Now          time.Time
	USS          string
	OldVersion   string
	Availability models.Availability
}

func (*QueryOperationalIntents) Type() store.OpType { return OpQueryOperationalIntents }
func (*GetOperationalIntent) Type() store.OpType    { return OpGetOperationalIntent }
func (*DeleteOperationalIntent) Type() store.OpType { return OpDeleteOperationalIntent }
func (*QueryConstraints) Type() store.OpType        { return OpQueryConstraints }
func (*GetConstraint) Type() store.OpType           { return OpGetConstraint }
func (*DeleteConstraint) Type() store.OpType        { return OpDeleteConstraint }
func (*QuerySubscriptions) Type() store.OpType      { return OpQuerySubscriptions }
func (*GetSubscription) Type() store.OpType         { return OpGetSubscription }
func (*DeleteSubscription) Type() store.OpType      { return OpDeleteSubscription }
func (*GetUssAvailability) Type() store.OpType      { return OpGetUssAvailability }
func (*PutUssAvailability) Type() store.OpType      { return OpPutUssAvailability }

// A PUT with a quota has its own type, so that a build that does not know
// the quota fields refuses the entry (and halts) instead of applying it
// without the quota, diverging from the replicas that do apply it.
func (o *PutOperationalIntent) Type() store.OpType {
	if o.MaxEntitiesPerCell != 0 {
		return OpPutOperationalIntentWithQuota
	}
	return OpPutOperationalIntent
}

func (o *PutConstraint) Type() store.OpType {
	if o.MaxEntitiesPerCell != 0 {
		return OpPutConstraintWithQuota
	}
	return OpPutConstraint
}

func (o *PutSubscription) Type() store.OpType {
	if o.MaxSubscriptionsPerCell != 0 {
		return OpPutSubscriptionWithQuota
	}
	return OpPutSubscription
}

func (*QueryOperationalIntents) ReadOnly() bool { return true }
func (*GetOperationalIntent) ReadOnly() bool    { return true }
func (*PutOperationalIntent) ReadOnly() bool    { return false }
func (*DeleteOperationalIntent) ReadOnly() bool { return false }
func (*QueryConstraints) ReadOnly() bool        { return true }
func (*GetConstraint) ReadOnly() bool           { return true }
func (*PutConstraint) ReadOnly() bool           { return false }
func (*DeleteConstraint) ReadOnly() bool        { return false }
func (*QuerySubscriptions) ReadOnly() bool      { return true }
func (*GetSubscription) ReadOnly() bool         { return true }
func (*PutSubscription) ReadOnly() bool         { return false }
func (*DeleteSubscription) ReadOnly() bool      { return false }
func (*GetUssAvailability) ReadOnly() bool      { return true }
func (*PutUssAvailability) ReadOnly() bool      { return false }

// Write operations expose their request time to the store so that it can
// keep write times strictly increasing (store.Timestamped).
var (
	_ store.Timestamped = (*PutOperationalIntent)(nil)
	_ store.Timestamped = (*PutConstraint)(nil)
	_ store.Timestamped = (*PutSubscription)(nil)
	_ store.Timestamped = (*PutUssAvailability)(nil)
)

func (o *PutOperationalIntent) WriteTime() time.Time     { return o.Now }
func (o *PutOperationalIntent) SetWriteTime(t time.Time) { o.Now = t }
func (o *PutConstraint) WriteTime() time.Time            { return o.Now }
func (o *PutConstraint) SetWriteTime(t time.Time)        { o.Now = t }
func (o *PutSubscription) WriteTime() time.Time          { return o.Now }
func (o *PutSubscription) SetWriteTime(t time.Time)      { o.Now = t }
func (o *PutUssAvailability) WriteTime() time.Time       { return o.Now }
func (o *PutUssAvailability) SetWriteTime(t time.Time)   { o.Now = t }

// Results. Views carry what the response needs besides the entity; OVN
// scrubbing for non-managers happens when rendering (pkg/api), which knows
// the caller.

// OperationalIntentView is an OIR with its manager's availability.
type OperationalIntentView struct {
	OIR          *models.OperationalIntent
	Availability models.Availability
}

// SubscriptionView is a subscription with its dependent OIR IDs.
type SubscriptionView struct {
	Sub        *models.Subscription
	Dependents []models.ID
}

// SubscriptionState is one notified subscription (spec §9).
type SubscriptionState struct {
	ID                models.ID
	NotificationIndex int32
}

// Subscriber groups notified subscriptions by USS base URL, sorted by URL
// and, within one, by ID, so results are deterministic.
type Subscriber struct {
	USSBaseURL    string
	Subscriptions []SubscriptionState
}

// OperationalIntentResult answers endpoints 3, 4 and 5.
type OperationalIntentResult struct {
	OIR         OperationalIntentView
	Subscribers []Subscriber
}

// ConstraintResult answers endpoints 8, 9 and 10.
type ConstraintResult struct {
	CR          *models.Constraint
	Subscribers []Subscriber
}

// PutSubscriptionResult answers endpoints 13 and 14. OIRs is meaningful iff
// Sub.Sub.NotifyForOperationalIntents, CRs iff NotifyForConstraints.
type PutSubscriptionResult struct {
	Sub  SubscriptionView
	OIRs []OperationalIntentView
	CRs  []*models.Constraint
}

// AvailabilityView answers endpoints 17 and 18; Version is "" when the USS
// has no record.
type AvailabilityView struct {
	USS          string
	Availability models.Availability
	Version      string
}

// Result types per operation (what Execute returns, by value):
//   QueryOperationalIntents  []OperationalIntentView
//   GetOperationalIntent     OperationalIntentView
//   Put/DeleteOperationalIntent OperationalIntentResult
//   QueryConstraints         []*models.Constraint
//   GetConstraint            *models.Constraint
//   Put/DeleteConstraint     ConstraintResult
//   QuerySubscriptions       []SubscriptionView
//   GetSubscription          SubscriptionView
//   PutSubscription          PutSubscriptionResult
//   DeleteSubscription       SubscriptionView
//   Get/PutUssAvailability   AvailabilityView
//   EvictExpired             EvictionResult
//   PreviewEviction          EvictionCounts
