package consensus

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Membership changes: one member added (as a voter or a learner), promoted
// or removed at a time (raft's simple configuration changes, ConfChange v1),
// each proposed through the log like a write. The log entry carries the new
// member's address, so every node can dial it without a restart; addresses,
// removed IDs and the cluster's ID are part of every snapshot, so a node
// restarted from one, or a member that joins later, knows them too.

// Errors of AddMember, AddLearner, PromoteMember and RemoveMember.
var (
	// ErrInvalidMember: raft ID 0, or an address that is not host:port.
	ErrInvalidMember = errors.New("consensus: invalid member")
	// ErrMemberExists: the ID is already a member.
	ErrMemberExists = errors.New("consensus: already a member")
	// ErrMemberRemoved: the ID was removed already; a raft ID is never
	// reused (a new node under an old ID could vote twice in a term).
	ErrMemberRemoved = errors.New("consensus: the ID was removed from the cluster and cannot be reused")
	// ErrNoSuchMember: removing or promoting an ID that is not a member.
	ErrNoSuchMember = errors.New("consensus: not a member")
	// ErrLastMember: removing the only voter would leave no one to lead.
	ErrLastMember = errors.New("consensus: cannot remove the last voter")
	// ErrOutcomeUnknown: the context ended before the change was applied on
	// this node; it may still be applied (check Members and retry).
	ErrOutcomeUnknown = errors.New("consensus: membership change not applied yet; its outcome is unknown")
	// ErrLearnerBehind: PromoteMember on the leader, whose log the learner
	// has not caught up with yet (below 90% of it, as etcd requires).
	ErrLearnerBehind = errors.New("consensus: the learner has not caught up with the leader's log yet")
	// ErrNoLeader: this node knows no leader to forward the change to; it
	// was not proposed.
	ErrNoLeader = errors.New("consensus: no leader known; retry later")
)

// Member is one member of the cluster.
type Member struct {
	ID uint64
	// Learner: a non-voting member (AddLearner). It receives the log and
	// serves like any node, but does not vote and does not count in the
	// quorum until it is promoted (PromoteMember).
	Learner bool
	// Addr is the raft address the member was added with, "" for the
	// members a cluster was created with (their addresses are each node's
	// Config.Peers). A node dials Config.Peers[ID] when it has one, Addr
	// otherwise.
	Addr string
}

// Membership is the cluster's configuration as of a node's applied index.
type Membership struct {
	Members []Member // the voters and learners, by ascending ID
	Removed []uint64 // IDs removed from the cluster, ascending; never reused
}

// memberRecord is what the replicated state keeps about members beyond
// raft's ConfState: the cluster's ID, the addresses members were added with
// and the removed IDs.
// It changes only by applying committed entries (or restoring a snapshot),
// so it is identical on every node at the same applied index.
type memberRecord struct {
	// cluster is the cluster's ID (clusterIDOf its initial members), 0 for
	// a cluster created before it existed.
	cluster uint64
	addrs   map[uint64]string // member ID → address it was added with ("" for initial members)
	removed []uint64          // ascending
}

func (r memberRecord) clone() memberRecord {
	a := make(map[uint64]string, len(r.addrs))
	for id, addr := range r.addrs {
		a[id] = addr
	}
	return memberRecord{cluster: r.cluster, addrs: a, removed: slices.Clone(r.removed)}
}

// clusterIDOf is the ID of the cluster created with the initial members ids:
// every initial member computes the same, and a node that bootstrapped a
// cluster of its own by mistake (a new member started without Join, or with
// another cluster's peers) a different one, so transports can refuse to
// connect the two. Never 0 (which means "unknown").
func clusterIDOf(ids []uint64) uint64 {
	ids = slices.Sorted(slices.Values(ids))
	h := fnv.New64a()
	_, _ = h.Write([]byte("raftdss cluster"))
	for _, id := range ids {
		_, _ = h.Write(binary.BigEndian.AppendUint64(nil, id))
	}
	return max(h.Sum64(), 1)
}

// A new cluster's first entries add its initial members (raft.Peer); their
// context is clusterTag followed by the cluster ID, big-endian, where a
// member added later has its address, which never starts with a NUL byte
// (checkAddr).
var clusterTag = []byte{0, 'C'}

func clusterContext(cluster uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clone(clusterTag), cluster)
}

