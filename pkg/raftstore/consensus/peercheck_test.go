package consensus

import (
	"errors"
	"io"
	"log"
	"math"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// kChecker accepts normal entry data that starts with 'k', as an
// Application's EntryChecker accepts its registered operation kinds.
type kChecker struct{}

func (kChecker) CheckEntry(data []byte) error {
	if data[0] != 'k' {
		return errors.New("unregistered kind")
	}
	return nil
}

// oracle is a real raft node (ID 1 of voters 1, 2, 3) against which the
// peer check is judged: every message the check accepts must be one raft
// steps without panicking, whatever state it is in.
type oracle struct {
	rn *raft.RawNode
	st *raft.MemoryStorage
	// lead is the leader the peer check is told of: the oracle itself, or
	// node 2 (raft itself has heard from no leader then).
	lead uint64
}

// The oracle's log: a snapshot at index 1 (term 1), then entries 2..5 of
// terms 1, 2, 5, 5; entries up to 3 committed; current term 5.
const (
	oracleTerm   = 5
	oracleCommit = 3
)

func newOracle(tb testing.TB, leader bool) *oracle {
	st := raft.NewMemoryStorage()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(st.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}))
	var ents []*raftpb.Entry
	for i, term := range []uint64{1, 2, 5, 5} {
		ents = append(ents, &raftpb.Entry{Index: new(uint64(i + 2)), Term: new(term), Data: []byte("k")})
	}
	must(st.Append(ents))
	must(st.SetHardState(&raftpb.HardState{Term: new(uint64(oracleTerm)), Commit: new(uint64(oracleCommit))}))
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st, Applied: 1,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 64, PreVote: true, CheckQuorum: true,
		Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	must(err)
	o := &oracle{rn: rn, st: st, lead: 2}
	if leader {
		o.lead = 1
		must(rn.Campaign())
		o.drive()
		term := rn.Status().GetTerm()
		o.step(&raftpb.Message{Type: raftpb.MsgPreVoteResp.Enum(), From: new(uint64(2)), To: new(uint64(1)),
			Term: new(term + 1)})
		o.drive()
		o.step(&raftpb.Message{Type: raftpb.MsgVoteResp.Enum(), From: new(uint64(2)), To: new(uint64(1)),
			Term: new(rn.Status().GetTerm())})
		o.drive()
		if rn.Status().RaftState != raft.StateLeader {
			tb.Fatalf("oracle did not become leader: %v", rn.Status().RaftState)
		}
	}
	return o
}

func (o *oracle) step(m *raftpb.Message) { _ = o.rn.Step(m) }

// drive handles the node's Ready a few times the way Node does: persist,
// then advance.
func (o *oracle) drive() {
	for i := 0; i < 4 && o.rn.HasReady(); i++ {
		rd := o.rn.Ready()
		if !raft.IsEmptySnap(rd.Snapshot) {
			_ = o.st.ApplySnapshot(rd.Snapshot)
		}
		_ = o.st.Append(rd.Entries)
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			_ = o.st.SetHardState(rd.HardState)
		}
		o.rn.Advance(rd)
	}
}

func (o *oracle) view() *peerView {
	last, _ := o.st.LastIndex()
	return &peerView{self: 1, term: o.rn.Status().GetTerm(), leader: o.lead, lastIndex: last,
		members: newPeerSet(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}, []uint64{4}), checker: kChecker{}}
}

func msg(t raftpb.MessageType, from, term uint64) *raftpb.Message {
	return &raftpb.Message{Type: t.Enum(), From: new(from), To: new(uint64(1)), Term: new(term)}
}

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Data: []byte(data)}
}

func entType(index, term uint64, typ raftpb.EntryType, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: typ.Enum(), Data: data}
}

