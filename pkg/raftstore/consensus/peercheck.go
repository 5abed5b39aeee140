package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// EntryChecker is optionally implemented by an Application that can tell,
// cheaply, whether the data of a normal log entry is something it could
// apply. The node calls CheckEntry for every EntryNormal with data carried by
// a peer's message (appends and forwarded proposals) before raft sees the
// message: a refused entry never enters the log, so it can neither be
// committed nor make every replica fail at the same index. It runs on the
// transport's goroutines, concurrently with everything else, on the hot path
// of replication: it must only look at the framing (versions, registered
// kinds), never decode the payload.
type EntryChecker interface {
	CheckEntry(data []byte) error
}

// Limits of the peer-message check (checkPeerMessage).
const (
	// MaxTerm is the highest term a peer message may carry. Terms grow by
	// one per election (PreVote and CheckQuorum keep spurious ones rare):
	// 2^48 is millions of years of elections every second, and leaves raft
	// room to add to a term without overflowing (a term of 2^64−1 made raft
	// panic on the next campaign, on every node, on every restart).
	MaxTerm = 1 << 48
	// MaxTermAhead bounds how far a message's term may be ahead of this
	// node's term. A node that was down or partitioned while the cluster
	// held elections is behind by as many terms (PreVote requests carry the
	// candidate's term + 1), so the bound must be generous; it is there so
	// that one message cannot carry a node to MaxTerm. A node that is
	// further behind than this (a million elections) cannot rejoin and must
	// be replaced (remove it, add a new member). A node with no term and no
	// configuration yet (a new member waiting for its first append) accepts
	// any term up to MaxTerm.
	MaxTermAhead = 1 << 20
	// maxPeerContext bounds the opaque contexts a peer message carries
	// (heartbeat and ReadIndex contexts are 16 bytes here).
	maxPeerContext = 64
	// rejectLogInterval is how often at most a refused message is logged
	// per peer.
	rejectLogInterval = 10 * time.Second
)

// Reasons for refusing a peer message: the values of the reason label of
// dss_raft_peer_messages_rejected_total.
const (
	RejectRecipient  = "recipient"   // To is not this node
	RejectSender     = "sender"      // From is this node, 0, or not a current member
	RejectType       = "type"        // a local-only type, or leadership transfer
	RejectTerm       = "term"        // beyond MaxTerm or MaxTermAhead, or a term where none belongs
	RejectShape      = "shape"       // fields inconsistent with the type (entries, indexes, commit, context)
	RejectEntry      = "entry"       // a normal entry the Application refuses (EntryChecker)
	RejectConfChange = "conf_change" // a conf-change entry that does not decode
	RejectSnapshot   = "snapshot"    // MsgSnap metadata or data framing invalid
)

// RejectReasons lists every reason, in a fixed order.
var RejectReasons = []string{RejectRecipient, RejectSender, RejectType, RejectTerm, RejectShape,
	RejectEntry, RejectConfChange, RejectSnapshot}

// peerRejection is why checkPeerMessage refused a message.
type peerRejection struct {
	reason string // one of the Reject* constants
	err    error
}

func (r *peerRejection) Error() string { return r.reason + ": " + r.err.Error() }

func reject(reason, format string, args ...any) *peerRejection {
	return &peerRejection{reason: reason, err: fmt.Errorf(format, args...)}
}

// peerView is what checkPeerMessage compares a message with: a snapshot of
// this node's state, read without locks.
type peerView struct {
	self uint64
	// term is this node's current term (0 before the first hard state).
	term uint64
	// leader is the leader this node knows (0: none).
	leader uint64
	// lastIndex is a lower bound of this node's last log index (what is
	// durable in storage); a leader only tells a follower of commits it
	// has acknowledged.
	lastIndex uint64
	members   *peerSet
	checker   EntryChecker
}

// peerSet is the membership a peer message's sender is checked against.
type peerSet struct {
	// members are the voters and learners, incoming and outgoing, of the
	// applied configuration; empty while this node has none (a new cluster
	// before its bootstrap entries are applied, a new member waiting for
	// the leader), when any sender the transport admitted is accepted.
	members []uint64 // ascending
	removed []uint64 // ascending; never accepted
}

func newPeerSet(cs *raftpb.ConfState, removed []uint64) *peerSet {
	ms := slices.Concat(cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext())
	slices.Sort(ms)
	return &peerSet{members: slices.Compact(ms), removed: slices.Clone(removed)}
}

