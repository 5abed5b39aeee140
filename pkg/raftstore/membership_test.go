package raftstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

func (c *cluster) node(id uint64) *consensus.Node { return c.store(id).Node() }

func addMember(t *testing.T, n *consensus.Node, id uint64, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.AddMember(ctx, id, addr)
}

func removeMember(t *testing.T, n *consensus.Node, id uint64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.RemoveMember(ctx, id)
}

func memberIDs(m consensus.Membership) []uint64 {
	var ids []uint64
	for _, mb := range m.Members {
		ids = append(ids, mb.ID)
	}
	return ids
}

// waitMembers waits until node id sees exactly the members want.
func (c *cluster) waitMembers(id uint64, want ...uint64) consensus.Membership {
	c.t.Helper()
	var m consensus.Membership
	waitFor(c.t, 10*time.Second, fmt.Sprintf("members %v on node %d", want, id), func() bool {
		m = c.node(id).Members()
		return slices.Equal(memberIDs(m), want)
	})
	return m
}

// sameState fails unless every node in ids applied the same payloads.
func (c *cluster) sameState(ids ...uint64) {
	c.t.Helper()
	want := c.rec(ids[0]).snapshotPayloads()
	for _, id := range ids[1:] {
		if got := c.rec(id).snapshotPayloads(); !slices.Equal(got, want) {
			c.t.Fatalf("node %d applied %d payloads, node %d %d (or in another order)", id, len(got), ids[0], len(want))
		}
	}
}

func (r *recorder) snapshotPayloads() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.applied)
}

// A member added to a running cluster joins with an empty data directory,
// catches up from a snapshot (the log is compacted past its start), takes
// writes, counts in the quorum, and keeps everything over a restart; every
// node learns the address it was added with, also from snapshots.
func TestAddedMemberJoinsAndCatchesUp(t *testing.T) {
	c := makeCluster(t, 3, withTuning(func(cc *consensus.Config) {
		cc.SnapshotEntries, cc.CatchUpEntries = 20, 5
	}))
	c.waitLeader(5 * time.Second)
	for i := range 60 {
		c.mustPut(1+uint64(i%3), fmt.Sprintf("before-%d", i))
	}
	// Through a follower: raft forwards the change to the leader.
	leader := c.waitLeader(5 * time.Second)
	via := others([]uint64{1, 2, 3}, leader)[0]
	if err := addMember(t, c.node(via), 4, "node-4.example:26001"); err != nil {
		t.Fatalf("AddMember via follower %d: %v", via, err)
	}
	for _, id := range []uint64{1, 2, 3} {
		m := c.waitMembers(id, 1, 2, 3, 4)
		if m.Members[3].Addr != "node-4.example:26001" || m.Members[0].Addr != "" {
			t.Fatalf("node %d members %+v: want node 4's address recorded, none for initial members", id, m.Members)
		}
	}
	c.join(4)
	c.mustPut(4, "via-4")
	idx := c.store(1).Status().Commit
	c.waitApplied(10*time.Second, idx, 1, 2, 3, 4)
	c.sameState(1, 2, 3, 4)
	if id := c.node(1).ClusterID(); id == 0 || c.node(4).ClusterID() != id || c.node(3).ClusterID() != id {
		t.Fatalf("cluster IDs %x, %x (node 3), %x (node 4): want one, non-zero", id, c.node(3).ClusterID(), c.node(4).ClusterID())
	}
	if c.rec(4).restoreCount() == 0 {
		t.Fatal("the new member caught up without a snapshot; the test means to cover snapshot transfer")
	}
	if m := c.waitMembers(4, 1, 2, 3, 4); m.Members[3].Addr != "node-4.example:26001" {
		t.Fatalf("new member's view %+v: want its address from the snapshot", m.Members)
	}

	// Four members: a quorum is three. With two down, nothing commits.
	c.crash(1)
	c.crash(2)
	if _, err := c.put(3, "no-quorum", 500*time.Millisecond); err == nil {
		t.Fatal("a write committed with 2 of 4 members up")
	}
	c.start(1)
	c.mustPut(4, "after-quorum")

	// Enough writes for every node to snapshot after the change, then a
	// restart of an old member: the address comes from its snapshot.
	for i := range 60 {
		c.mustPut(4, fmt.Sprintf("after-%d", i))
	}
	c.restart(3)
	c.restart(4)
	c.start(2)
	for _, id := range []uint64{2, 3, 4} {
		if m := c.waitMembers(id, 1, 2, 3, 4); m.Members[3].Addr != "node-4.example:26001" {
			t.Fatalf("node %d after restart: members %+v", id, m.Members)
		}
	}
	c.mustPut(2, "last")
	c.waitApplied(10*time.Second, c.store(2).Status().Commit, 1, 2, 3, 4)
	c.sameState(1, 2, 3, 4)
}

