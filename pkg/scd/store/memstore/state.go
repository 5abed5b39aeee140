package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// State is all SCD data of one node: OIRs, subscriptions, constraints and
// USS availability records, with an S2 cell index per entity kind and an
// index from subscription to dependent OIRs.
//
// State is a deterministic state machine: the same sequence of Apply calls
// leaves every replica with the same Hash. It reads no clock or randomness,
// starts no goroutines, and nothing it returns depends on map iteration order.
//
// State is not safe for concurrent use, with one exception: Apply of
// read-only operations, and the read methods (WriteSnapshot, Hash, Len*),
// never modify it, so any number of them may run concurrently as long as no
// write Apply runs at the same time.
type State struct {
	oirs  table[models.OperationalIntent]
	subs  table[models.Subscription]
	crs   table[models.Constraint]
	avail map[string]*models.UssAvailability
	// instances are the pool's DSS instances with their latest heartbeat
	// (repos.Pool), by ID.
	instances map[string]*models.DSSInstance

	// dependents maps a subscription ID to the slots of the OIRs whose
	// SubscriptionID it is (spec §5.3 dependent_operational_intents).
	dependents map[models.ID][]uint32

	// oirOVNs[slot] is the OVN of oirs.slots[slot] ("" for a free slot),
	// derived once when the OIR is stored: a key check needs the OVN of
	// every OIR it meets, dozens per PUT, and deriving one costs a SHA-256.
	// It is a cache of a function of the stored OIR, not part of the
	// snapshot.
	oirOVNs []models.OVN

	// strs interns managers, base URLs and states: a few USSs write most of
	// the entities, so sharing one copy of each string saves ~100 bytes per
	// entity. Interned strings are cloned on first use so that a stored
	// entity never pins the request buffer its strings were sliced from.
	strs map[string]*interned

	// lastWrite is the write time of the newest applied write operation;
	// see store.Timestamped. It is part of the snapshot.
	lastWrite time.Time

	// undo records the inverse of every change made by the write Apply in
	// progress; it is reused between Applies to keep writes allocation-light.
	undo []undoEntry
}

type interned struct {
	s    string
	refs int
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		oirs: newTable(func(o *models.OperationalIntent) models.ID { return o.ID },
			func(o *models.OperationalIntent) []models.CellID { return o.Cells }, oirBounds),
		subs: newTable(func(s *models.Subscription) models.ID { return s.ID },
			func(s *models.Subscription) []models.CellID { return s.Cells }, subBounds),
		crs: newTable(func(c *models.Constraint) models.ID { return c.ID },
			func(c *models.Constraint) []models.CellID { return c.Cells }, crBounds),
		avail:      map[string]*models.UssAvailability{},
		instances:  map[string]*models.DSSInstance{},
		dependents: map[models.ID][]uint32{},
		strs:       map[string]*interned{},
	}
}

// LenOperationalIntents returns the number of stored OIRs.
func (s *State) LenOperationalIntents() int { return s.oirs.len() }

// LenSubscriptions returns the number of stored subscriptions.
func (s *State) LenSubscriptions() int { return s.subs.len() }

// LenConstraints returns the number of stored constraints.
func (s *State) LenConstraints() int { return s.crs.len() }

// LenUssAvailabilities returns the number of stored availability records.
func (s *State) LenUssAvailabilities() int { return len(s.avail) }

// Apply runs op against the state all-or-nothing (spec §10, Raft backend):
// if Execute returns an error or panics, every change it made is undone and
// the state is exactly as before. A panic is reported as a CodeInternal
// error so that one bad entry cannot crash every replica that applies it.
//
// A read-only op gets a view whose mutating methods fail with CodeInternal;
// such an Apply does not modify the state. ctx is passed to Execute but the
// state itself never consults it: cancelling must not make replicas diverge.
func (s *State) Apply(ctx context.Context, op store.Operation[repos.Repo]) (res any, err error) {
	if op == nil {
		return nil, models.Errorf(models.CodeInternal, "memstore: nil operation")
	}
	readOnly := op.ReadOnly()
	r := &repo{s: s, readOnly: readOnly}
	var prevWrite time.Time
	if !readOnly {
		s.undo = s.undo[:0]
		if ts, ok := op.(store.Timestamped); ok {
			// Raise a write time that does not advance past the previous one
			// (spec §10: strictly increasing per log, so OVNs never repeat).
			prevWrite = s.lastWrite
			if t := ts.WriteTime(); !t.After(s.lastWrite) {
				ts.SetWriteTime(s.lastWrite.Add(time.Nanosecond))
			}
			s.lastWrite = ts.WriteTime()
		}
	}
	defer func() {
		// The repo must not outlive Execute (store.Operation contract); a
		// retained one would otherwise write outside any transaction.
		r.closed = true
		if p := recover(); p != nil {
			res = nil
			err = &models.Error{Code: models.CodeInternal,
				Message: fmt.Sprintf("operation type %d panicked", op.Type()),
				Cause:   fmt.Errorf("panic: %v", p)}
		}
		if !readOnly {
			if err != nil {
				s.rollback()
				if _, ok := op.(store.Timestamped); ok {
					s.lastWrite = prevWrite
				}
			}
			clear(s.undo) // drop references to old entities
			s.undo = s.undo[:0]
		}
	}()
	return op.Execute(ctx, r)
}