func (p *peerSet) admits(id uint64) bool {
	if p == nil {
		return true
	}
	if _, gone := slices.BinarySearch(p.removed, id); gone {
		return false
	}
	if len(p.members) == 0 {
		return true
	}
	_, ok := slices.BinarySearch(p.members, id)
	return ok
}

// campaignTransfer is raft's vote context for a leadership transfer, which
// bypasses the CheckQuorum lease (Node.TransferLeadership).
var campaignTransfer = []byte("CampaignTransfer")

// checkPeerMessage decides whether a message received from a peer may be
// stepped into raft. It is pure (a function of m and v), total (never
// panics, whatever m holds) and cheap: no allocation on the accepting path
// but the Application's own entry checks. Each rule keeps out something that
// would make raft panic, let a forger bypass raft's protections, or put an
// entry in the log that no replica can apply:
//
//   - recipient: To is this node; sender: From is a current member other
//     than this node (transports also bind it to the connection);
//   - type: what a peer sends; local-only types (MsgHup, MsgBeat,
//     MsgUnreachable, MsgSnapStatus, MsgCheckQuorum, MsgStorage*,
//     MsgForgetLeader) are refused, and so is MsgTransferLeader (a
//     transfer starts on the leader itself, Node.TransferLeadership). Of a
//     transfer's own messages, which make a node campaign and its voters
//     ignore the CheckQuorum lease, MsgTimeoutNow is accepted only from
//     this node's leader at its term, and a vote with raft's transfer
//     context only one term ahead (a transfer's campaign), never a
//     pre-vote: one forged transfer vote costs at most one election, like
//     any vote of a higher term;
//   - term: at most MaxTerm and MaxTermAhead above this node's (lower terms
//     pass: raft answers or ignores stale messages); MsgProp and
//     MsgReadIndex carry none, every other type one (raft treats term 0 as
//     a local message);
//   - shape: appends' entries follow their previous entry with consecutive
//     indexes and non-decreasing terms no newer than the message (raft
//     panics on an append that conflicts with a committed entry); a
//     heartbeat commits nothing beyond this node's log (raft panics);
//     proposals are not empty (raft panics); ReadIndex messages carry
//     exactly one context entry;
//   - entries: every conf change decodes (raft panics on one that does
//     not), every normal entry with data passes the Application's
//     EntryChecker;
//   - snapshot: metadata (index, term, a configuration raft can restore)
//     and the node's framing of the data.
func checkPeerMessage(m *raftpb.Message, v *peerView) *peerRejection {
	if m.GetTo() != v.self {
		return reject(RejectRecipient, "message to %d delivered to node %d", m.GetTo(), v.self)
	}
	from := m.GetFrom()
	if from == 0 || from == v.self {
		return reject(RejectSender, "sender %d", from)
	}
	if !v.members.admits(from) {
		return reject(RejectSender, "sender %d is not a member", from)
	}
	t := m.GetType()
	switch t {
	case raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgVote, raftpb.MsgVoteResp, raftpb.MsgPreVote,
		raftpb.MsgPreVoteResp, raftpb.MsgSnap, raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp,
		raftpb.MsgProp, raftpb.MsgReadIndex, raftpb.MsgReadIndexResp, raftpb.MsgTimeoutNow:
	default:
		return reject(RejectType, "%v is not a message a peer sends", t)
	}
	if rj := checkTerm(m, v); rj != nil {
		return rj
	}
	if len(m.GetResponses()) != 0 {
		// Only raft's local storage messages carry responses.
		return reject(RejectShape, "%v carries storage responses", t)
	}
	if t != raftpb.MsgSnap && m.Snapshot != nil {
		return reject(RejectShape, "%v carries a snapshot", t)
	}
	switch t {
	case raftpb.MsgTimeoutNow:
		if from != v.leader || m.GetTerm() != v.term {
			return reject(RejectType, "%v from %d at term %d; this node's leader is %d at term %d",
				t, from, m.GetTerm(), v.leader, v.term)
		}
	case raftpb.MsgPreVote:
		if bytes.Equal(m.GetContext(), campaignTransfer) {
			return reject(RejectType, "%v for a leadership transfer", t)
		}
	case raftpb.MsgVote:
		if bytes.Equal(m.GetContext(), campaignTransfer) && m.GetTerm() != v.term+1 {
			return reject(RejectType, "%v for a leadership transfer at term %d; this node is at term %d",
				t, m.GetTerm(), v.term)
		}
	}
	if len(m.GetContext()) > maxPeerContext {
		return reject(RejectShape, "%v context of %d bytes", t, len(m.GetContext()))
	}
	switch t {
	case raftpb.MsgApp:
		return checkAppend(m, v)
	case raftpb.MsgProp:
		if len(m.GetEntries()) == 0 {
			return reject(RejectShape, "empty proposal")
		}
		for _, e := range m.GetEntries() {
			if e.GetIndex() != 0 || e.GetTerm() != 0 {
				return reject(RejectShape, "proposed entry with index %d, term %d", e.GetIndex(), e.GetTerm())
			}
			if rj := checkEntry(e, v.checker); rj != nil {
				return rj
			}
		}
		return nil
	case raftpb.MsgReadIndex, raftpb.MsgReadIndexResp:
		es := m.GetEntries()
		if len(es) != 1 || len(es[0].GetData()) > maxPeerContext {
			return reject(RejectShape, "%v must carry one read context", t)
		}
		return nil
	case raftpb.MsgSnap:
		if len(m.GetEntries()) != 0 {
			return reject(RejectShape, "snapshot message with entries")
		}
		return checkSnapshot(m)
	case raftpb.MsgHeartbeat:
		if m.GetCommit() > v.lastIndex {
			return reject(RejectShape, "heartbeat commits %d beyond this node's log (%d)", m.GetCommit(), v.lastIndex)
		}
	}
	if len(m.GetEntries()) != 0 {
		return reject(RejectShape, "%v with entries", t)
	}
	return nil
}