// Removing a member, the leader included, shrinks the quorum; the removed
// ID is remembered (in snapshots too) and can never be added again.
func TestRemoveMemberShrinksQuorumAndRetiresTheID(t *testing.T) {
	c := makeCluster(t, 3, withTuning(func(cc *consensus.Config) {
		cc.SnapshotEntries, cc.CatchUpEntries = 20, 5
	}))
	leader := c.waitLeader(5 * time.Second)
	c.mustPut(leader, "first")

	// Remove the leader through itself: it steps down, the others elect.
	if err := removeMember(t, c.node(leader), leader); err != nil {
		t.Fatalf("removing the leader %d: %v", leader, err)
	}
	rest := others([]uint64{1, 2, 3}, leader)
	for _, id := range rest {
		m := c.waitMembers(id, rest...)
		if !slices.Equal(m.Removed, []uint64{leader}) {
			t.Fatalf("node %d: removed %v, want [%d]", id, m.Removed, leader)
		}
	}
	newLeader := c.waitLeader(5*time.Second, rest...)
	if newLeader == leader {
		t.Fatalf("the removed node %d still leads", leader)
	}
	if !c.store(leader).Status().Removed {
		t.Fatalf("node %d applied its own removal but does not report it", leader)
	}
	c.crash(leader)
	c.mustPut(rest[0], "two-members")

	// Re-adding the retired ID is refused, on every node, before and after
	// a snapshot carried the record.
	if err := addMember(t, c.node(rest[0]), leader, "x:1"); !errors.Is(err, consensus.ErrMemberRemoved) {
		t.Fatalf("re-adding removed ID %d: %v, want ErrMemberRemoved", leader, err)
	}
	for i := range 50 {
		c.mustPut(rest[i%2], fmt.Sprintf("w-%d", i))
	}
	c.restart(rest[1])
	m := c.waitMembers(rest[1], rest...)
	if !slices.Equal(m.Removed, []uint64{leader}) {
		t.Fatalf("after restart: removed %v, want [%d]", m.Removed, leader)
	}
	if err := addMember(t, c.node(rest[1]), leader, "x:1"); !errors.Is(err, consensus.ErrMemberRemoved) {
		t.Fatalf("re-adding removed ID %d after restart: %v", leader, err)
	}

	// Two members: removing one leaves a cluster of one that still works.
	if err := removeMember(t, c.node(rest[0]), rest[1]); err != nil {
		t.Fatal(err)
	}
	c.waitMembers(rest[0], rest[0])
	c.crash(rest[1])
	c.mustPut(rest[0], "alone")
	if err := removeMember(t, c.node(rest[0]), rest[0]); !errors.Is(err, consensus.ErrLastMember) {
		t.Fatalf("removing the last member: %v, want ErrLastMember", err)
	}
}

func TestMembershipChangeErrors(t *testing.T) {
	c := makeCluster(t, 3)
	c.waitLeader(5 * time.Second)
	n := c.node(2)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"add ID 0", addMember(t, n, 0, "h:1"), consensus.ErrInvalidMember},
		{"add without port", addMember(t, n, 5, "host"), consensus.ErrInvalidMember},
		{"add port 0", addMember(t, n, 5, "host:0"), consensus.ErrInvalidMember},
		{"add empty host", addMember(t, n, 5, ":26001"), consensus.ErrInvalidMember},
		{"add existing", addMember(t, n, 3, "h:1"), consensus.ErrMemberExists},
		{"remove ID 0", removeMember(t, n, 0), consensus.ErrInvalidMember},
		{"remove non-member", removeMember(t, n, 9), consensus.ErrNoSuchMember},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if m := n.Members(); !slices.Equal(memberIDs(m), []uint64{1, 2, 3}) || len(m.Removed) != 0 {
		t.Fatalf("refused changes changed the membership: %+v", m)
	}
	// A change that cannot reach a leader ends with ErrOutcomeUnknown or
	// "no leader", never a hang past its context.
	c.net.Isolate(2)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := n.AddMember(ctx, 7, "h:1")
	c.net.Heal()
	if err == nil || !(errors.Is(err, consensus.ErrOutcomeUnknown) || errors.Is(err, consensus.ErrNoLeader)) {
		t.Fatalf("AddMember from an isolated node: %v", err)
	}
}

