package consensus

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

func TestMemberRecordRoundTrip(t *testing.T) {
	rec := memberRecord{cluster: clusterIDOf([]uint64{1, 2, 3}), addrs: map[uint64]string{3: "c:1", 1: "", 7: "host-7.example:26001"}, removed: []uint64{2, 5}}
	app := []byte("application bytes")
	data := append(rec.appendTo(nil), app...)
	if again := append(rec.clone().appendTo(nil), app...); !bytes.Equal(again, data) {
		t.Fatal("encoding is not deterministic")
	}
	got, gotApp, err := splitSnapshotData(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) || !bytes.Equal(gotApp, app) {
		t.Fatalf("round trip: %+v %q", got, gotApp)
	}

	// Snapshots written before the record existed: all Application data.
	for _, legacy := range [][]byte{nil, {}, {1, 0, 'x'}} {
		got, gotApp, err := splitSnapshotData(legacy)
		if err != nil || len(got.addrs) != 0 || len(got.removed) != 0 || !bytes.Equal(gotApp, legacy) {
			t.Fatalf("legacy %v: %+v %v %v", legacy, got, gotApp, err)
		}
	}

	// Every truncation of the record, and an unknown format, is an error.
	head := len(rec.appendTo(nil))
	for i := 1; i < head; i++ {
		if _, _, err := splitSnapshotData(data[:i]); err == nil {
			t.Fatalf("record cut at %d of %d bytes accepted", i, head)
		}
	}
	bad := bytes.Clone(data)
	bad[1] = 9
	if _, _, err := splitSnapshotData(bad); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestValidChange(t *testing.T) {
	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{6}}
	rec := memberRecord{addrs: map[uint64]string{}, removed: []uint64{3}}
	add, remove, learner := raftpb.ConfChangeAddNode, raftpb.ConfChangeRemoveNode, raftpb.ConfChangeAddLearnerNode
	boot := string(clusterContext(clusterIDOf([]uint64{1, 2})))
	for _, tc := range []struct {
		t    raftpb.ConfChangeType
		id   uint64
		ctx  string
		cs   *raftpb.ConfState
		want error
	}{
		{add, 4, "h:1", cs, nil},
		{add, 2, boot, cs, nil},  // again: the bootstrap entries re-add raft's initial voters
		{add, 2, "h:1", cs, nil}, // again: a change proposed twice, a no-op
		{add, 3, "h:1", cs, ErrMemberRemoved},
		{add, 0, "h:1", cs, ErrInvalidMember},
		{remove, 2, "", cs, nil},
		{remove, 4, "", cs, ErrNoSuchMember},
		{remove, 3, "", cs, ErrMemberRemoved},
		{remove, 1, "", &raftpb.ConfState{Voters: []uint64{1}}, ErrLastMember},
		{learner, 4, "h:1", cs, nil},
		{learner, 6, "h:1", cs, nil},             // again: a no-op
		{learner, 2, "h:1", cs, ErrMemberExists}, // raft would demote the voter
		{learner, 3, "h:1", cs, ErrMemberRemoved},
		{add, 6, "", cs, nil},                // PromoteMember: promotes the learner
		{add, 6, "h:1", cs, ErrMemberExists}, // AddMember after AddLearner: never an unchecked promotion
		{add, 6, boot, cs, nil},
		{remove, 6, "", cs, nil},
		{remove, 1, "", &raftpb.ConfState{Voters: []uint64{1}, Learners: []uint64{6}}, ErrLastMember},
		{remove, 6, "", &raftpb.ConfState{Voters: []uint64{1}, Learners: []uint64{6}}, nil},
		{raftpb.ConfChangeUpdateNode, 1, "", cs, ErrInvalidMember},
	} {
		cc := &raftpb.ConfChange{Type: tc.t.Enum(), NodeId: proto.Uint64(tc.id), Context: []byte(tc.ctx)}
		if err := validChange(tc.cs, rec, cc); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%v %d on %v: %v, want %v", tc.t, tc.id, tc.cs.GetVoters(), err, tc.want)
		}
	}
}

// A joining node stopped before the leader sent it anything restarts still
// waiting for the leader, with or without Join: bootstrapping then from its
// Peers would start a second cluster under IDs of the first.
func TestJoiningNodeNeverBootstraps(t *testing.T) {
	dir := t.TempDir()
	start := func(join bool) *Node {
		net := memnet.New(1)
		t.Cleanup(net.Close)
		n, err := New(Config{
			ID: 2, Peers: map[uint64]string{1: "a", 2: "b"}, DataDir: dir, Join: join,
			TickInterval: 10 * time.Millisecond, ElectionTicks: 10,
			Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		}, &memApp{}, func(h transport.Handler) (transport.Transport, error) { return net.Transport(2, h), nil })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, join := range []bool{true, false} {
		n := start(join)
		time.Sleep(100 * time.Millisecond) // a bootstrap commits its entries within a few ms
		st, m := n.Status(), n.Members()
		n.Stop()
		if st.Commit != 0 || len(m.Members) != 0 {
			t.Fatalf("join=%v: a joining node bootstrapped: commit %d, members %+v", join, st.Commit, m.Members)
		}
	}
}

// The transport checks cluster IDs when streams open, so a node knows its
// cluster before its transport exists: on its first start and on restarts,
// from the snapshot or from the bootstrap entries in its WAL.
func TestClusterIDKnownBeforeTransport(t *testing.T) {
	dir := t.TempDir()
	want := clusterIDOf([]uint64{1})
	for _, tune := range []func(*Config){nil, nil, func(c *Config) { c.SnapshotEntries = 3 }, nil} {
		app := &memApp{}
		var seen uint64
		net := memnet.New(1)
		cfg := Config{ID: 1, Peers: map[uint64]string{1: "a"}, DataDir: dir, TickInterval: 10 * time.Millisecond,
			ElectionTicks: 10, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
		if tune != nil {
			tune(&cfg)
		}
		n, err := New(cfg, app, func(h transport.Handler) (transport.Transport, error) {
			seen = h.(transport.ClusterMember).ClusterID()
			return net.Transport(1, h), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		write(t, n, app, payloads("c", 5)...)
		n.Stop()
		net.Close()
		if seen != want {
			t.Fatalf("the transport was created with cluster ID %x known, want %x", seen, want)
		}
	}
}

func TestLearnerCaughtUp(t *testing.T) {
	leader := func(commit, match uint64, known bool) raft.Status {
		st := raft.Status{Progress: map[uint64]tracker.Progress{}}
		st.RaftState = raft.StateLeader
		st.HardState = &raftpb.HardState{Commit: proto.Uint64(commit)}
		if known {
			st.Progress[4] = tracker.Progress{Match: match}
		}
		return st
	}
	for _, tc := range []struct {
		name string
		st   raft.Status
		ok   bool
	}{
		{"caught up", leader(1000, 1000, true), true},
		{"at 90%", leader(1000, 900, true), true},
		{"below 90%", leader(1000, 899, true), false},
		{"not started", leader(1000, 0, true), false},
		{"unknown to the leader", leader(1000, 0, false), false},
		{"empty log", leader(0, 0, true), true},
		{"not the leader: cannot tell", raft.Status{}, true},
	} {
		err := learnerCaughtUp(tc.st, 4)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrLearnerBehind)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
