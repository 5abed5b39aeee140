package consensus

import "math/bits"

// Snapshot staggering.
//
// Every member applies the same entries, so with one threshold for all
// ("SnapshotEntries entries since my last snapshot") they all reach it at
// about the same index and all snapshot at once: on a small machine three
// serialisations of a large state compete for the same cores and disks, and
// with both followers busy the leader has no quick follower left for its
// quorum. Instead each node snapshots at trigger points of its own, spaced
// SnapshotEntries apart and offset by a phase derived from its raft ID,
// so that the members' snapshots interleave.

// fibonacciMul is 2⁶⁴/φ (φ the golden ratio): id × fibonacciMul mod 2⁶⁴ is
// the fractional part of id/φ as a 64-bit binary fraction. For consecutive
// IDs these fractions are as evenly spread as any sequence can be (the three
// gap theorem): IDs 1, 2, 3 get 0.618, 0.236 and 0.854, at least 0.236
// apart around the circle; random IDs get uniformly random phases.
const fibonacciMul = 0x9E3779B97F4A7C15

// snapshotPhase is node id's offset of its snapshot trigger points, in
// [0, every): it snapshots when its applied index crosses k × every − phase
// for some k.
func snapshotPhase(id, every uint64) uint64 {
	hi, _ := bits.Mul64(id*fibonacciMul, every) // ⌊frac(id/φ) × every⌋
	return hi
}

// minSnapshotSpacing is the fewest entries between two snapshots of one
// node that a trigger point alone starts a new one after: a node whose
// newest snapshot is not on its own trigger points (the first after a
// restart from a bootstrapped state, or one installed from a leader) does
// not snapshot again a few entries later, just because one of its points
// follows closely. Small next to the spacing of the members' phases, so
// that it hardly ever pushes two members' snapshots together.
func minSnapshotSpacing(every uint64) uint64 { return max(1, every/16) }

// snapshotTrigger decides when a node snapshots. The zero value is unusable;
// build one with newSnapshotTrigger.
type snapshotTrigger struct {
	every, phase, minSpacing uint64
}

func newSnapshotTrigger(id, every uint64) snapshotTrigger {
	return snapshotTrigger{every: every, phase: snapshotPhase(id, every), minSpacing: minSnapshotSpacing(every)}
}

// due reports whether a node whose newest snapshot is at snapIndex should
// snapshot at applied: when a trigger point lies in (snapIndex, applied] and
// at least minSpacing entries were applied since the snapshot, and in any
// case once every entries were (which always includes a trigger point, so
// the bound of SnapshotEntries entries between snapshots is kept).
func (t snapshotTrigger) due(snapIndex, applied uint64) bool {
	if applied <= snapIndex {
		return false
	}
	since := applied - snapIndex
	if since >= t.every {
		return true
	}
	return since >= t.minSpacing && t.period(applied) > t.period(snapIndex)
}

// period is the number of trigger points at or below index:
// ⌊(index + phase) / every⌋, computed without overflow.
func (t snapshotTrigger) period(index uint64) uint64 {
	return index/t.every + (index%t.every+t.phase)/t.every
}
