package e2e

import (
	"testing"
)

// snapshotLogMsg is what pkg/raftstore/consensus logs when a follower
// installs a snapshot sent by the leader.
const snapshotLogMsg = "installed snapshot from leader"

// TestKilledFollowerCatchesUp kills -9 a follower, writes while it is down,
// and restarts it from its data directory: it must rejoin (WAL replay, then
// entries from the leader), reach the leader's applied index with an equal
// state hash, and serve the writes it missed.
func TestKilledFollowerCatchesUp(t *testing.T) {
	c := NewCluster(t, Options{Dev: true})
	all := c.Running()
	before := c.WriteOIRs(t, 40, all)

	f := c.Follower()
	c.KillNode(f)
	t.Logf("killed follower node %d (kill -9)", f+1)
	// Fewer writes than catchupEntries: the leader can usually still send
	// the missing entries themselves (the snapshot path has its own test).
	missed := c.WriteOIRs(t, catchupEntries/2, others(all, f))

	c.RestartNode(f)
	c.WaitEqualHashes()
	c.CheckOIRs(t, missed, []int{f})
	c.CheckOIRs(t, before, []int{f})
}

// TestStoppedFollowerCatchesUpBySnapshot stops a follower gracefully, writes
// more than snapshotEntries+catchupEntries entries so the leader snapshots
// and compacts its log past everything the follower has, and restarts the
// follower: the leader can no longer send entries, so the follower must
// install the leader's snapshot (its log says so), then converge to the same
// state hash and serve the writes it missed.
func TestStoppedFollowerCatchesUpBySnapshot(t *testing.T) {
	c := NewCluster(t, Options{Dev: true})
	all := c.Running()
	c.WriteOIRs(t, 20, all)

	f := c.Follower()
	st, err := c.Status(f)
	if err != nil {
		t.Fatal(err)
	}
	c.StopNode(f)
	t.Logf("stopped follower node %d (SIGTERM) at applied index %d", f+1, st.AppliedIndex)

	// Every OIR create is one log entry; snapshots come every
	// snapshotEntries applied entries and keep catchupEntries below them,
	// so this many entries guarantee a compaction past the follower.
	n := snapshotEntries + catchupEntries + 50
	missed := c.WriteOIRs(t, n, others(all, f))
	ls, err := c.Status(c.Leader())
	if err != nil {
		t.Fatal(err)
	}
	if ls.AppliedIndex < st.AppliedIndex+uint64(snapshotEntries+catchupEntries) {
		t.Fatalf("leader applied index %d: fewer than %d entries past the follower's %d; the test proves nothing",
			ls.AppliedIndex, snapshotEntries+catchupEntries, st.AppliedIndex)
	}

	c.RestartNode(f)
	c.WaitEqualHashes()
	if log := c.LogSinceStart(f); !logContains(log, snapshotLogMsg) {
		t.Errorf("node %d caught up from applied index %d to %d without installing a snapshot "+
			"(no %q in its log since the restart)", f+1, st.AppliedIndex, ls.AppliedIndex, snapshotLogMsg)
	}
	c.CheckOIRs(t, missed, []int{f})
}