// parseClusterContext returns the cluster ID of a bootstrap entry's
// context, or false for an address.
func parseClusterContext(ctx []byte) (uint64, bool) {
	if len(ctx) != len(clusterTag)+8 || !bytes.HasPrefix(ctx, clusterTag) {
		return 0, false
	}
	return binary.BigEndian.Uint64(ctx[len(clusterTag):]), true
}

// ClusterID returns the ID of this node's cluster, or 0 when it is not known:
// a cluster created before cluster IDs existed, or a joining node that has
// not yet received the log or a snapshot.
func (n *Node) ClusterID() uint64 {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	return n.members.cluster
}

// The snapshot data a node writes is its member record followed by the
// Application's snapshot:
//
//	snapMagic | snapFormat | uvarint cluster | uvarint n
//	| n × (uvarint id | uvarint len | addr) | uvarint m
//	| m × uvarint removed id | Application snapshot
//
// Snapshots written before this record existed hold the Application's bytes
// alone: their first byte is never snapMagic (the Raft store's snapshots
// begin with their version, 1; an empty snapshot has no byte), so they read
// as an empty record and the whole data.
const (
	snapMagic  = 0xD5
	snapFormat = 1
)

// appendRecord appends the encoded record to dst.
func (r memberRecord) appendTo(dst []byte) []byte {
	ids := make([]uint64, 0, len(r.addrs))
	for id := range r.addrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	dst = append(dst, snapMagic, snapFormat)
	dst = binary.AppendUvarint(dst, r.cluster)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, id)
		dst = binary.AppendUvarint(dst, uint64(len(r.addrs[id])))
		dst = append(dst, r.addrs[id]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.removed)))
	for _, id := range r.removed {
		dst = binary.AppendUvarint(dst, id)
	}
	return dst
}

// splitSnapshotData returns the member record of a snapshot's data and the
// Application's part (a subslice, not a copy).
func splitSnapshotData(data []byte) (memberRecord, []byte, error) {
	rec := memberRecord{addrs: map[uint64]string{}}
	if len(data) == 0 || data[0] != snapMagic {
		return rec, data, nil // written before the record existed
	}
	if len(data) < 2 || data[1] != snapFormat {
		return rec, nil, fmt.Errorf("consensus: snapshot data has unknown format %v", data[1:min(2, len(data))])
	}
	b := data[2:]
	short := errors.New("consensus: truncated member record in snapshot data")
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	cluster, ok := next()
	if !ok {
		return rec, nil, short
	}
	rec.cluster = cluster
	n, ok := next()
	if !ok || n > uint64(len(b)) {
		return rec, nil, short
	}
	for range n {
		id, ok1 := next()
		l, ok2 := next()
		if !ok1 || !ok2 || l > uint64(len(b)) {
			return rec, nil, short
		}
		rec.addrs[id] = string(b[:l])
		b = b[l:]
	}
	m, ok := next()
	if !ok || m > uint64(len(b)) {
		return rec, nil, short
	}
	for range m {
		id, ok := next()
		if !ok {
			return rec, nil, short
		}
		rec.removed = append(rec.removed, id)
	}
	if !slices.IsSorted(rec.removed) {
		return rec, nil, errors.New("consensus: member record's removed IDs are not sorted")
	}
	return rec, b, nil
}

// confChanges tracks this node's membership changes in flight, by the
// ConfChange ID it proposed them under, so that applying one can tell its
// proposer the outcome.
type confChanges struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan error
}

func (c *confChanges) register() (uint64, chan error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		// Seeded from the clock: an ID must not match an entry proposed
		// before a restart and applied again after it.
		c.next = uint64(time.Now().UnixNano())
		c.waiting = map[uint64]chan error{}
	}
	c.next++
	ch := make(chan error, 1)
	c.waiting[c.next] = ch
	return c.next, ch
}

func (c *confChanges) forget(id uint64) {
	c.mu.Lock()
	delete(c.waiting, id)
	c.mu.Unlock()
}