// Members are replaced one by one, the leader included, while writers keep
// writing through every node: no acknowledged write is lost or applied
// twice, and the final members hold the same state.
func TestMembershipChangesUnderWrites(t *testing.T) {
	c := makeCluster(t, 3, withTuning(func(cc *consensus.Config) {
		cc.SnapshotEntries, cc.CatchUpEntries = 50, 10
	}))
	c.waitLeader(5 * time.Second)

	stop := c.runWriters(4, func(w, i int) *Store {
		running := c.running()
		if len(running) == 0 {
			return nil
		}
		slices.Sort(running)
		return c.store(running[(w+i)%len(running)]) // nil if stopped meanwhile
	})

	// Replace 1 by 4, then the leader by 5: a remove, then an add, each
	// time (the quorum stays 2 of 3 throughout).
	members := []uint64{1, 2, 3}
	replace := func(old, next uint64) {
		t.Helper()
		via := others(members, old)[0]
		if err := removeMember(t, c.node(via), old); err != nil {
			t.Fatalf("removing %d via %d: %v", old, via, err)
		}
		c.crash(old)
		members = others(members, old)
		if err := addMember(t, c.node(members[0]), next, fmt.Sprintf("node-%d:1", next)); err != nil {
			t.Fatalf("adding %d: %v", next, err)
		}
		c.join(next)
		members = append(members, next)
		c.waitMembers(next, members...)
	}
	time.Sleep(200 * time.Millisecond)
	replace(1, 4)
	time.Sleep(200 * time.Millisecond)
	replace(c.waitLeader(5*time.Second, members...), 5)
	time.Sleep(200 * time.Millisecond)
	log := stop()

	leader := c.waitLeader(5*time.Second, members...)
	c.mustPut(leader, "final")
	c.waitApplied(10*time.Second, c.store(leader).Status().Applied, members...)
	c.sameState(members...)
	c.appliedOnce(log.acked, members...)
	t.Logf("members now %v: %d writes acknowledged, %d indeterminate", members, len(log.acked), log.indet)
	if len(log.acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
}

// A learner catches up without counting in the quorum; promoted, it does.
func TestLearnerCatchesUpThenIsPromoted(t *testing.T) {
	c := makeCluster(t, 3, withTuning(func(cc *consensus.Config) {
		cc.SnapshotEntries, cc.CatchUpEntries = 20, 5
	}))
	leader := c.waitLeader(5 * time.Second)
	for i := range 40 {
		c.mustPut(1+uint64(i%3), fmt.Sprintf("before-%d", i))
	}
	via := others([]uint64{1, 2, 3}, leader)[0]
	if err := c.node(via).AddLearner(context.Background(), 4, "node-4.example:26001"); err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	for _, id := range []uint64{1, 2, 3} {
		m := c.waitMembers(id, 1, 2, 3, 4)
		if !m.Members[3].Learner || m.Members[0].Learner || m.Members[3].Addr != "node-4.example:26001" {
			t.Fatalf("node %d: members %+v, want 4 a learner at its address", id, m.Members)
		}
	}
	c.join(4)
	c.mustPut(4, "via-learner") // a learner's proposals are forwarded like a follower's
	c.waitApplied(10*time.Second, c.store(1).Status().Commit, 1, 2, 3, 4)
	c.sameState(1, 2, 3, 4)

	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"add the learner again", c.node(1).AddLearner(context.Background(), 4, "h:1"), consensus.ErrMemberExists},
		{"add the learner as a voter", addMember(t, c.node(1), 4, "h:1"), consensus.ErrMemberExists},
		{"add a voter as a learner", c.node(1).AddLearner(context.Background(), 2, "h:1"), consensus.ErrMemberExists},
		{"promote a voter", c.node(1).PromoteMember(context.Background(), 2), consensus.ErrMemberExists},
		{"promote a non-member", c.node(1).PromoteMember(context.Background(), 9), consensus.ErrNoSuchMember},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}

	// Not in the quorum: with the learner and one voter down, two of the
	// three voters still commit.
	down := others([]uint64{1, 2, 3}, c.waitLeader(5*time.Second, 1, 2, 3))[0]
	c.crash(4)
	c.crash(down)
	up := others([]uint64{1, 2, 3}, down)
	c.mustPut(up[0], "learner-and-one-voter-down")
	c.start(4)
	c.start(down)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Promoted once caught up (on the leader, PromoteMember checks it).
	c.waitApplied(10*time.Second, c.store(up[0]).Status().Commit, 1, 2, 3, 4)
	if err := c.node(up[1]).PromoteMember(ctx, 4); err != nil {
		t.Fatalf("PromoteMember: %v", err)
	}
	for _, id := range []uint64{1, 2, 3, 4} {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to see 4 promoted", id), func() bool {
			m := c.node(id).Members()
			return slices.Equal(memberIDs(m), []uint64{1, 2, 3, 4}) && !m.Members[3].Learner
		})
		if m := c.node(id).Members(); m.Members[3].Addr != "node-4.example:26001" {
			t.Fatalf("node %d after the promotion: %+v, want 4 to keep its address", id, m.Members)
		}
	}
	// Now a voter: with it and one old voter down, two of four cannot commit.
	c.crash(4)
	c.crash(down)
	if _, err := c.put(up[0], "two-of-four", 500*time.Millisecond); err == nil {
		t.Fatal("a write committed with 2 of 4 voters up")
	}
	c.start(4)
	c.start(down)
	c.mustPut(4, "last")

	// A learner that never started is removed like any member.
	if err := c.node(1).AddLearner(context.Background(), 5, "node-5:1"); err != nil {
		t.Fatal(err)
	}
	c.waitMembers(2, 1, 2, 3, 4, 5)
	if err := removeMember(t, c.node(2), 5); err != nil {
		t.Fatalf("removing learner 5: %v", err)
	}
	c.waitMembers(1, 1, 2, 3, 4)
}