func checkTerm(m *raftpb.Message, v *peerView) *peerRejection {
	term := m.GetTerm()
	switch m.GetType() {
	case raftpb.MsgProp, raftpb.MsgReadIndex:
		// raft sends these without a term; one with a term would make the
		// receiver a follower of nobody at that term.
		if term != 0 {
			return reject(RejectTerm, "%v with term %d", m.GetType(), term)
		}
		return nil
	}
	switch {
	case term == 0:
		// raft steps a term-0 message as a local one: an append of
		// nobody's term would be taken from the current leader.
		return reject(RejectTerm, "%v without a term", m.GetType())
	case term > MaxTerm:
		return reject(RejectTerm, "term %d above the maximum %d", term, uint64(MaxTerm))
	case v.term == 0 && v.members.unconfigured():
		return nil // a new member: the cluster may be at any term
	case term > v.term && term-v.term > MaxTermAhead:
		return reject(RejectTerm, "term %d is more than %d ahead of this node's %d", term, MaxTermAhead, v.term)
	}
	return nil
}

func (p *peerSet) unconfigured() bool { return p == nil || len(p.members) == 0 }

// checkAppend checks an append the way raft's logSlice.valid would, before
// raft acts on it, and the entries it carries.
func checkAppend(m *raftpb.Message, v *peerView) *peerRejection {
	prevIndex, prevTerm := m.GetIndex(), m.GetLogTerm()
	if prevTerm > m.GetTerm() {
		return reject(RejectShape, "append after an entry of term %d from a leader of term %d", prevTerm, m.GetTerm())
	}
	for i, e := range m.GetEntries() {
		if e.GetIndex() != prevIndex+1 || e.GetTerm() < prevTerm || e.GetTerm() > m.GetTerm() {
			return reject(RejectShape, "append entry %d (index %d, term %d) does not follow (index %d, term %d) under term %d",
				i, e.GetIndex(), e.GetTerm(), prevIndex, prevTerm, m.GetTerm())
		}
		prevIndex, prevTerm = e.GetIndex(), e.GetTerm()
		if rj := checkEntry(e, v.checker); rj != nil {
			return rj
		}
	}
	return nil
}

// checkEntry checks one entry's data by its type.
func checkEntry(e *raftpb.Entry, ec EntryChecker) *peerRejection {
	switch e.GetType() {
	case raftpb.EntryNormal:
		// Empty entries are a new leader's no-ops.
		if len(e.GetData()) == 0 || ec == nil {
			return nil
		}
		if err := ec.CheckEntry(e.GetData()); err != nil {
			return &peerRejection{reason: RejectEntry, err: fmt.Errorf("entry %d: %w", e.GetIndex(), err)}
		}
		return nil
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return reject(RejectConfChange, "entry %d: %v", e.GetIndex(), err)
		}
		return nil
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return reject(RejectConfChange, "entry %d: %v", e.GetIndex(), err)
		}
		return nil
	default:
		return reject(RejectShape, "entry %d of unknown type %d", e.GetIndex(), int32(e.GetType()))
	}
}