// finish delivers the outcome of the change proposed under id, if this node
// proposed it and still waits.
func (c *confChanges) finish(id uint64, err error) {
	c.mu.Lock()
	ch := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// Members returns the membership as of this node's applied index.
func (n *Node) Members() Membership {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	m := Membership{Removed: slices.Clone(n.members.removed)}
	for _, id := range n.confState.GetVoters() {
		m.Members = append(m.Members, Member{ID: id, Addr: n.members.addrs[id]})
	}
	for _, id := range n.confState.GetLearners() {
		m.Members = append(m.Members, Member{ID: id, Addr: n.members.addrs[id], Learner: true})
	}
	slices.SortFunc(m.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return m
}

// AddMember adds a voter with raft ID id, which the other nodes dial at addr
// (host:port), and returns once the change is applied on this node. The new
// node must then be started on an empty data directory with Config.Join.
// Until it has caught up, it counts in the quorum without acknowledging
// anything: add a member only while the others can form a quorum without it,
// or add it with AddLearner and promote it once it has caught up.
func (n *Node) AddMember(ctx context.Context, id uint64, addr string) error {
	return n.add(ctx, raftpb.ConfChangeAddNode, id, addr)
}

// AddLearner adds a learner with raft ID id, dialled at addr, and returns
// once the change is applied on this node. Start the new node as for
// AddMember; once it has caught up, PromoteMember makes it a voter. Unlike
// a voter added directly, a learner does not raise the quorum while it
// catches up (or if it never starts).
func (n *Node) AddLearner(ctx context.Context, id uint64, addr string) error {
	return n.add(ctx, raftpb.ConfChangeAddLearnerNode, id, addr)
}

// add proposes a new member of kind t (a voter or a learner).
func (n *Node) add(ctx context.Context, t raftpb.ConfChangeType, id uint64, addr string) error {
	if id == 0 {
		return fmt.Errorf("%w: raft ID 0", ErrInvalidMember)
	}
	if err := checkAddr(addr); err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrInvalidMember, addr, err)
	}
	cc := &raftpb.ConfChange{Type: t.Enum(), NodeId: proto.Uint64(id), Context: []byte(addr)}
	if err := n.checkChange(cc); err != nil {
		return err
	}
	return n.changeMembers(ctx, cc)
}

// PromoteMember makes the learner id a voter and returns once the change is
// applied on this node. Promote a learner only once it has caught up (its
// applied index near the others'): from then on it counts in the quorum. On
// the leader, a learner below 90% of the leader's commit index is refused
// (ErrLearnerBehind); other nodes cannot tell.
func (n *Node) PromoteMember(ctx context.Context, id uint64) error {
	if id == 0 {
		return fmt.Errorf("%w: raft ID 0", ErrInvalidMember)
	}
	n.memberMu.Lock()
	voter, learner := slices.Contains(n.confState.GetVoters(), id), slices.Contains(n.confState.GetLearners(), id)
	removed := slices.Contains(n.members.removed, id)
	n.memberMu.Unlock()
	switch {
	case removed:
		return fmt.Errorf("%w: %d", ErrMemberRemoved, id)
	case voter:
		return fmt.Errorf("%w: %d is already a voter", ErrMemberExists, id)
	case !learner:
		return fmt.Errorf("%w: %d", ErrNoSuchMember, id)
	}
	// Only the leader knows how far a learner got; a promotion through
	// another node relies on the operator having checked.
	if err := learnerCaughtUp(n.rn.Status(), id); err != nil {
		return err
	}
	// Adding a learner as a voter promotes it (raft's simple change).
	return n.changeMembers(ctx, &raftpb.ConfChange{
		Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id)})
}

// RemoveMember removes the voter id and returns once the change is applied
// on this node. The removed node stops taking part (it may be this one:
// it then steps down and stays out); its ID is never valid again.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	if id == 0 {
		return fmt.Errorf("%w: raft ID 0", ErrInvalidMember)
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)}
	if err := n.checkChange(cc); err != nil {
		return err
	}
	return n.changeMembers(ctx, cc)
}

// learnerCaughtUp says, on the leader (st is raft's status there), whether
// learner id has at least 90% of the committed log; elsewhere it cannot tell
// and says yes.
func learnerCaughtUp(st raft.Status, id uint64) error {
	if st.RaftState != raft.StateLeader {
		return nil
	}
	var match uint64
	if pr, ok := st.Progress[id]; ok {
		match = pr.Match
	}
	if commit := st.HardState.GetCommit(); match*10 < commit*9 {
		return fmt.Errorf("%w: %d has %d of %d entries", ErrLearnerBehind, id, match, commit)
	}
	return nil
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("control characters or spaces")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return errors.New("port must be 1-65535")
	}
	return nil
}

