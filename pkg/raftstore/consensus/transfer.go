package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

var (
	// ErrNotLeader: a leadership transfer starts on the leader.
	ErrNotLeader = errors.New("consensus: this node is not the leader")
	// ErrTransferFailed: leadership did not move to the transferee in time
	// (raft gives up a transfer after an election timeout).
	ErrTransferFailed = errors.New("consensus: leadership transfer did not complete")
)

// TransferLeadership makes voter to the leader, for maintenance of this
// node's machine, and returns once this node sees to lead. It runs on the
// leader: raft catches to up with the log first, then tells it to campaign
// at once (MsgTimeoutNow); the others vote for it although they hear from a
// live leader. While the transfer runs (at most an election timeout) raft
// drops new proposals, which the store retries on the new leader.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	lead := n.leader.Load()
	switch {
	case to == 0:
		return fmt.Errorf("%w: raft ID 0", ErrInvalidMember)
	case lead != n.cfg.ID:
		if lead == 0 {
			return ErrNoLeader
		}
		return fmt.Errorf("%w: node %d leads; transfer from there", ErrNotLeader, lead)
	case to == n.cfg.ID:
		return nil // already the leader
	}
	n.memberMu.Lock()
	voter, learner := slices.Contains(n.confState.GetVoters(), to), slices.Contains(n.confState.GetLearners(), to)
	n.memberMu.Unlock()
	switch {
	case learner:
		return fmt.Errorf("%w: %d is a learner; promote it first", ErrInvalidMember, to)
	case !voter:
		return fmt.Errorf("%w: %d", ErrNoSuchMember, to)
	}
	// The transfer and the election it starts: raft aborts a transfer that
	// has not finished after an election timeout; the election itself takes
	// a few round trips. Twice that is enough to know.
	ctx, cancel := context.WithTimeout(ctx, 3*n.electionTimeout())
	defer cancel()
	n.rn.TransferLeadership(ctx, n.cfg.ID, to)
	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	for {
		if n.leader.Load() == to {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: node %d leads now (%v)", ErrTransferFailed, n.leader.Load(), context.Cause(ctx))
		case <-n.stopc:
			return ErrStopped
		case <-tick.C:
		}
	}
}
