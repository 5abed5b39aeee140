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
	// cells maps a level-13 cell to the entities covering it, sorted by
	// start time, latest first (entities starting at the same instant in no
	// particular order). Each entry carries a copy of its entity's time and
	// altitude bounds, so a search filters candidates reading one array in a
	// row instead of looking each up at a random place (a cache miss per
	// candidate), and the start order lets it skip, by binary search, every
	// entity starting after the query ends: a 2 km area has ~850 entries
	// among 100k OIRs spread over a day, of which a one-hour query scans
	// ~70. Latest first, because a new entity usually starts before those
	// planned further ahead (and after expired ones): the insertion shifts
	// what is behind it, and a list's tail is where expired entities would
	// pile up. The entries hold no pointers, so the garbage collector does
	// not scan the index either.
	cells map[models.CellID][]cellEntry
	// unsorted, while set, makes index append to a cell's list instead of
	// inserting in order, until sortCells restores the order: ReadSnapshot
	// loads a table with one sort per list instead of one sorted insertion
	// per entry (which shifted ~half of a list each time: at 100,000 OIRs
	// that was half of a restart's decoding). Only new IDs may be put
	// meanwhile, and nothing searched or removed.
	unsorted bool
	idOf     func(*T) models.ID
	cellsOf  func(*T) []models.CellID
	boundsOf func(*T) bounds
}

// cellEntry is one entity in the index list of one cell.
type cellEntry struct {
	b    bounds
	slot uint32
}

func newTable[T any](idOf func(*T) models.ID, cellsOf func(*T) []models.CellID, boundsOf func(*T) bounds) table[T] {
	return table[T]{
		byID:     map[models.ID]uint32{},
		cells:    map[models.CellID][]cellEntry{},
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
// it occupies. On replacement only the cells that changed are re-indexed, and
// the kept cells' entries only rewritten if the bounds changed.
func (t *table[T]) put(e *T) uint32 {
	id := t.idOf(e)
	b := t.boundsOf(e)
	if slot, ok := t.byID[id]; ok {
		old := t.slots[slot]
		t.slots[slot] = e
		t.reindex(slot, t.cellsOf(old), t.cellsOf(e), t.boundsOf(old), b)
		return slot
	}
	var slot uint32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
		t.slots[slot] = e
	} else {
		slot = uint32(len(t.slots))
		t.slots = append(t.slots, e)
	}
	t.byID[id] = slot
	for _, c := range t.cellsOf(e) {
		t.index(c, cellEntry{b: b, slot: slot})
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
	b := t.boundsOf(old)
	for _, c := range t.cellsOf(old) {
		t.unindex(c, slot, b.start())
	}
	t.slots[slot] = nil
	t.free = append(t.free, slot)
	delete(t.byID, id)
	return old, slot
}

// reindex moves slot from the cells of before, where it is indexed with
// bounds was, to the cells of after with bounds b; both are sorted sets, so
// one merge pass finds the difference. The entries of cells in both are
// rewritten only if the bounds changed.
func (t *table[T]) reindex(slot uint32, before, after []models.CellID, was, b bounds) {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && before[i] < after[j]):
			t.unindex(before[i], slot, was.start())
			i++
		case i == len(before) || after[j] < before[i]:
			t.index(after[j], cellEntry{b: b, slot: slot})
			j++
		default:
			if b != was {
				t.unindex(after[j], slot, was.start())
				t.index(after[j], cellEntry{b: b, slot: slot})
			}
			i++
			j++
		}
	}
}

// index inserts e into the list of c, keeping it sorted by start time,
// latest first.
//
// A full list grows by an eighth rather than by append's factor of 1.25 to
// 2: the index holds ~9 entries of 40 bytes per OIR, and spare capacity of
// up to half of that would cost more heap than the entity itself.
func (t *table[T]) index(c models.CellID, e cellEntry) {
	list := t.cells[c]
	if t.unsorted {
		t.cells[c] = append(list, e)
		return
	}
	if len(list) == cap(list) {
		grown := make([]cellEntry, len(list), len(list)+len(list)/8+2)
		copy(grown, list)
		list = grown
	}
	t.cells[c] = slices.Insert(list, startingBefore(list, e.b.start()), e)
}

// reserve sizes an empty table's ID map and slots for n entities, so that a
// load of known size does not grow them step by step (rehashing the map
// each time).
func (t *table[T]) reserve(n int) {
	if len(t.byID) == 0 && len(t.slots) == 0 {
		t.byID = make(map[models.ID]uint32, n)
		t.slots = make([]*T, 0, n)
	}
}

// sortCells ends an unsorted load: it sorts every cell's list, latest start
// first, and trims the spare capacity that append left to what index's
// growth leaves at most.
func (t *table[T]) sortCells() {
	t.unsorted = false
	for c, list := range t.cells {
		slices.SortFunc(list, func(x, y cellEntry) int {
			switch xs, ys := x.b.start(), y.b.start(); {
			case xs.after(ys):
				return -1
			case ys.after(xs):
				return 1
			}
			return 0
		})
		if spare := len(list)/8 + 2; cap(list)-len(list) > spare {
			t.cells[c] = append(make([]cellEntry, 0, len(list)+spare), list...)
		}
	}
}