// checkChange validates a change against this node's applied membership,
// to report a clear error before proposing. The apply re-checks it
// (validChange) against the membership in log order.
func (n *Node) checkChange(cc *raftpb.ConfChange) error {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	if cc.GetType() != raftpb.ConfChangeRemoveNode && isMember(n.confState, cc.GetNodeId()) {
		return fmt.Errorf("%w: %d", ErrMemberExists, cc.GetNodeId())
	}
	return validChange(n.confState, n.members, cc)
}

func isMember(cs *raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetLearners(), id)
}

// validChange says whether a change may be applied to membership (cs, rec),
// in log order. Adding a voter again is valid, and a no-op: a new cluster's
// first entries add its initial members, which raft has already added when
// it bootstrapped, and a change proposed again (changeMembers) may apply
// twice. Adding a learner as a voter promotes it, but only as PromoteMember
// proposes it, without an address: an AddMember that reached the log after
// an AddLearner of the same ID must not promote a learner unchecked. Adding
// a voter as a learner is not valid: raft would demote it.
func validChange(cs *raftpb.ConfState, rec memberRecord, cc *raftpb.ConfChange) error {
	voters, id := cs.GetVoters(), cc.GetNodeId()
	switch t := cc.GetType(); t {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		_, bootstrap := parseClusterContext(cc.GetContext())
		withAddr := len(cc.GetContext()) > 0 && !bootstrap
		switch {
		case id == 0:
			return fmt.Errorf("%w: raft ID 0", ErrInvalidMember)
		case slices.Contains(rec.removed, id):
			return fmt.Errorf("%w: %d", ErrMemberRemoved, id)
		case t == raftpb.ConfChangeAddLearnerNode && slices.Contains(voters, id):
			return fmt.Errorf("%w: %d is a voter", ErrMemberExists, id)
		case t == raftpb.ConfChangeAddNode && withAddr && slices.Contains(cs.GetLearners(), id):
			return fmt.Errorf("%w: %d is a learner: promote it", ErrMemberExists, id)
		}
	case raftpb.ConfChangeRemoveNode:
		switch {
		case slices.Contains(rec.removed, id):
			return fmt.Errorf("%w: %d", ErrMemberRemoved, id)
		case !isMember(cs, id):
			return fmt.Errorf("%w: %d", ErrNoSuchMember, id)
		case len(voters) == 1 && voters[0] == id:
			return fmt.Errorf("%w: %d", ErrLastMember, id)
		}
	default:
		return fmt.Errorf("%w: change type %v is not supported", ErrInvalidMember, t)
	}
	return nil
}

// changeMembers proposes cc and waits for its outcome on this node.
//
// raft's leader takes one membership change at a time, and none until it has
// applied its whole log as of its election: a change proposed meanwhile is
// silently replaced by an empty entry. So a change not applied within two
// election timeouts is proposed again, under the same ID. That is safe: the
// first of the copies to apply reports the outcome, and a later copy applies
// as a no-op (adding a member again only records its address again;
// removing it again is invalid, so it is not applied).
func (n *Node) changeMembers(ctx context.Context, cc *raftpb.ConfChange) error {
	id, ch := n.changes.register()
	defer n.changes.forget(id)
	cc.Id = proto.Uint64(id)
	retry := time.NewTicker(2 * n.electionTimeout())
	defer retry.Stop()
	for {
		select {
		case <-n.done:
			return ErrStopped
		default:
		}
		if err := n.rn.ProposeConfChange(ctx, cc); err != nil {
			switch {
			case errors.Is(err, raft.ErrProposalDropped):
				return ErrNoLeader
			case errors.Is(err, raft.ErrStopped):
				return ErrStopped
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
			}
			return fmt.Errorf("consensus: proposing membership change: %w", err)
		}
		select {
		case err := <-ch:
			return err
		case <-retry.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
		case <-n.stopc:
			return ErrStopped
		}
	}
}

