package memstore

import "slices"

// Sorting by ID a little at a time, for snapshots.
//
// A snapshot lists entities in ID order. Sorting 100,000 OIRs in one go
// (table.sorted) is tens of milliseconds of one core before the first byte
// is encoded; the Raft node encodes its snapshots in the background at
// about half a core (raftstore's pacedWriter sleeps after each write as
// long as the work before it took), but a sort done up front is one long
// unpaced burst, and on a small machine it takes the CPU from the write
// path. emitInIDOrder produces the same order as a most-significant-byte
// radix sort done lazily, smallest IDs first, and calls a pause function
// every few hundred elements of work (the encoder passes it on to a writer
// that is a Pauser), so that sorting is cut into steps as short as the
// encoding's and is paced with it.
//
// The order is exactly that of table.sorted (strings compared byte by
// byte), for any IDs, not only UUIDs: a span of keys whose IDs all share
// their first d bytes is split into 257 buckets by byte d, IDs that end at
// d first (they sort before every longer ID with that prefix), then by the
// byte's value; the buckets concatenated in that order are in ID order once
// each is, and each is split further the same way, with d+1, until it is
// short enough to be sorted by comparison (a few hundred keys: tens of
// microseconds). Spans whose IDs share a longer prefix (all the IDs of a
// test, say "00000000-0000-4000-8000-…") would fall into one bucket again
// and again; the first time that happens, the span's common prefix is
// measured in one pass and splitting resumes after it, so a shared prefix
// costs two passes, not one per byte.
//
// Each split is one pass over its span to count the bucket sizes and one to
// move the keys into their buckets, in place (a second buffer would double
// the keys' 4 MB at 100,000 OIRs). For random UUIDs (hex digits) 100,000
// IDs go into 16 buckets, then 256 of ~400 keys, which are sorted: two
// splits, then small sorts.

const (
	// idOrderLeaf is the longest span sorted by comparison.
	idOrderLeaf = 512
	// idOrderCheck is the number of elements processed between two calls
	// of the pause function.
	idOrderCheck = 256
)

// idKeys returns the sort keys of the stored entities, in no particular
// order (emitInIDOrder sorts them), calling pause every idOrderCheck
// entities: computing a key dereferences the entity and its ID, a cache
// miss or two each, so this is the slowest pass per element. It reads only
// slots and idOf (Frozen tables hold nothing else).
func (t *table[T]) idKeys(pause func()) *keyArray[T] {
	a := &keyArray[T]{}
	for i, e := range t.slots {
		if e != nil {
			if a.n%keyChunk == 0 {
				// The rest of the slots bound the keys still to come.
				a.chunks = append(a.chunks, make([]byIDKey[T], min(keyChunk, len(t.slots)-i)))
			}
			*a.at(a.n) = t.key(e)
			a.n++
		}
		if i%idOrderCheck == idOrderCheck-1 {
			pause()
		}
	}
	return a
}

// keyArray is an array of n keys stored in chunks of keyChunk (the last one
// may be shorter). One slice of 100,000 keys would be 4 MB allocated at
// once, in the middle of the snapshot: while the garbage collector is
// marking, an allocation makes its goroutine do marking work in proportion
// to its size before it returns (an "assist"), a step of milliseconds that
// no pause can cut; chunks of 160 KB spread that work over the pauses.
type keyArray[T any] struct {
	chunks [][]byIDKey[T]
	n      int
}

const keyChunk = 4096

func (a *keyArray[T]) len() int { return a.n }

func (a *keyArray[T]) at(i int) *byIDKey[T] { return &a.chunks[i/keyChunk][i%keyChunk] }

// idSpan is a run of keys whose IDs all share their first depth bytes,
// still to be sorted.
type idSpan struct{ lo, hi, depth int }