// TestPeerCheckRefuses: each rule refuses what it is for, with its reason;
// among them every message an attacker used to move a leader, poison a log
// or make every node panic.
func TestPeerCheckRefuses(t *testing.T) {
	with := func(m *raftpb.Message, f func(*raftpb.Message)) *raftpb.Message { f(m); return m }
	app := func(prevIndex, prevTerm uint64, es ...*raftpb.Entry) *raftpb.Message {
		m := msg(raftpb.MsgApp, 2, oracleTerm)
		m.Index, m.LogTerm, m.Entries = new(prevIndex), new(prevTerm), es
		return m
	}
	cases := []struct {
		name   string
		m      *raftpb.Message
		reason string
	}{
		{"to another node", with(msg(raftpb.MsgHeartbeat, 2, oracleTerm), func(m *raftpb.Message) { m.To = new(uint64(3)) }), RejectRecipient},
		{"from itself", msg(raftpb.MsgHeartbeat, 1, oracleTerm), RejectSender},
		{"from nobody", msg(raftpb.MsgHeartbeat, 0, oracleTerm), RejectSender},
		{"from a non-member", msg(raftpb.MsgHeartbeat, 7, oracleTerm), RejectSender},
		{"from a removed member", msg(raftpb.MsgHeartbeat, 4, oracleTerm), RejectSender},
		{"local hup", msg(raftpb.MsgHup, 2, oracleTerm), RejectType},
		{"local beat", msg(raftpb.MsgBeat, 2, oracleTerm), RejectType},
		{"storage append", msg(raftpb.MsgStorageAppend, 2, oracleTerm), RejectType},
		{"leadership transfer", msg(raftpb.MsgTransferLeader, 2, oracleTerm), RejectType},
		{"timeout now from a non-leader", msg(raftpb.MsgTimeoutNow, 3, oracleTerm), RejectType},
		{"transfer vote terms ahead", with(msg(raftpb.MsgVote, 2, oracleTerm+3), func(m *raftpb.Message) { m.Context = campaignTransfer }), RejectType},
		{"transfer prevote", with(msg(raftpb.MsgPreVote, 2, oracleTerm+1), func(m *raftpb.Message) { m.Context = campaignTransfer }), RejectType},
		{"unknown type", msg(raftpb.MessageType(999), 2, oracleTerm), RejectType},
		{"heartbeat of term 2^64-1", msg(raftpb.MsgHeartbeat, 2, math.MaxUint64), RejectTerm},
		{"vote of term 2^64-1", msg(raftpb.MsgVote, 2, math.MaxUint64), RejectTerm},
		{"prevote of term MaxTerm+1", msg(raftpb.MsgPreVote, 2, MaxTerm+1), RejectTerm},
		{"heartbeat far ahead", msg(raftpb.MsgHeartbeat, 2, oracleTerm+2*MaxTermAhead), RejectTerm},
		{"append without a term", with(app(5, 5), func(m *raftpb.Message) { m.Term = new(uint64(0)) }), RejectTerm},
		{"proposal with a term", with(msg(raftpb.MsgProp, 2, oracleTerm), func(m *raftpb.Message) { m.Entries = []*raftpb.Entry{{Data: []byte("k")}} }), RejectTerm},
		{"empty proposal", msg(raftpb.MsgProp, 2, 0), RejectShape},
		{"proposal with an index", with(msg(raftpb.MsgProp, 2, 0), func(m *raftpb.Message) { m.Entries = []*raftpb.Entry{ent(9, 0, "k")} }), RejectShape},
		{"proposal of an unknown kind", with(msg(raftpb.MsgProp, 2, 0), func(m *raftpb.Message) { m.Entries = []*raftpb.Entry{{Data: []byte("x")}} }), RejectEntry},
		{"append of an undecodable entry", app(5, 5, ent(6, 5, "poison")), RejectEntry},
		{"append of an undecodable conf change", app(5, 5, entType(6, 5, raftpb.EntryConfChange, []byte{0xff, 0xff})), RejectConfChange},
		{"append of an undecodable conf change v2", app(5, 5, entType(6, 5, raftpb.EntryConfChangeV2, []byte{0x0a})), RejectConfChange},
		{"append of an unknown entry type", app(5, 5, entType(6, 5, raftpb.EntryType(7), []byte("k"))), RejectShape},
		{"append with a gap", app(5, 5, ent(7, 5, "k")), RejectShape},
		{"append with falling terms", app(5, 5, ent(6, 4, "k")), RejectShape},
		{"append of an entry newer than its leader", app(5, 5, ent(6, 6, "k")), RejectShape},
		{"append after an entry newer than its leader", app(5, 6), RejectShape},
		{"heartbeat committing beyond the log", with(msg(raftpb.MsgHeartbeat, 2, oracleTerm), func(m *raftpb.Message) { m.Commit = new(uint64(1 << 40)) }), RejectShape},
		{"heartbeat with entries", with(msg(raftpb.MsgHeartbeat, 2, oracleTerm), func(m *raftpb.Message) { m.Entries = []*raftpb.Entry{ent(6, 5, "k")} }), RejectShape},
		{"vote with a snapshot", with(msg(raftpb.MsgVote, 2, oracleTerm+1), func(m *raftpb.Message) { m.Snapshot = &raftpb.Snapshot{} }), RejectShape},
		{"oversized context", with(msg(raftpb.MsgHeartbeat, 2, oracleTerm), func(m *raftpb.Message) { m.Context = make([]byte, 65) }), RejectShape},
		{"read index without context", msg(raftpb.MsgReadIndex, 2, 0), RejectShape},
		{"storage responses", with(msg(raftpb.MsgHeartbeat, 2, oracleTerm), func(m *raftpb.Message) {
			m.Responses = []*raftpb.Message{msg(raftpb.MsgHup, 1, 0)}
		}), RejectShape},
		{"snapshot without metadata", with(msg(raftpb.MsgSnap, 2, oracleTerm), func(m *raftpb.Message) { m.Snapshot = &raftpb.Snapshot{} }), RejectSnapshot},
		{"snapshot without voters", with(msg(raftpb.MsgSnap, 2, oracleTerm), func(m *raftpb.Message) {
			m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)), Term: new(uint64(5)), ConfState: &raftpb.ConfState{}}}
		}), RejectSnapshot},
		{"snapshot with a voter that is a learner", with(msg(raftpb.MsgSnap, 2, oracleTerm), func(m *raftpb.Message) {
			m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)), Term: new(uint64(5)),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{2}}}}
		}), RejectSnapshot},
		{"snapshot of a newer term", with(msg(raftpb.MsgSnap, 2, oracleTerm), func(m *raftpb.Message) {
			m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)), Term: new(uint64(6)),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
		}), RejectSnapshot},
		{"snapshot with unframed data", with(msg(raftpb.MsgSnap, 2, oracleTerm), func(m *raftpb.Message) {
			m.Snapshot = &raftpb.Snapshot{Data: []byte{snapMagic, 0x09, 0x01}, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)),
				Term: new(uint64(5)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
		}), RejectSnapshot},
		{"conf change smuggled in a proposal", with(msg(raftpb.MsgProp, 2, 0), func(m *raftpb.Message) {
			m.Entries = []*raftpb.Entry{entType(0, 0, raftpb.EntryConfChange, []byte{0xff})}
		}), RejectConfChange},
	}
	for _, c := range cases {
		for _, leader := range []bool{false, true} {
			o := newOracle(t, leader)
			rj := checkPeerMessage(c.m, o.view())
			if rj == nil {
				t.Errorf("%s (leader %v): accepted", c.name, leader)
				continue
			}
			if rj.reason != c.reason {
				t.Errorf("%s (leader %v): refused for %q (%v), want %q", c.name, leader, rj.reason, rj.err, c.reason)
			}
		}
	}
}