// applyConfChange applies a committed membership change to raft, the member
// record and the transport. It runs on the apply goroutine while the Ready
// goroutine waits for it (queueApply), so membership has one writer at a
// time. A change that is not valid in log order (validChange: e.g. two
// operators removing the last two members at once) is applied as raft's
// no-op, a change of node 0, as etcd's server does: raft would panic on it.
func (n *Node) applyConfChange(cc raftpb.ConfChangeI) {
	v1, isV1 := cc.AsV1()
	var err error
	if !isV1 {
		// This node only proposes v1 changes; a v2 one cannot come from it.
		err = fmt.Errorf("%w: joint configuration changes are not supported", ErrInvalidMember)
	}
	// What the proposer hears: err, or that its promotion found a voter.
	outcome := err
	if err == nil && v1.GetNodeId() != 0 {
		n.memberMu.Lock()
		err = validChange(n.confState, n.members, v1)
		outcome = err
		if err == nil && v1.GetType() == raftpb.ConfChangeAddNode && len(v1.GetContext()) == 0 &&
			slices.Contains(n.confState.GetVoters(), v1.GetNodeId()) {
			outcome = fmt.Errorf("%w: %d is already a voter", ErrMemberExists, v1.GetNodeId())
		}
		n.memberMu.Unlock()
	}
	if err != nil {
		n.lg.Warn("membership change not applied", zap.Error(err))
		cc = &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(0)}
	}
	cs := n.rn.ApplyConfChange(cc)

	n.memberMu.Lock()
	n.confState = cs
	id := v1.GetNodeId()
	addr := string(v1.GetContext())
	if cluster, ok := parseClusterContext(v1.GetContext()); ok {
		addr = ""
		if n.members.cluster == 0 {
			n.members.cluster = cluster
		}
	}
	if err == nil && id != 0 {
		switch v1.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			// A promotion (or a change applied twice) names no address:
			// the member keeps the one it was added with.
			if _, known := n.members.addrs[id]; !known || addr != "" {
				n.members.addrs[id] = addr
			}
		case raftpb.ConfChangeRemoveNode:
			delete(n.members.addrs, id)
			i, _ := slices.BinarySearch(n.members.removed, id)
			n.members.removed = slices.Insert(n.members.removed, i, id)
		}
	}
	n.publishPeersLocked()
	n.memberMu.Unlock()

	if err == nil && id != 0 {
		switch v1.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			n.lg.Info("member added", zap.Uint64("member", id), zap.String("addr", addr),
				zap.Bool("learner", v1.GetType() == raftpb.ConfChangeAddLearnerNode))
			if id != n.cfg.ID {
				n.dialPeer(id)
			}
		case raftpb.ConfChangeRemoveNode:
			if id == n.cfg.ID {
				n.removed.Store(true)
				n.lg.Error("this node was removed from the cluster: stop it; its data directory and raft ID must not be used again")
			} else {
				n.lg.Info("member removed", zap.Uint64("member", id))
				n.tr.RemovePeer(id)
			}
		}
	}
	n.changes.finish(v1.GetId(), outcome)
}

// dialPeer registers member id with the transport at the address this node
// knows for it: its own Config.Peers entry first (an operator's override),
// else the address the member was added with.
func (n *Node) dialPeer(id uint64) {
	addr := n.cfg.Peers[id]
	if addr == "" {
		n.memberMu.Lock()
		addr = n.members.addrs[id]
		n.memberMu.Unlock()
	}
	if addr == "" {
		n.lg.Warn("no address known for a member: add it to this node's peers", zap.Uint64("member", id))
		return
	}
	n.tr.AddPeer(id, addr)
}

// setMembership replaces the membership with a snapshot's (on restart or
// when installing a leader's snapshot) and tells the transport.
func (n *Node) setMembership(cs *raftpb.ConfState, rec memberRecord) {
	n.memberMu.Lock()
	n.confState = cs
	n.members = rec
	n.publishPeersLocked()
	n.memberMu.Unlock()
	if n.tr == nil {
		return // New registers the peers once the transport exists
	}
	for _, id := range slices.Concat(cs.GetVoters(), cs.GetLearners()) {
		if id != n.cfg.ID {
			n.dialPeer(id)
		}
	}
	for _, id := range rec.removed {
		if id == n.cfg.ID {
			n.removed.Store(true)
			n.lg.Error("this node was removed from the cluster: stop it; its data directory and raft ID must not be used again")
		} else {
			n.tr.RemovePeer(id)
		}
	}
}