// emitInIDOrder calls emit for the entities of keys in ID order (the order
// of table.sorted), and pause every idOrderCheck elements of work or so
// (counting, moving, sorting, emitting): pause is where the caller may hand
// over what it has encoded and let a pacing writer sleep. Spans of at most
// leaf keys are sorted by comparison. keys is sorted in place.
func emitInIDOrder[T any](keys *keyArray[T], leaf int, pause func(), emit func(*T)) {
	leaf = max(leaf, 1)
	var scratch []byIDKey[T] // for leaves straddling two chunks
	stack := []idSpan{{lo: 0, hi: keys.n}}
	for len(stack) > 0 {
		sp := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := sp.hi - sp.lo
		if n == 0 {
			continue // an empty table
		}
		if n <= leaf {
			var part []byIDKey[T]
			if c := sp.lo / keyChunk; c == (sp.hi-1)/keyChunk {
				part = keys.chunks[c][sp.lo%keyChunk:][:n]
			} else {
				scratch = slices.Grow(scratch[:0], n)[:n]
				part = scratch
				for i := range part {
					part[i] = *keys.at(sp.lo + i)
				}
			}
			sortKeys(part)
			emitKeys(part, emit, pause)
			continue
		}

		var count [257]int
		for i := sp.lo; i < sp.hi; i++ {
			count[idByte(keys.at(i), sp.depth)]++
			if i%idOrderCheck == idOrderCheck-1 {
				pause()
			}
		}
		if count[0] == n {
			// Every ID ends at depth: they are all equal (which IDs
			// in one table never are), so in order.
			for i := sp.lo; i < sp.hi; i++ {
				emit(keys.at(i).e)
			}
			pause()
			continue
		}
		if slices.Max(count[:]) == n {
			// One byte shared by all: skip the whole common prefix.
			sp.depth = commonPrefix(keys, sp, pause)
			stack = append(stack, sp)
			continue
		}

		// Move every key into its bucket, in place (American flag sort):
		// bucket b is [end[b]-count[b], end[b]), and its keys before
		// next[b] are in place. A key out of place is swapped into the
		// next free place of its bucket, and the key found there goes on
		// the same way, until one belonging at the place being filled
		// turns up; every swap puts one key in place for good.
		var next, end [257]int
		sum := sp.lo
		for b, c := range count {
			next[b] = sum
			sum += c
			end[b] = sum
		}
		moved := 0
		for b := range next {
			for next[b] < end[b] {
				k := *keys.at(next[b])
				for {
					kb := idByte(&k, sp.depth)
					if kb == b {
						break
					}
					p := keys.at(next[kb])
					k, *p = *p, k
					next[kb]++
					if moved++; moved%idOrderCheck == 0 {
						pause()
					}
				}
				*keys.at(next[b]) = k
				next[b]++
			}
		}

		// Push the buckets last first, so that the first comes off first.
		for b := 256; b >= 0; b-- {
			if count[b] > 0 {
				stack = append(stack, idSpan{lo: end[b] - count[b], hi: end[b], depth: sp.depth + 1})
			}
		}
	}
}

// idByte is the bucket of a key whose ID shares its first depth bytes with
// the others of its span: 0 if the ID has only depth bytes, else 1 + the
// byte at depth. The first 8 bytes are read from the key's prefix, without
// dereferencing the ID.
func idByte[T any](k *byIDKey[T], depth int) int {
	if depth >= len(k.id) {
		return 0
	}
	if depth < 8 {
		return 1 + int(byte(k.prefix>>(56-8*uint(depth))))
	}
	return 1 + int(k.id[depth])
}

// commonPrefix returns the length of the longest prefix shared by the IDs of
// the keys of sp, which all share their first sp.depth+1 bytes.
func commonPrefix[T any](keys *keyArray[T], sp idSpan, pause func()) int {
	first := keys.at(sp.lo).id
	n := len(first)
	for i := sp.lo + 1; i < sp.hi && n > sp.depth+1; i++ {
		id := keys.at(i).id
		n = min(n, len(id))
		j := sp.depth + 1
		for j < n && id[j] == first[j] {
			j++
		}
		n = j
		if i%idOrderCheck == idOrderCheck-1 {
			pause()
		}
	}
	return n
}

func emitKeys[T any](keys []byIDKey[T], emit func(*T), pause func()) {
	for i := range keys {
		emit(keys[i].e)
		if i%idOrderCheck == idOrderCheck-1 {
			pause()
		}
	}
	pause()
}
