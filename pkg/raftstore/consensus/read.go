package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
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
	if n.halt.Load() != nil {
		return ErrHalted
	}
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

// maxReadRounds is how many ReadIndex rounds a node keeps in flight at
// once. With one, every read that arrives during a round waits for it to
// end and then for a whole round of its own; a round crosses the Ready
// loops of this node, the leader and a quorum, each of which may be busy
// with a WAL fsync (and, before applies had a goroutine of their own, with
// an apply batch), so it took 5-10 ms under load (W3 at 64 clients: reads
// were slower than writes). A few rounds in flight
// overlap those waits; past that, new reads still batch into the next free
// round.
const maxReadRounds = 4

// readRound is one ReadIndex request in flight and the reads it serves.
type readRound struct {
	rctx   []byte
	batch  []chan readResult
	sentAt time.Time
}

// readLoop runs the batched ReadIndex rounds: up to maxReadRounds in flight;
// the requests that arrive while all are taken wait for the next. An answer
// to a round also serves every round issued before it: its index is the
// leader's commit index at a time after all of their reads began, which is
// what linearizability asks of each (thesis §6.4), and an earlier round's
// own answer may never come (it is dropped when leadership changes). When
// the oldest round gets no answer within an election timeout (no leader, or
// the leader lost its quorum), all rounds in flight are re-issued as one
// with a fresh request context, taking the new waiters along.
func (n *Node) readLoop() {
	defer n.wg.Done()
	var (
		seq     uint64
		rounds  []readRound // in the order issued
		waiting []chan readResult
	)
	retry := time.NewTicker(n.cfg.TickInterval)
	defer retry.Stop()
	deliver := func(batch []chan readResult, r readResult) {
		for _, ch := range batch {
			ch <- r // buffered, one send per channel
		}
	}
	defer func() {
		for _, r := range rounds {
			deliver(r.batch, readResult{err: ErrStopped})
		}
		deliver(waiting, readResult{err: ErrStopped})
	}()
	// issue sends a round for the waiting reads and those carried over
	// from re-issued rounds (counted as barriers when first issued).
	issue := func(carried []chan readResult) {
		seq++
		rctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, n.cfg.ID), seq)
		n.stats.readRounds.Add(1)
		n.stats.readBarriers.Add(uint64(len(waiting)))
		rounds = append(rounds, readRound{rctx: rctx, batch: append(carried, waiting...), sentAt: time.Now()})
		waiting = nil
		ctx, cancel := context.WithTimeout(n.ctx, n.electionTimeout())
		defer cancel()
		if err := n.rn.ReadIndex(ctx, rctx); err != nil && !errors.Is(err, context.Canceled) &&
			!errors.Is(err, context.DeadlineExceeded) {
			n.lg.Debug("ReadIndex request failed; will retry")
		}
	}
	for {
		if len(waiting) > 0 && len(rounds) < maxReadRounds {
			issue(nil)
		}
		select {
		case ch := <-n.readReqs:
			waiting = append(waiting, ch)
		case rs := <-n.readC:
			k := slices.IndexFunc(rounds, func(r readRound) bool { return bytes.Equal(r.rctx, rs.RequestCtx) })
			if k < 0 {
				continue // a round already served or re-issued
			}
			now := time.Now()
			for _, r := range rounds[:k+1] {
				n.stats.readRoundNanos.Add(int64(now.Sub(r.sentAt)))
				deliver(r.batch, readResult{index: rs.Index})
			}
			rounds = slices.Delete(rounds, 0, k+1)
		case <-retry.C:
			if len(rounds) > 0 && time.Since(rounds[0].sentAt) >= n.electionTimeout() {
				var carried []chan readResult
				for _, r := range rounds {
					carried = append(carried, r.batch...)
				}
				rounds = rounds[:0]
				issue(carried)
			}
		case <-n.stopc:
			return
		}
	}
}
