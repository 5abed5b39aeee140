package consensus

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Config configures a Node. Zero values of the tuning fields select the
// defaults documented on each field.
type Config struct {
	// ID is this node's raft ID. It is never 0 and, like every raft ID, is
	// used once for all time, even after the member is removed.
	ID uint64
	// Peers are the initial members, this node included: raft ID → the
	// address the transport dials. They bootstrap a new cluster (the first
	// start, when DataDir holds no WAL, unless Join) and are registered with
	// the transport on every start. On a restart, membership itself comes
	// from the WAL and snapshot; Peers only supplies addresses, and wins over
	// the address a member was added with (AddMember), so an operator can
	// point a node at a member that moved.
	Peers map[uint64]string
	// Join makes a node whose DataDir holds no WAL start as a new member of
	// a running cluster, added with AddMember beforehand: it does not
	// bootstrap from Peers but waits, without a configuration, for the
	// leader to send it the log or a snapshot. Peers must give the
	// addresses of the current members. The WAL records it: a restart
	// before the leader sent anything still waits, with or without Join.
	// Ignored on a restart.
	Join bool
	// DataDir holds the WAL (DataDir/wal), the snapshots (DataDir/snap) and
	// whatever the caller keeps beside them. It is created when missing.
	DataDir string
	// TickInterval is the duration of one raft logical clock tick. Default
	// 100ms. Election and heartbeat timeouts are counted in ticks, so they
	// scale with it.
	TickInterval time.Duration
	// ElectionTicks is the number of ticks without hearing from a leader
	// before a follower campaigns (randomised by raft in [E, 2E)). Default
	// 10. It is also how long a leader cut off from a quorum keeps leading
	// before CheckQuorum makes it step down. Must exceed HeartbeatTicks;
	// raft recommends ElectionTicks = 10 × HeartbeatTicks.
	ElectionTicks int
	// HeartbeatTicks is the number of ticks between leader heartbeats.
	// Default 1.
	HeartbeatTicks int
	// SnapshotEntries is the spacing, in applied entries, of the snapshots
	// of the Application (each followed by a compaction of the in-memory
	// log and a purge of old WAL segments). A node snapshots when its
	// applied index crosses one of its trigger points, k × SnapshotEntries
	// minus a phase derived from its ID, so that the members of a cluster,
	// which apply the same entries, snapshot at different indexes rather
	// than all at once; and in any case once SnapshotEntries entries were
	// applied since its newest snapshot (a snapshot started by a trigger
	// point needs SnapshotEntries/16 entries since the previous one). The
	// snapshot is written in the background; while one is in flight no
	// other starts, so at most about 2 × SnapshotEntries entries follow the
	// newest snapshot in the WAL, and at most SnapshotEntries while none is
	// in flight. Default 10000.
	SnapshotEntries uint64
	// CatchUpEntries is the number of entries kept in the in-memory log
	// below the snapshot index after compaction, so a slightly lagging
	// follower is caught up by entries rather than a whole snapshot.
	// Default 5000. Values ≥ SnapshotEntries make compaction lag further
	// behind but are valid.
	CatchUpEntries uint64
	// MaxSizePerMsg bounds the bytes of entries in one append message
	// (raft.Config.MaxSizePerMsg). Default 1 MiB.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower
	// during optimistic replication (raft.Config.MaxInflightMsgs). Default
	// 256. Together with MaxSizePerMsg it bounds per-follower buffering.
	MaxInflightMsgs int
	// MaxUncommittedEntriesSize bounds the bytes of uncommitted entries a
	// leader accepts; beyond it proposals are dropped (ErrProposalDropped)
	// until entries commit. Default 64 MiB.
	MaxUncommittedEntriesSize uint64
	// Logger receives the node's logs and raft's. Default: no logging.
	Logger *zap.Logger
	// SnapshotObserver, when set, is called on the node's Ready goroutine
	// after each snapshot the node takes has become its newest. It must
	// return quickly: applies wait for it. Benchmarks use it to tell the
	// writes that overlapped a snapshot from the others.
	SnapshotObserver func(SnapshotEvent)
}

const (
	defaultTickInterval              = 100 * time.Millisecond
	defaultElectionTicks             = 10
	defaultHeartbeatTicks            = 1
	defaultSnapshotEntries           = 10000
	defaultCatchUpEntries            = 5000
	defaultMaxSizePerMsg             = 1 << 20
	defaultMaxInflightMsgs           = 256
	defaultMaxUncommittedEntriesSize = 64 << 20
)

// withDefaults returns c with zero tuning fields replaced by defaults, or an
// error when a field is invalid.
func (c Config) withDefaults() (Config, error) {
	if c.ID == 0 {
		return c, errors.New("consensus: Config.ID must not be 0")
	}
	if c.DataDir == "" {
		return c, errors.New("consensus: Config.DataDir is required")
	}
	if _, ok := c.Peers[c.ID]; !ok && len(c.Peers) > 0 {
		return c, fmt.Errorf("consensus: Config.Peers must include this node (%d)", c.ID)
	}
	for id := range c.Peers {
		if id == 0 {
			return c, errors.New("consensus: Config.Peers has raft ID 0")
		}
	}
	if c.TickInterval <= 0 {
		c.TickInterval = defaultTickInterval
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = defaultElectionTicks
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = defaultHeartbeatTicks
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		return c, fmt.Errorf("consensus: ElectionTicks (%d) must exceed HeartbeatTicks (%d)", c.ElectionTicks, c.HeartbeatTicks)
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = defaultSnapshotEntries
	}
	if c.CatchUpEntries == 0 {
		c.CatchUpEntries = defaultCatchUpEntries
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = defaultMaxSizePerMsg
	}
	if c.MaxInflightMsgs <= 0 {
		c.MaxInflightMsgs = defaultMaxInflightMsgs
	}
	if c.MaxUncommittedEntriesSize == 0 {
		c.MaxUncommittedEntriesSize = defaultMaxUncommittedEntriesSize
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// ElectionTimeout is the configured election timeout (ElectionTicks ticks).
func (c Config) ElectionTimeout() time.Duration {
	cc, err := c.withDefaults()
	if err != nil {
		return time.Duration(defaultElectionTicks) * defaultTickInterval
	}
	return time.Duration(cc.ElectionTicks) * cc.TickInterval
}