// unindex removes slot, indexed with the given start time, from the list of
// c.
func (t *table[T]) unindex(c models.CellID, slot uint32, start stamp) {
	list := t.cells[c]
	k := startingBy(list, start)
	for k < len(list) && list[k].slot != slot {
		k++
	}
	if k == len(list) {
		return // not indexed there: nothing to undo
	}
	list = slices.Delete(list, k, k+1)
	if len(list) == 0 {
		delete(t.cells, c)
	} else {
		t.cells[c] = list
	}
}

// startingBy returns the index of the first entry of list (latest start
// first) that starts at or before s.
func startingBy(list []cellEntry, s stamp) int {
	lo, hi := 0, len(list)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if list[m].b.start().after(s) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// startingBefore returns the index of the first entry of list (latest start
// first) that starts before s.
func startingBefore(list []cellEntry, s stamp) int {
	lo, hi := 0, len(list)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.after(list[m].b.start()) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// search returns the entities sharing at least one cell with the sorted,
// duplicate-free query cells q, whose bounds pass f and that extra (if not
// nil) accepts, sorted by ID.
//
// An entity covering several query cells appears in several index lists.
// Duplicates are dropped by slot number (slotSet, on the stack: readers run
// concurrently), so no entity is touched before it is known to be a
// distinct candidate: dereferencing entities is what costs (cache misses).
func (t *table[T]) search(q []models.CellID, f *filter, extra func(*T) bool) []*T {
	return entitiesOf(t.searchKeyed(q, f, extra))
}

// slotSet drops the duplicate candidates of a search as they are found: an
// entity covering several query cells is listed in each of their index
// lists (a subscription over a 10 km tile is a candidate in every cell of
// a 2 km flight inside it). It is a small open-addressing set that lives
// on the stack; past slotSetMax distinct slots it stops filtering
// (overflowed), and the caller sorts the candidates instead.
type slotSet struct {
	keys       [2 * slotSetMax]uint32 // slot+1; 0 is empty
	n          int
	overflowed bool
}

const slotSetMax = 128

// add reports whether slot is new to the set, or the set has overflowed.
func (s *slotSet) add(slot uint32) bool {
	if s.overflowed {
		return true
	}
	key := slot + 1
	const mask = 2*slotSetMax - 1
	for i := (key * 0x9E3779B1) >> 24 & mask; ; i = (i + 1) & mask {
		switch s.keys[i] {
		case key:
			return false
		case 0:
			if s.n == slotSetMax {
				s.overflowed = true
				return true
			}
			s.keys[i] = key
			s.n++
			return true
		}
	}
}

// searchKeyed is search returning each entity with its slot.
func (t *table[T]) searchKeyed(q []models.CellID, f *filter, extra func(*T) bool) []byIDKey[T] {
	// Room for the candidates of a typical search on the stack.
	var buf [256]uint32
	cand := buf[:0]
	var seen slotSet
	for _, c := range q {
		list := t.cells[c]
		if f.hasEnd {
			// Nothing starting after the query's end matches (§4).
			list = list[startingBy(list, f.end):]
		}
		for k := range list {
			if f.accepts(&list[k].b) && seen.add(list[k].slot) {
				cand = append(cand, list[k].slot)
			}
		}
	}
	if seen.overflowed {
		slices.Sort(cand)
		cand = slices.Compact(cand)
	}
	keyed := make([]byIDKey[T], 0, len(cand))
	for _, slot := range cand {
		if e := t.slots[slot]; extra == nil || extra(e) {
			k := t.key(e)
			k.slot = slot
			keyed = append(keyed, k)
		}
	}
	sortKeys(keyed)
	return keyed
}

// byIDKey sorts entities by ID. Comparing a uint64 of the ID's first 8
// bytes first, and the strings only on a tie, makes sorting a few hundred
// results cheap: the strings' bytes live elsewhere in memory and chasing
// them in every comparison dominated search time.
type byIDKey[T any] struct {
	prefix uint64
	id     models.ID
	e      *T
	slot   uint32 // set by searchKeyed only
}

func (t *table[T]) key(e *T) byIDKey[T] {
	id := t.idOf(e)
	var p [8]byte
	copy(p[:], id) // zero padding sorts a shorter ID first, like strings do
	return byIDKey[T]{prefix: binary.BigEndian.Uint64(p[:]), id: id, e: e}
}

func sortByID[T any](keyed []byIDKey[T]) []*T {
	sortKeys(keyed)
	return entitiesOf(keyed)
}

func sortKeys[T any](keyed []byIDKey[T]) {
	slices.SortFunc(keyed, func(a, b byIDKey[T]) int {
		if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
}

func entitiesOf[T any](keyed []byIDKey[T]) []*T {
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