// TestPeerCheckAccepts: what correct peers send passes, and raft steps it.
func TestPeerCheckAccepts(t *testing.T) {
	ccData, _ := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(9))})
	app := func(prevIndex, prevTerm, commit uint64, es ...*raftpb.Entry) *raftpb.Message {
		m := msg(raftpb.MsgApp, 2, oracleTerm)
		m.Index, m.LogTerm, m.Commit, m.Entries = new(prevIndex), new(prevTerm), new(commit), es
		return m
	}
	hb := msg(raftpb.MsgHeartbeat, 2, oracleTerm)
	hb.Commit, hb.Context = new(uint64(4)), make([]byte, 16)
	prop := msg(raftpb.MsgProp, 3, 0)
	prop.Entries = []*raftpb.Entry{{Data: []byte("k1")}, {}}
	ri := msg(raftpb.MsgReadIndex, 3, 0)
	ri.Entries = []*raftpb.Entry{{Data: make([]byte, 16)}}
	snap := msg(raftpb.MsgSnap, 2, oracleTerm+2)
	snap.Snapshot = &raftpb.Snapshot{Data: append(memberRecord{}.appendTo(nil), "app"...),
		Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(40)), Term: new(uint64(oracleTerm + 1)),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	for name, m := range map[string]*raftpb.Message{
		"heartbeat":          hb,
		"append":             app(5, 5, 5, ent(6, 5, "k"), entType(7, 5, raftpb.EntryConfChange, ccData), ent(8, 5, "")),
		"append replacing":   app(3, 2, 3, ent(4, 3, "k")),
		"stale append":       app(2, 1, 2, ent(3, 2, "k")),
		"empty append":       app(5, 5, 5),
		"vote":               msg(raftpb.MsgVote, 3, oracleTerm+1),
		"prevote far behind": msg(raftpb.MsgPreVote, 3, 2),
		"prevote":            msg(raftpb.MsgPreVote, 3, oracleTerm+MaxTermAhead),
		"vote response":      msg(raftpb.MsgVoteResp, 3, oracleTerm),
		"append response":    msg(raftpb.MsgAppResp, 3, oracleTerm),
		"heartbeat response": msg(raftpb.MsgHeartbeatResp, 3, oracleTerm),
		"proposal":           prop,
		"read index":         ri,
		"snapshot":           snap,
	} {
		for _, leader := range []bool{false, true} {
			o := newOracle(t, leader)
			if rj := checkPeerMessage(m, o.view()); rj != nil {
				t.Errorf("%s (leader %v): refused: %v", name, leader, rj)
				continue
			}
			o.step(m)
			o.drive()
		}
	}
}