// undoEntry restores one entity to what it was before a write: the old value,
// or absence when old is nil.
type undoEntry struct {
	kind  entityKind
	id    string
	oir   *models.OperationalIntent
	sub   *models.Subscription
	cr    *models.Constraint
	avail *models.UssAvailability
	inst  *models.DSSInstance
}

type entityKind uint8

const (
	kindOIR entityKind = iota
	kindSub
	kindCR
	kindAvail
	kindInstance
)

// rollback undoes the recorded changes in reverse order, so every
// intermediate state it passes through was a real state of the transaction
// (an OIR is removed before the subscription it referenced).
func (s *State) rollback() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := &s.undo[i]
		id := models.ID(u.id)
		switch u.kind {
		case kindOIR:
			if u.oir != nil {
				s.restoreOIR(u.oir)
			} else {
				s.removeOIR(id)
			}
		case kindSub:
			if u.sub != nil {
				s.restoreSub(u.sub)
			} else {
				s.removeSub(id)
			}
		case kindCR:
			if u.cr != nil {
				s.restoreCR(u.cr)
			} else {
				s.removeCR(id)
			}
		case kindAvail:
			if u.avail != nil {
				s.putAvail(u.avail)
			} else {
				s.removeAvail(u.id)
			}
		case kindInstance:
			if u.inst != nil {
				s.instances[u.id] = u.inst
			} else {
				delete(s.instances, u.id)
			}
		}
	}
}

// intern returns the shared copy of v and takes a reference to it.
func (s *State) intern(v string) string {
	if v == "" {
		return ""
	}
	if e, ok := s.strs[v]; ok {
		e.refs++
		return e.s
	}
	c := strings.Clone(v)
	s.strs[c] = &interned{s: c, refs: 1}
	return c
}

// retain takes a reference to v, a string of an entity that was stored
// before (restored by rollback) and so already is a state-owned copy. The
// entity keeps its own copy even if another one is interned now: a stored
// entity is never written (see Freeze, which reads them concurrently).
func (s *State) retain(v string) {
	if v == "" {
		return
	}
	if e, ok := s.strs[v]; ok {
		e.refs++
		return
	}
	s.strs[v] = &interned{s: v, refs: 1}
}

// release drops a reference taken by intern or retain.
func (s *State) release(v string) {
	if v == "" {
		return
	}
	if e, ok := s.strs[v]; ok {
		e.refs--
		if e.refs <= 0 {
			delete(s.strs, v)
		}
	}
}

// The put*/restore*/remove* primitives below maintain every index and the
// intern table. They record nothing: the repo records undo entries before
// calling them, and rollback calls them to restore. A value given to put*
// must be the state's own copy, not yet stored: put* interns its strings in
// place. restore* re-installs a value that was stored before (from the undo
// log) as it is, without writing to it.

func (s *State) putOIR(o *models.OperationalIntent) {
	s.unlinkOIR(o.ID)
	o.Manager = s.intern(o.Manager)
	o.USSBaseURL = s.intern(o.USSBaseURL)
	o.State = models.OperationalIntentState(s.intern(string(o.State)))
	s.linkOIR(o)
}

func (s *State) restoreOIR(o *models.OperationalIntent) {
	s.unlinkOIR(o.ID)
	s.retain(o.Manager)
	s.retain(o.USSBaseURL)
	s.retain(string(o.State))
	s.linkOIR(o)
}

