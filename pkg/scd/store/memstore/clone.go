package memstore

import (
	"crypto/sha256"
	"io"
	"maps"
)

// Frozen is a point-in-time, read-only copy of a State's contents, made for
// one purpose: writing the canonical snapshot (WriteSnapshot, Hash) of the
// state as it was at Freeze while the State itself goes on applying writes.
//
// Why it exists: a Raft snapshot of 100,000 OIRs takes ~100+ ms to
// serialise, and doing that under the state's lock stalls every apply, and
// therefore every write of the cluster, for that long. Freezing copies only
// the slot arrays of entity pointers and the small availability map (~2 ms
// for 100,000 OIRs); the slow part (sorting by ID, encoding, checksumming)
// then runs on another goroutine, as in etcd, whose snapshots are taken from
// a point-in-time view in the background while the Ready loop keeps
// applying.
//
// Sharing the pointers is sound because stored entities are immutable: the
// Repo methods (upserts, IncrementNotificationIndices, deletes) install new
// values, rollback re-installs old ones as they are (restore*, retain), and
// nothing writes through a stored pointer or the slices an entity holds
// (cells, past OVNs, altitudes).
//
// Dependencies on State's internals (this file is kept apart from them):
// WriteSnapshot must read only lastWrite, avail, instances and, of each table, what
// table.idKeys reads (slots and idOf); entities must stay immutable once
// stored. TestFreeze* (run with -race) fail if that changes.
type Frozen struct {
	s State
}

// Freeze returns a Frozen copy of s as it is now. It reads s, so it must not
// run concurrently with a write Apply (the Raft state machine calls it on the
// goroutine that applies, between two applies). The Frozen's methods may then run on
// any goroutine, concurrently with anything done to s.
func (s *State) Freeze() *Frozen {
	return &Frozen{s: State{
		oirs:      s.oirs.freeze(),
		subs:      s.subs.freeze(),
		crs:       s.crs.freeze(),
		avail:     maps.Clone(s.avail),
		instances: maps.Clone(s.instances),
		lastWrite: s.lastWrite,
	}}
}

// freeze returns a table holding only what sorting by ID needs: the live
// entities' pointers. The indexes (byID, cells, bounds) are left out: a
// Frozen is never searched or written.
func (t *table[T]) freeze() table[T] {
	slots := make([]*T, 0, len(t.byID))
	for _, e := range t.slots {
		if e != nil {
			slots = append(slots, e)
		}
	}
	return table[T]{slots: slots, idOf: t.idOf, cellsOf: t.cellsOf, boundsOf: t.boundsOf}
}

// LenOperationalIntents returns the number of OIRs in the frozen state.
func (f *Frozen) LenOperationalIntents() int { return len(f.s.oirs.slots) }

// WriteSnapshot writes the canonical encoding of the frozen state to w:
// exactly the bytes State.WriteSnapshot wrote at Freeze.
func (f *Frozen) WriteSnapshot(w io.Writer) error { return f.s.WriteSnapshot(w) }

// Hash returns the SHA-256 of the canonical encoding, as State.Hash did at
// Freeze.
func (f *Frozen) Hash() [32]byte {
	h := sha256.New()
	_ = f.WriteSnapshot(h) // writing to a hash never fails
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