// TestNewMemberAcceptsAnyTerm: a node with no term and no configuration
// yet (a member added to a running cluster) takes the cluster's term,
// whatever it is, up to MaxTerm.
func TestNewMemberAcceptsAnyTerm(t *testing.T) {
	v := &peerView{self: 1, members: newPeerSet(&raftpb.ConfState{}, nil)}
	if rj := checkPeerMessage(msg(raftpb.MsgHeartbeat, 2, MaxTerm), v); rj != nil {
		t.Errorf("new member refused the cluster's term: %v", rj)
	}
	if rj := checkPeerMessage(msg(raftpb.MsgHeartbeat, 2, MaxTerm+1), v); rj == nil || rj.reason != RejectTerm {
		t.Errorf("new member accepted a term above MaxTerm: %v", rj)
	}
}

// FuzzPeerCheck: checkPeerMessage never panics, whatever a peer sends, and
// every message it accepts is one a real raft node — follower or leader —
// steps and then processes without panicking. Seeds are the messages of
// TestPeerCheckRefuses's attacks and of correct peers.
func FuzzPeerCheck(f *testing.F) {
	seed := func(m *raftpb.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, typ := range []raftpb.MessageType{raftpb.MsgHeartbeat, raftpb.MsgVote, raftpb.MsgPreVote, raftpb.MsgApp,
		raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp, raftpb.MsgHeartbeatResp, raftpb.MsgSnap,
		raftpb.MsgReadIndex, raftpb.MsgReadIndexResp, raftpb.MsgTimeoutNow} {
		for _, term := range []uint64{0, 1, oracleTerm, oracleTerm + 1, MaxTerm, math.MaxUint64} {
			seed(msg(typ, 2, term))
		}
	}
	a := msg(raftpb.MsgApp, 2, oracleTerm)
	a.Index, a.LogTerm, a.Commit = new(uint64(5)), new(uint64(5)), new(uint64(6))
	a.Entries = []*raftpb.Entry{ent(6, 5, "k"), entType(7, 5, raftpb.EntryConfChange, []byte{8, 1, 16, 9})}
	seed(a)
	r := msg(raftpb.MsgAppResp, 2, oracleTerm+1)
	r.Index, r.Reject, r.RejectHint, r.LogTerm = new(uint64(1<<40)), new(true), new(uint64(1<<41)), new(uint64(3))
	seed(r)
	p := msg(raftpb.MsgProp, 3, 0)
	p.Entries = []*raftpb.Entry{{Data: []byte("k")}}
	seed(p)
	s := msg(raftpb.MsgSnap, 2, oracleTerm)
	s.Snapshot = &raftpb.Snapshot{Data: memberRecord{}.appendTo(nil), Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(9)), Term: new(uint64(5)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 2, 3}}}}
	seed(s)

	f.Fuzz(func(t *testing.T, b []byte, leader bool) {
		var m raftpb.Message
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		o := newOracle(t, leader)
		if checkPeerMessage(&m, o.view()) != nil {
			return
		}
		o.step(&m)
		o.drive()
		// The node goes on working after it: ticks, and hears from the
		// other peers.
		for range 12 {
			o.rn.Tick()
		}
		o.drive()
		o.step(msg(raftpb.MsgHeartbeatResp, 3, o.rn.Status().GetTerm()))
		o.drive()
	})
}

