package memstore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// Entities is the whole content of a State as plain values: what moving data
// between stores (dssctl copy-sql-to-raft, copy-raft-to-sql) needs without
// going through operations, which would assign new write times and OVNs.
//
// Every list is sorted by ID (availability records by USS), so two equal
// states give equal Entities and the order never depends on write history.
type Entities struct {
	// LastWrite is the write time of the newest applied write operation
	// (store.Timestamped); it keeps later write times, and so OVNs,
	// strictly increasing.
	LastWrite          time.Time
	Availabilities     []*models.UssAvailability
	Subscriptions      []*models.Subscription
	Constraints        []*models.Constraint
	OperationalIntents []*models.OperationalIntent
	// DSSInstances are the pool's instances with their latest heartbeat
	// (docs/spec/aux.md), nil when there are none.
	DSSInstances []*models.DSSInstance
}

// Entities returns deep copies of every entity of s. Like the other read
// methods it does not modify s.
func (s *State) Entities() *Entities {
	e := &Entities{LastWrite: s.lastWrite}

	e.Availabilities = make([]*models.UssAvailability, 0, len(s.avail))
	for _, a := range s.avail {
		c := *a
		e.Availabilities = append(e.Availabilities, &c)
	}
	sortByKey(e.Availabilities, func(a *models.UssAvailability) string { return a.USS })

	for _, sub := range s.subs.sorted() {
		c := *sub
		c.Cells = slices.Clone(c.Cells)
		e.Subscriptions = append(e.Subscriptions, &c)
	}
	for _, cr := range s.crs.sorted() {
		c := *cr
		ownAltitudes(&c)
		c.Cells = slices.Clone(c.Cells)
		e.Constraints = append(e.Constraints, &c)
	}
	for _, o := range s.oirs.sorted() {
		c := *o
		c.Cells = slices.Clone(c.Cells)
		c.PastOVNs = slices.Clone(c.PastOVNs)
		e.OperationalIntents = append(e.OperationalIntents, &c)
	}
	if len(s.instances) > 0 {
		e.DSSInstances = sortedInstances(s.instances, true)
	}
	return e
}

// NewStateFromEntities builds a State holding exactly the given entities,
// normalised as the repo stores them (UTC instants, cells as a sorted set,
// no empty PastOVNs slice). It does not modify e or keep references into it.
//
// It refuses what a State cannot hold: an empty or duplicate ID (or USS), and
// an OIR referencing a subscription that is not among e.Subscriptions (the
// foreign key both stores keep, spec §11).
//
// The state's last write time is the later of e.LastWrite and the newest
// UpdatedAt of any entity: a source that does not record it (PostgreSQL)
// then still never lets a later write reuse an earlier write time, and so an
// OVN (spec §10).
func NewStateFromEntities(e *Entities) (*State, error) {
	if e == nil {
		return nil, errors.New("memstore: nil Entities")
	}
	s := NewState()
	last := e.LastWrite.UTC()
	raise := func(t time.Time) {
		if t.After(last) {
			last = t
		}
	}

	for _, a := range e.Availabilities {
		if a == nil || a.USS == "" {
			return nil, errors.New("memstore: availability record without USS")
		}
		if s.avail[a.USS] != nil {
			return nil, fmt.Errorf("memstore: duplicate availability record for USS %q", a.USS)
		}
		c := *a
		c.UpdatedAt = c.UpdatedAt.UTC()
		raise(c.UpdatedAt)
		s.putAvail(&c)
	}
	for _, sub := range e.Subscriptions {
		if sub == nil || sub.ID == "" {
			return nil, errors.New("memstore: subscription without ID")
		}
		if s.subs.get(sub.ID) != nil {
			return nil, fmt.Errorf("memstore: duplicate subscription %s", sub.ID)
		}
		c := *sub
		c.StartTime, c.EndTime, c.UpdatedAt = c.StartTime.UTC(), c.EndTime.UTC(), c.UpdatedAt.UTC()
		c.Cells = ownCells(c.Cells)
		raise(c.UpdatedAt)
		s.putSub(&c)
	}
	for _, cr := range e.Constraints {
		if cr == nil || cr.ID == "" {
			return nil, errors.New("memstore: constraint without ID")
		}
		if s.crs.get(cr.ID) != nil {
			return nil, fmt.Errorf("memstore: duplicate constraint %s", cr.ID)
		}
		c := *cr
		ownAltitudes(&c)
		c.StartTime, c.EndTime, c.UpdatedAt = c.StartTime.UTC(), c.EndTime.UTC(), c.UpdatedAt.UTC()
		c.Cells = ownCells(c.Cells)
		raise(c.UpdatedAt)
		s.putCR(&c)
	}
	for _, o := range e.OperationalIntents {
		if o == nil || o.ID == "" {
			return nil, errors.New("memstore: operational intent without ID")
		}
		if s.oirs.get(o.ID) != nil {
			return nil, fmt.Errorf("memstore: duplicate operational intent %s", o.ID)
		}
		c := *o
		if c.SubscriptionID != "" {
			sub := s.subs.get(c.SubscriptionID)
			if sub == nil {
				return nil, fmt.Errorf("memstore: operational intent %s references unknown subscription %s", c.ID, c.SubscriptionID)
			}
			c.SubscriptionID = sub.ID
		}
		c.StartTime, c.EndTime, c.UpdatedAt = c.StartTime.UTC(), c.EndTime.UTC(), c.UpdatedAt.UTC()
		c.Cells = ownCells(c.Cells)
		c.PastOVNs = slices.Clone(c.PastOVNs)
		if len(c.PastOVNs) == 0 {
			c.PastOVNs = nil
		}
		raise(c.UpdatedAt)
		s.putOIR(&c)
	}
	// Heartbeat times are reported times, not write times: they do not
	// raise the last write time.
	for _, inst := range e.DSSInstances {
		if inst == nil || inst.ID == "" {
			return nil, errors.New("memstore: DSS instance without ID")
		}
		if s.instances[inst.ID] != nil {
			return nil, fmt.Errorf("memstore: duplicate DSS instance %q", inst.ID)
		}
		c := *inst
		c.Heartbeat.Timestamp = c.Heartbeat.Timestamp.UTC()
		c.Heartbeat.NextExpectedBefore = c.Heartbeat.NextExpectedBefore.UTC()
		s.instances[c.ID] = &c
	}
	s.lastWrite = last
	return s, nil
}

// ownCells returns a sorted, duplicate-free copy of cells that shares no
// memory with the caller's slice (nil for none, as after a snapshot).
func ownCells(cells []models.CellID) []models.CellID {
	if len(cells) == 0 {
		return nil
	}
	return models.NormalizeCells(slices.Clone(cells))
}
