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

// Limits of spec §6.3 and §14.
const (
	// maxSubscriptionDuration bounds explicit subscriptions and is the
	// default length of a new one.
	maxSubscriptionDuration = 24 * time.Hour
	// maxStartInPast is how far before the request time an explicit
	// subscription may start (clock skew between USS and DSS).
	maxStartInPast = 5 * time.Minute
	// dependentStartTolerance is how much later than a dependent OIR an
	// updated subscription may start.
	dependentStartTolerance = 5 * time.Minute
)

// availabilities caches the USS availability lookups of one Execute: a key
// check may meet many OIRs of the same manager, and every lookup is a repo
// call inside a Raft apply.
type availabilities struct {
	repo repos.Repo
	seen map[string]models.Availability
}

func newAvailabilities(repo repos.Repo) *availabilities {
	return &availabilities{repo: repo, seen: map[string]models.Availability{}}
}

// of returns the availability of uss, Unknown when it has no record (§5.4).
func (a *availabilities) of(ctx context.Context, uss string) (models.Availability, error) {
	if v, ok := a.seen[uss]; ok {
		return v, nil
	}
	rec, err := a.repo.GetUssAvailability(ctx, uss)
	if err != nil {
		return "", fmt.Errorf("reading the availability of USS %q: %w", uss, err)
	}
	v := models.AvailabilityUnknown
	if rec != nil && rec.Availability != "" {
		v = rec.Availability
	}
	a.seen[uss] = v
	return v, nil
}

// views pairs OIRs with their managers' availability, sorted by ID so that
// results do not depend on the repo's iteration order. Nil entries are
// skipped rather than trusted.
func (a *availabilities) views(ctx context.Context, oirs []*models.OperationalIntent) ([]OperationalIntentView, error) {
	out := make([]OperationalIntentView, 0, len(oirs))
	for _, o := range oirs {
		if o == nil {
			continue
		}
		av, err := a.of(ctx, o.Manager)
		if err != nil {
			return nil, err
		}
		out = append(out, OperationalIntentView{OIR: o, Availability: av})
	}
	slices.SortFunc(out, func(x, y OperationalIntentView) int { return cmp.Compare(x.OIR.ID, y.OIR.ID) })
	return out, nil
}

// sortedOIRs drops nil entries and sorts by ID.
func sortedOIRs(oirs []*models.OperationalIntent) []*models.OperationalIntent {
	out := make([]*models.OperationalIntent, 0, len(oirs))
	for _, o := range oirs {
		if o != nil {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(x, y *models.OperationalIntent) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// sortedConstraints drops nil entries and sorts by ID.
func sortedConstraints(crs []*models.Constraint) []*models.Constraint {
	out := make([]*models.Constraint, 0, len(crs))
	for _, c := range crs {
		if c != nil {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y *models.Constraint) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// notify increments the notification index of every subscription of kind
// matching v and groups them for the response (spec §9). It runs once per
// request over the whole notification volume, so each subscription gets
// exactly +1 however many of the request's volumes it overlaps.
func notify(ctx context.Context, repo repos.Repo, kind models.SubscriberKind, v *models.Volume4D) ([]Subscriber, error) {
	if len(v.Cells) == 0 {
		// No cell, no spatial match (§4); repos need a footprint.
		return []Subscriber{}, nil
	}
	subs, err := repo.IncrementNotificationIndices(ctx, kind, v)
	if err != nil {
		return nil, fmt.Errorf("incrementing notification indices: %w", err)
	}
	return groupSubscribers(subs), nil
}

// groupSubscribers groups subscriptions by USS base URL, sorted by URL and
// then by subscription ID so that every replica returns the same result.
func groupSubscribers(subs []*models.Subscription) []Subscriber {
	sorted := make([]*models.Subscription, 0, len(subs))
	for _, s := range subs {
		if s != nil {
			sorted = append(sorted, s)
		}
	}
	slices.SortFunc(sorted, func(x, y *models.Subscription) int {
		return cmp.Or(cmp.Compare(x.USSBaseURL, y.USSBaseURL), cmp.Compare(x.ID, y.ID))
	})
	out := []Subscriber{}
	for _, s := range sorted {
		if n := len(out); n == 0 || out[n-1].USSBaseURL != s.USSBaseURL {
			out = append(out, Subscriber{USSBaseURL: s.USSBaseURL})
		}
		last := &out[len(out)-1]
		last.Subscriptions = append(last.Subscriptions, SubscriptionState{ID: s.ID, NotificationIndex: s.NotificationIndex})
	}
	return out
}

// timeVolume is the volume subscriptions are matched against: cells and a
// time range, no altitude (spec §4, §9).
func timeVolume(cells []models.CellID, start, end time.Time) *models.Volume4D {
	return &models.Volume4D{Cells: cells, StartTime: &start, EndTime: &end}
}

// spanVolume is the notification volume of an update: the union of the old
// and new cells over the time span covering both (spec §9).
func spanVolume(oldCells []models.CellID, oldStart, oldEnd time.Time, newCells []models.CellID, newStart, newEnd time.Time) *models.Volume4D {
	return timeVolume(models.UnionCells(oldCells, newCells), earlier(oldStart, newStart), later(oldEnd, newEnd))
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// normalizedCells returns a sorted, duplicate-free copy of cells. The cell
// helpers of pkg/models need sorted sets; copying also keeps the operation's
// own slice out of the repo, since an operation may be executed again (SQL
// retry, Raft replay) and must stay unchanged.
func normalizedCells(cells []models.CellID) []models.CellID {
	return models.NormalizeCells(slices.Clone(cells))
}

// onlyDependent reports whether id is the only OIR in deps (spec §8: an
// implicit subscription is released with its last dependent).
func onlyDependent(deps []models.ID, id models.ID) bool {
	for _, d := range deps {
		if d != id {
			return false
		}
	}
	return true
}

// writeTime is the write time of a new version of an entity last written at
// prev: the request time now, or one nanosecond past prev when now is not
// after it. Versions and OVNs derive from write times (spec §3.6), so this
// makes them change on every write and never repeat an earlier one, even
// when a clock stood still or stepped back, or when SQL-backed nodes with
// disagreeing clocks write the same entity in turn. The Raft store hands
// out strictly increasing times already (store.Timestamped), so there now
// is always after prev.
func writeTime(prev, now time.Time) time.Time {
	if now.After(prev) {
		return now
	}
	return prev.Add(time.Nanosecond)
}

// deleteErr wraps the failure to delete an entity read earlier in the same
// operation. NotFound there is a store inconsistency, not the client's 404.
func deleteErr(err error, what string, id models.ID) error {
	if models.CodeOf(err) == models.CodeNotFound {
		return internalf(err, "%s %s vanished while being deleted", what, id)
	}
	return fmt.Errorf("deleting %s %s: %w", what, id, err)
}

// internalf reports a repo state that should not exist (e.g. deleting an
// entity read a moment ago fails with NotFound): a store bug, never the
// client's fault, so the underlying code is not passed on.
func internalf(cause error, format string, args ...any) error {
	return &models.Error{Code: models.CodeInternal, Message: fmt.Sprintf(format, args...), Cause: cause}
}
