package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"
)

type readResult struct {
	index uint64
	err   error
}

// ReadBarrier returns once this node's Application has applied every entry
// that was committed when the call began, so a read of local state that
// follows is linearizable (raft thesis §6.4, ReadIndex). It works on
// followers too: raft forwards the request to the leader.
//
// Reads are batched: all calls that arrive while a ReadIndex round is in
// flight share the next round, so one heartbeat quorum serves many reads.
// It returns ctx's error when no quorum confirms the leader in time (e.g.
// this node is in a minority): a read is never served from unconfirmed
// state.
func (n *Node) ReadBarrier(ctx context.Context) error {
	ch := make(chan readResult, 1)
	select {
	case n.readReqs <- ch:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
	var index uint64
	select {
	case r := <-ch:
		if r.err != nil {
			return r.err
		}
		index = r.index
	case <-ctx.Done():
		return ctx.Err()
	}
	return n.WaitApplied(ctx, index)
}

// readLoop runs the batched ReadIndex rounds: at most one in flight; the
// requests that arrive meanwhile wait for the next. A round that gets no
// answer within an election timeout (the request was dropped because there
// was no leader, or the leader lost its quorum) is re-issued with a fresh
// request context, taking the new waiters along.
func (n *Node) readLoop() {
	defer n.wg.Done()
	var (
		seq      uint64
		rctx     []byte
		inflight []chan readResult
		waiting  []chan readResult
		sentAt   time.Time
	)
	retry := time.NewTicker(n.cfg.TickInterval)
	defer retry.Stop()
	deliver := func(batch []chan readResult, r readResult) {
		for _, ch := range batch {
			ch <- r // buffered, one send per channel
		}
	}
	defer func() {
		deliver(inflight, readResult{err: ErrStopped})
		deliver(waiting, readResult{err: ErrStopped})
	}()
	issue := func() {
		seq++
		rctx = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, n.cfg.ID), seq)
		n.stats.readRounds.Add(1)
		n.stats.readBarriers.Add(uint64(len(waiting)))
		inflight = append(inflight, waiting...)
		waiting = nil
		sentAt = time.Now()
		ctx, cancel := context.WithTimeout(n.ctx, n.electionTimeout())
		defer cancel()
		if err := n.rn.ReadIndex(ctx, rctx); err != nil && !errors.Is(err, context.Canceled) &&
			!errors.Is(err, context.DeadlineExceeded) {
			n.lg.Debug("ReadIndex request failed; will retry")
		}
	}
	for {
		if len(inflight) == 0 && len(waiting) > 0 {
			issue()
		}
		select {
		case ch := <-n.readReqs:
			waiting = append(waiting, ch)
		case rs := <-n.readC:
			if len(inflight) > 0 && bytes.Equal(rs.RequestCtx, rctx) {
				deliver(inflight, readResult{index: rs.Index})
				inflight = nil
			}
		case <-retry.C:
			if len(inflight) > 0 && time.Since(sentAt) >= n.electionTimeout() {
				issue()
			}
		case <-n.stopc:
			return
		}
	}
}
