package consensus

import (
	"go.etcd.io/raft/v3/raftpb"
)

// applyQueue is how many batches of committed entries may wait for the apply
// goroutine, besides the one it applies, before the Ready goroutine blocks
// handing over another. One is enough to overlap persisting the next batch
// with applying this one; a longer queue would only let the Ready loop run
// ahead of applies that cannot keep up, and every write waits for the applies
// queued before its own (etcd's server hands batches over unbuffered). A
// Ready loop that has to wait instead makes bigger batches.
const applyQueue = 1

// applyJob is work for the apply goroutine: committed entries to apply, or,
// with done set, a barrier closed once everything queued before it is
// applied.
type applyJob struct {
	ents []*raftpb.Entry
	done chan struct{}
}

// applyLoop applies committed entries in log order, off the Ready goroutine
// (etcd's server does the same): while one batch is applied, the Ready
// goroutine already persists and sends the next, so a Ready's cycle is its
// fsync alone and heartbeats, ReadIndex rounds and acknowledgements do not
// wait behind applies. raft is told the entries are applied (Advance) when
// they are queued; what must see them applied waits for a barrier
// (drainApply): a membership change before the next Ready, a snapshot from
// the leader before it replaces the state. The node's own snapshots are
// captured here, between two batches (maybeSnapshot). Reads and proposals
// wait on the applied index itself (WaitApplied), which this goroutine
// advances (and installing a leader's snapshot, while it is idle).
func (n *Node) applyLoop() {
	defer n.wg.Done()
	for {
		select {
		case job := <-n.applyc:
			if err := n.applyEntries(job.ents); err != nil {
				n.shutdown(err)
				return
			}
			if err := n.maybeSnapshot(); err != nil {
				n.shutdown(err)
				return
			}
			if job.done != nil {
				close(job.done)
			}
		case <-n.stopc:
			return
		}
	}
}

// queueApply hands a Ready's committed entries to the apply goroutine. A
// batch with a membership change is applied before queueApply returns:
// raft must not hand out the next Ready, which may depend on the new
// configuration, before ApplyConfChange (etcd's server waits likewise).
func (n *Node) queueApply(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	n.stats.applyBatches.Add(1)
	n.stats.entriesApplied.Add(uint64(len(ents)))
	job := applyJob{ents: ents}
	for _, e := range ents {
		if t := e.GetType(); t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2 {
			job.done = make(chan struct{})
			break
		}
	}
	return n.handOver(job)
}

// pokeApply has the apply goroutine check, with no entry to apply, whether a
// snapshot is due: one that came due while another was in flight would
// otherwise wait for the next committed entry, which an idle cluster may
// not write for a long time. A full queue needs no poke: its jobs check.
func (n *Node) pokeApply() {
	select {
	case n.applyc <- applyJob{}:
	default:
	}
}

// drainApply returns once every entry queued so far is applied.
func (n *Node) drainApply() error {
	return n.handOver(applyJob{done: make(chan struct{})})
}

// handOver queues job for the apply goroutine and, for a barrier (done set),
// waits until it is applied. A node that stops meanwhile, also because
// applying failed, returns ErrStopped; the apply error is the node's Err.
func (n *Node) handOver(job applyJob) error {
	select {
	case n.applyc <- job:
	case <-n.stopc:
		return ErrStopped
	}
	if job.done == nil {
		return nil
	}
	select {
	case <-job.done:
		return nil
	case <-n.stopc:
		return ErrStopped
	}
}
