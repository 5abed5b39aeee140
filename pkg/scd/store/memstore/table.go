package memstore

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/raftdss/dss/pkg/models"
)

// table holds one kind of cell-indexed entity (OIRs, subscriptions or
// constraints).
//
// Entities live in a slot array and are referred to by a uint32 slot number
// everywhere else (cell index, dependents index): a slot is 4 bytes where a
// pointer would be 8 and an ID 16+36, and it keeps the index free of
// pointers the garbage collector would have to scan. Slot numbers are an
// internal detail: they depend on the history of writes (a replica restored
// from a snapshot numbers entities differently from one that replayed the
// log), so nothing observable may depend on them. Every result leaving the
// package is sorted by ID instead.
//
// Stored entities are immutable: replacing one installs a new pointer, so a
// pointer handed to the undo log or copied out stays valid.
type table[T any] struct {
	byID  map[models.ID]uint32
	slots []*T
	free  []uint32
	// cells maps a level-13 cell to the slots of the entities covering it,
	// in no particular order (removal swaps with the last element).
	cells map[models.CellID][]uint32
	// bounds[slot] copies the time and altitude bounds of slots[slot] into
	// one contiguous array: a search filters hundreds of candidates per
	// query cell, and reading 32 bytes in a row instead of chasing a pointer
	// to each entity is what keeps a 2 km search among 100k OIRs within
	// tens of microseconds.
	bounds   []bounds
	idOf     func(*T) models.ID
	cellsOf  func(*T) []models.CellID
	boundsOf func(*T) bounds
}

func newTable[T any](idOf func(*T) models.ID, cellsOf func(*T) []models.CellID, boundsOf func(*T) bounds) table[T] {
	return table[T]{
		byID:     map[models.ID]uint32{},
		cells:    map[models.CellID][]uint32{},
		idOf:     idOf,
		cellsOf:  cellsOf,
		boundsOf: boundsOf,
	}
}

func (t *table[T]) len() int { return len(t.byID) }

// get returns the stored entity or nil.
func (t *table[T]) get(id models.ID) *T {
	slot, ok := t.byID[id]
	if !ok {
		return nil
	}
	return t.slots[slot]
}

// put inserts e or replaces the entity with the same ID, and returns the slot
// it occupies. On replacement only the cells that changed are re-indexed.
func (t *table[T]) put(e *T) uint32 {
	id := t.idOf(e)
	if slot, ok := t.byID[id]; ok {
		old := t.slots[slot]
		t.slots[slot] = e
		t.bounds[slot] = t.boundsOf(e)
		t.reindex(slot, t.cellsOf(old), t.cellsOf(e))
		return slot
	}
	var slot uint32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
		t.slots[slot] = e
		t.bounds[slot] = t.boundsOf(e)
	} else {
		slot = uint32(len(t.slots))
		t.slots = append(t.slots, e)
		t.bounds = append(t.bounds, t.boundsOf(e))
	}
	t.byID[id] = slot
	for _, c := range t.cellsOf(e) {
		t.cells[c] = append(t.cells[c], slot)
	}
	return slot
}

// remove deletes the entity with this ID and returns it (nil if absent) and
// the slot it occupied.
func (t *table[T]) remove(id models.ID) (*T, uint32) {
	slot, ok := t.byID[id]
	if !ok {
		return nil, 0
	}
	old := t.slots[slot]
	for _, c := range t.cellsOf(old) {
		t.unindex(c, slot)
	}
	t.slots[slot] = nil
	t.free = append(t.free, slot)
	delete(t.byID, id)
	return old, slot
}

// reindex moves slot from the cells of before to the cells of after; both
// are sorted sets, so one merge pass finds the difference.
func (t *table[T]) reindex(slot uint32, before, after []models.CellID) {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && before[i] < after[j]):
			t.unindex(before[i], slot)
			i++
		case i == len(before) || after[j] < before[i]:
			t.cells[after[j]] = append(t.cells[after[j]], slot)
			j++
		default:
			i++
			j++
		}
	}
}

func (t *table[T]) unindex(c models.CellID, slot uint32) {
	list := t.cells[c]
	for k, s := range list {
		if s != slot {
			continue
		}
		last := len(list) - 1
		list[k] = list[last]
		list = list[:last]
		if len(list) == 0 {
			delete(t.cells, c)
		} else {
			t.cells[c] = list
		}
		return
	}
}

// search returns the entities sharing at least one cell with the sorted,
// duplicate-free query cells q, whose bounds pass f and that extra (if not
// nil) accepts, sorted by ID.
//
// An entity covering several query cells appears in several index lists.
// Duplicates are removed by sorting the candidate slot numbers, which needs
// no shared scratch memory (readers run concurrently) and touches no entity
// before it is known to be a distinct candidate: dereferencing entities is
// what costs (cache misses), not sorting a few hundred integers.
func (t *table[T]) search(q []models.CellID, f *filter, extra func(*T) bool) []*T {
	var cand []uint32
	for _, c := range q {
		for _, slot := range t.cells[c] {
			if f.accepts(&t.bounds[slot]) {
				cand = append(cand, slot)
			}
		}
	}
	if len(q) > 1 {
		slices.Sort(cand)
		cand = slices.Compact(cand)
	}
	keyed := make([]byIDKey[T], 0, len(cand))
	for _, slot := range cand {
		if e := t.slots[slot]; extra == nil || extra(e) {
			keyed = append(keyed, t.key(e))
		}
	}
	return sortByID(keyed)
}

// byIDKey sorts entities by ID. Comparing a uint64 of the ID's first 8
// bytes first, and the strings only on a tie, makes sorting a few hundred
// results cheap: the strings' bytes live elsewhere in memory and chasing
// them in every comparison dominated search time.
type byIDKey[T any] struct {
	prefix uint64
	id     models.ID
	e      *T
}

func (t *table[T]) key(e *T) byIDKey[T] {
	id := t.idOf(e)
	var p [8]byte
	copy(p[:], id) // zero padding sorts a shorter ID first, like strings do
	return byIDKey[T]{prefix: binary.BigEndian.Uint64(p[:]), id: id, e: e}
}

func sortByID[T any](keyed []byIDKey[T]) []*T {
	slices.SortFunc(keyed, func(a, b byIDKey[T]) int {
		if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	out := make([]*T, len(keyed))
	for i := range keyed {
		out[i] = keyed[i].e
	}
	return out
}

// sorted lists every stored entity in ID order (snapshots, tests).
func (t *table[T]) sorted() []*T {
	keyed := make([]byIDKey[T], 0, len(t.byID))
	for _, e := range t.slots {
		if e != nil {
			keyed = append(keyed, t.key(e))
		}
	}
	return sortByID(keyed)
}
