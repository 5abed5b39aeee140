package consensus

import (
	"slices"
	"testing"
)

// circularGaps returns the gaps between points on a circle of length n,
// smallest first.
func circularGaps(points []uint64, n uint64) []uint64 {
	p := slices.Clone(points)
	slices.Sort(p)
	var gaps []uint64
	for i := range p {
		next := p[(i+1)%len(p)]
		if i == len(p)-1 {
			next += n
		}
		gaps = append(gaps, next-p[i])
	}
	slices.Sort(gaps)
	return gaps
}

// The members of a 3-node cluster, whatever their consecutive IDs, get
// distinct trigger points at least a fifth of SnapshotEntries apart, and
// the phase is a pure function of ID and spacing.
func TestSnapshotPhasesAreWellSpread(t *testing.T) {
	for _, every := range []uint64{10, 100, 10_000, 1 << 40} {
		for _, ids := range [][]uint64{{1, 2, 3}, {4, 5, 6}, {1000, 1001, 1002}} {
			var points []uint64
			for _, id := range ids {
				ph := snapshotPhase(id, every)
				if ph >= every {
					t.Fatalf("phase of %d for %d = %d, not below it", id, every, ph)
				}
				if again := snapshotPhase(id, every); again != ph {
					t.Fatalf("phase of %d not deterministic: %d then %d", id, ph, again)
				}
				points = append(points, (every-ph)%every) // the trigger point k·every − phase, mod every
			}
			gaps := circularGaps(points, every)
			if gaps[0] < every/5 {
				t.Errorf("every %d, IDs %v: trigger points %v only %d apart, want ≥ %d", every, ids, points, gaps[0], every/5)
			}
		}
	}
	// IDs 1, 2, 3 at the default spacing, pinned.
	var got []uint64
	for id := uint64(1); id <= 3; id++ {
		got = append(got, snapshotPhase(id, defaultSnapshotEntries))
	}
	if want := []uint64{6180, 2360, 8541}; !slices.Equal(got, want) {
		t.Errorf("phases of IDs 1..3 = %v, want %v", got, want)
	}
}

// Simulates three members applying the same entries in batches: each one
// snapshots once per SnapshotEntries in steady state, never lets more than
// SnapshotEntries entries follow its newest snapshot, never snapshots less
// than minSnapshotSpacing after the previous one, and, after the first round,
// no two members snapshot within a fifth of SnapshotEntries of each other.
func TestSnapshotTriggersAreStaggered(t *testing.T) {
	const every = 10_000
	for _, start := range []uint64{1, 3_000, 123_457} {
		ids := []uint64{1, 2, 3}
		snap := map[uint64]uint64{}
		taken := map[uint64][]uint64{}
		trig := map[uint64]snapshotTrigger{}
		for _, id := range ids {
			snap[id] = start
			trig[id] = newSnapshotTrigger(id, every)
		}
		var all []uint64 // every snapshot index after the first round
		for applied := start; applied < start+20*every; {
			applied += 1 + applied%17 // batches of 1..17 entries
			for _, id := range ids {
				since := applied - snap[id]
				if !trig[id].due(snap[id], applied) {
					if since >= every {
						t.Fatalf("start %d: node %d not due %d entries after its snapshot", start, id, since)
					}
					continue
				}
				if since < minSnapshotSpacing(every) {
					t.Fatalf("start %d: node %d snapshots only %d entries after the previous one", start, id, since)
				}
				snap[id] = applied
				taken[id] = append(taken[id], applied)
				if applied > start+2*every {
					all = append(all, applied)
				}
			}
		}
		for _, id := range ids {
			if n := len(taken[id]); n < 19 || n > 21 {
				t.Errorf("start %d: node %d took %d snapshots over 20 × SnapshotEntries entries", start, id, n)
			}
		}
		slices.Sort(all)
		for i := 1; i < len(all); i++ {
			if d := all[i] - all[i-1]; d < every/5 {
				t.Errorf("start %d: snapshots at %d and %d, only %d entries apart", start, all[i-1], all[i], d)
			}
		}
	}
}

// A node never snapshots at or below its newest snapshot (a snapshot
// installed from a leader can move snapIndex past what was applied before).
func TestSnapshotTriggerNotDueBehindSnapshot(t *testing.T) {
	tr := newSnapshotTrigger(1, 100)
	for _, c := range [][2]uint64{{50, 50}, {50, 10}, {1 << 63, 5}} {
		if tr.due(c[0], c[1]) {
			t.Errorf("due(snapIndex %d, applied %d)", c[0], c[1])
		}
	}
	if !tr.due(0, 100) || !tr.due(^uint64(0)-100, ^uint64(0)) {
		t.Error("not due SnapshotEntries entries after the snapshot")
	}
}