// checkSnapshot checks a snapshot's metadata and the framing of its data
// (the node's membership record, splitSnapshotData); the Application's
// part is checked by Restore, which stops the node when it fails, as for a
// corrupt snapshot on disk.
func checkSnapshot(m *raftpb.Message) *peerRejection {
	s := m.GetSnapshot()
	md := s.GetMetadata()
	if s == nil || md == nil || md.GetIndex() == 0 {
		return reject(RejectSnapshot, "snapshot without metadata")
	}
	if md.GetTerm() == 0 || md.GetTerm() > m.GetTerm() {
		return reject(RejectSnapshot, "snapshot of term %d from a leader of term %d", md.GetTerm(), m.GetTerm())
	}
	if err := checkConfState(md.GetConfState()); err != nil {
		return reject(RejectSnapshot, "snapshot configuration: %v", err)
	}
	if _, _, err := splitSnapshotData(s.GetData()); err != nil {
		return reject(RejectSnapshot, "snapshot data: %v", err)
	}
	return nil
}

// checkConfState refuses configurations raft cannot restore (it panics on
// them): none at all, ID 0, a node both voter and learner, a joint
// configuration's parts without the joint configuration.
func checkConfState(cs *raftpb.ConfState) error {
	if cs == nil || len(cs.GetVoters()) == 0 {
		return errors.New("no voters")
	}
	seen := map[uint64]bool{}
	for _, id := range slices.Concat(cs.GetVoters(), cs.GetLearners()) {
		if id == 0 || seen[id] {
			return fmt.Errorf("node %d listed twice or zero", id)
		}
		seen[id] = true
	}
	for _, id := range cs.GetLearnersNext() {
		if id == 0 || seen[id] {
			return fmt.Errorf("next learner %d is already a voter or learner", id)
		}
	}
	if len(cs.GetVotersOutgoing()) == 0 && (len(cs.GetLearnersNext()) > 0 || cs.GetAutoLeave()) {
		return errors.New("joint configuration parts without outgoing voters")
	}
	for _, id := range cs.GetVotersOutgoing() {
		if id == 0 {
			return errors.New("outgoing voter 0")
		}
	}
	return nil
}

// peerGuard counts and logs refused peer messages: one counter per reason,
// one log line per peer per rejectLogInterval (with the number refused
// since the last line).
type peerGuard struct {
	counts [8]atomic.Uint64 // indexed like RejectReasons

	mu     sync.Mutex
	logged map[uint64]peerLog
}

type peerLog struct {
	at         time.Time
	suppressed uint64
}

// maxLoggedPeers bounds peerGuard's map; senders are members (at most a
// handful) once the transport and the check admitted them, but a refusal
// can name any From.
const maxLoggedPeers = 256

func (g *peerGuard) refused(lg *zap.Logger, m *raftpb.Message, rj *peerRejection, now time.Time) {
	if i := slices.Index(RejectReasons, rj.reason); i >= 0 {
		g.counts[i].Add(1)
	}
	from := m.GetFrom()
	g.mu.Lock()
	if g.logged == nil || len(g.logged) >= maxLoggedPeers {
		g.logged = map[uint64]peerLog{}
	}
	pl, seen := g.logged[from]
	if seen && now.Sub(pl.at) < rejectLogInterval {
		pl.suppressed++
		g.logged[from] = pl
		g.mu.Unlock()
		return
	}
	g.logged[from] = peerLog{at: now}
	g.mu.Unlock()
	lg.Warn("refused a peer message (logged at most once per peer every 10s)",
		zap.Uint64("from", from), zap.Uint64("to", m.GetTo()), zap.Stringer("type", m.GetType()),
		zap.Uint64("term", m.GetTerm()), zap.String("reason", rj.reason), zap.Error(rj.err),
		zap.Uint64("refused_since_last_log", pl.suppressed))
}

// PeerRejections returns how many peer messages the node refused, per
// reason (RejectReasons), since it started.
func (n *Node) PeerRejections() map[string]uint64 {
	out := make(map[string]uint64, len(RejectReasons))
	for i, r := range RejectReasons {
		out[r] = n.guard.counts[i].Load()
	}
	return out
}

// publishPeers makes the membership the peer check uses current; memberMu
// must be held.
func (n *Node) publishPeersLocked() {
	n.peerSet.Store(newPeerSet(n.confState, n.members.removed))
}

// checkPeer is checkPeerMessage against this node's current state.
func (n *Node) checkPeer(m *raftpb.Message) *peerRejection {
	last, _ := n.storage.LastIndex()
	return checkPeerMessage(m, &peerView{
		self:      n.cfg.ID,
		term:      n.term.Load(),
		leader:    n.leader.Load(),
		lastIndex: last,
		members:   n.peerSet.Load(),
		checker:   n.checker,
	})
}