// TestPeerCheckTransferMessages: a leadership transfer's own messages pass
// only in the shape a real transfer sends them, and raft acts on them.
func TestPeerCheckTransferMessages(t *testing.T) {
	follower := func() (*oracle, *peerView) {
		o := newOracle(t, false)
		return o, o.view()
	}
	transferVote := func(from, term uint64) *raftpb.Message {
		m := msg(raftpb.MsgVote, from, term)
		m.Context = campaignTransfer
		m.Index, m.LogTerm = new(uint64(5)), new(uint64(5))
		return m
	}
	for name, m := range map[string]*raftpb.Message{
		"timeout now from another member": msg(raftpb.MsgTimeoutNow, 3, oracleTerm),
		"timeout now of an older term":    msg(raftpb.MsgTimeoutNow, 2, oracleTerm-1),
		"timeout now of a newer term":     msg(raftpb.MsgTimeoutNow, 2, oracleTerm+1),
		"transfer vote at the same term":  transferVote(3, oracleTerm),
	} {
		_, v := follower()
		if rj := checkPeerMessage(m, v); rj == nil || rj.reason != RejectType {
			t.Errorf("%s: got %v, want a %s refusal", name, rj, RejectType)
		}
	}

	// The leader's MsgTimeoutNow: the follower campaigns at once.
	o, v := follower()
	tn := msg(raftpb.MsgTimeoutNow, 2, oracleTerm)
	if rj := checkPeerMessage(tn, v); rj != nil {
		t.Fatalf("timeout now from the leader refused: %v", rj)
	}
	o.step(tn)
	o.drive()
	if st := o.rn.Status(); st.RaftState != raft.StateCandidate || st.GetTerm() != oracleTerm+1 {
		t.Fatalf("after timeout now: %v at term %d, want a candidate at term %d", st.RaftState, st.GetTerm(), oracleTerm+1)
	}

	// The transferee's vote request, one term ahead: granted although the
	// follower has a leader (the lease is what a transfer bypasses).
	o, v = follower()
	o.step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)),
		Term: new(uint64(oracleTerm)), Commit: new(uint64(oracleCommit))})
	o.drive()
	tv := transferVote(3, oracleTerm+1)
	if rj := checkPeerMessage(tv, v); rj != nil {
		t.Fatalf("transfer vote refused: %v", rj)
	}
	o.step(tv)
	if st := o.rn.Status(); st.GetTerm() != oracleTerm+1 || st.GetVote() != 3 {
		t.Fatalf("after the transfer vote: term %d, vote %d; want term %d, vote 3", st.GetTerm(), st.GetVote(), oracleTerm+1)
	}
}