// unlinkOIR drops the references the stored OIR with this ID (if any) holds
// on interned strings and its subscription, before it is replaced.
func (s *State) unlinkOIR(id models.ID) {
	if slot, ok := s.oirs.byID[id]; ok {
		old := s.oirs.slots[slot]
		s.releaseOIR(old)
		s.unlinkDependent(old.SubscriptionID, slot)
	}
}

// linkOIR stores o, whose strings are referenced already, and indexes it.
func (s *State) linkOIR(o *models.OperationalIntent) {
	slot := s.oirs.put(o)
	if o.SubscriptionID != "" {
		s.dependents[o.SubscriptionID] = append(s.dependents[o.SubscriptionID], slot)
	}
	if n := len(s.oirs.slots); len(s.oirOVNs) < n {
		s.oirOVNs = append(s.oirOVNs, make([]models.OVN, n-len(s.oirOVNs))...)
	}
	s.oirOVNs[slot] = o.OVN()
}

func (s *State) removeOIR(id models.ID) *models.OperationalIntent {
	old, slot := s.oirs.remove(id)
	if old != nil {
		s.releaseOIR(old)
		s.unlinkDependent(old.SubscriptionID, slot)
		s.oirOVNs[slot] = ""
	}
	return old
}

func (s *State) releaseOIR(o *models.OperationalIntent) {
	s.release(o.Manager)
	s.release(o.USSBaseURL)
	s.release(string(o.State))
}

func (s *State) unlinkDependent(subID models.ID, slot uint32) {
	if subID == "" {
		return
	}
	list := s.dependents[subID]
	if i := slices.Index(list, slot); i >= 0 {
		list[i] = list[len(list)-1]
		list = list[:len(list)-1]
	}
	if len(list) == 0 {
		delete(s.dependents, subID)
	} else {
		s.dependents[subID] = list
	}
}

func (s *State) putSub(sub *models.Subscription) {
	if old := s.subs.get(sub.ID); old != nil {
		s.release(old.Manager)
		s.release(old.USSBaseURL)
	}
	sub.Manager = s.intern(sub.Manager)
	sub.USSBaseURL = s.intern(sub.USSBaseURL)
	s.subs.put(sub)
}

func (s *State) restoreSub(sub *models.Subscription) {
	if old := s.subs.get(sub.ID); old != nil {
		s.release(old.Manager)
		s.release(old.USSBaseURL)
	}
	s.retain(sub.Manager)
	s.retain(sub.USSBaseURL)
	s.subs.put(sub)
}

// bumpSub stores sub in slot, in place of the subscription there, of which
// it is a copy with another NotificationIndex: same ID, strings, cells and
// bounds, so the intern table and the index stay as they are. This is what
// every write pays per matching subscription (spec §9).
func (s *State) bumpSub(slot uint32, sub *models.Subscription) {
	s.subs.slots[slot] = sub
}

func (s *State) removeSub(id models.ID) *models.Subscription {
	old, _ := s.subs.remove(id)
	if old != nil {
		s.release(old.Manager)
		s.release(old.USSBaseURL)
	}
	return old
}

func (s *State) putCR(c *models.Constraint) {
	if old := s.crs.get(c.ID); old != nil {
		s.release(old.Manager)
		s.release(old.USSBaseURL)
	}
	c.Manager = s.intern(c.Manager)
	c.USSBaseURL = s.intern(c.USSBaseURL)
	s.crs.put(c)
}

func (s *State) restoreCR(c *models.Constraint) {
	if old := s.crs.get(c.ID); old != nil {
		s.release(old.Manager)
		s.release(old.USSBaseURL)
	}
	s.retain(c.Manager)
	s.retain(c.USSBaseURL)
	s.crs.put(c)
}

func (s *State) removeCR(id models.ID) *models.Constraint {
	old, _ := s.crs.remove(id)
	if old != nil {
		s.release(old.Manager)
		s.release(old.USSBaseURL)
	}
	return old
}

func (s *State) putAvail(a *models.UssAvailability) { s.avail[a.USS] = a }

func (s *State) removeAvail(uss string) { delete(s.avail, uss) }

// dependentIDs returns the IDs of the OIRs depending on subID, sorted.
func (s *State) dependentIDs(subID models.ID) []models.ID {
	slots := s.dependents[subID]
	ids := make([]models.ID, 0, len(slots))
	for _, slot := range slots {
		ids = append(ids, s.oirs.slots[slot].ID)
	}
	slices.SortFunc(ids, cmp.Compare)
	return ids
}
