package raftstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

// Metrics are the Raft store's Prometheus metrics. etcd's WAL fsync
// metrics (etcd_disk_wal_fsync_duration_seconds, ...) are not here: importing
// etcd's wal package registers them on prometheus.DefaultRegisterer.
type Metrics struct {
	leaderChanges      prometheus.Counter
	proposalsCommitted prometheus.Counter
	proposalsFailed    prometheus.Counter
	readsFailed        prometheus.Counter
	applyDuration      prometheus.Histogram
}

func newMetrics() *Metrics {
	return &Metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dss_raft_leader_changes_seen_total",
			Help: "Leader changes this node has observed (a new, known leader).",
		}),
		proposalsCommitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dss_raft_proposals_committed_total",
			Help: "Operations proposed by this node that committed and were applied " +
				"(including those whose operation returned an error such as a failed OVN check): " +
				"writes, and with --raft_reads_via_log (benchmarks only) reads too.",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dss_raft_proposals_failed_total",
			Help: "Write operations proposed by this node whose outcome is unknown to the client " +
				"(timeout, no quorum, node stopping), answered 503.",
		}),
		readsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dss_raft_reads_failed_total",
			Help: "Reads answered 503: their ReadIndex barrier was not confirmed (no quorum, timeout), " +
				"or with --raft_reads_via_log their log entry was not applied here in time.",
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dss_raft_apply_duration_seconds",
			Help: "Time to apply one committed SCD operation to the in-memory state.",
			// 10 µs … ~80 ms: a 2 km PUT OIR applies in tens of µs; large
			// areas and big subscription fan-outs take milliseconds.
			Buckets: prometheus.ExponentialBuckets(10e-6, 2, 14),
		}),
	}
}

// register adds the metrics, and gauges reading st's status, to reg.
func (m *Metrics) register(reg prometheus.Registerer, st *Store) error {
	status := func(f func(applied, commit, term, leader uint64, isLeader bool) float64) func() float64 {
		return func() float64 {
			s := st.Status()
			return f(s.Applied, s.Commit, s.Term, s.Leader, s.IsLeader)
		}
	}
	cs := []prometheus.Collector{
		m.leaderChanges, m.proposalsCommitted, m.proposalsFailed, m.readsFailed, m.applyDuration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_applied_index", Help: "Highest log index applied."},
			status(func(a, _, _, _ uint64, _ bool) float64 { return float64(a) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_commit_index", Help: "Highest log index known committed."},
			status(func(_, c, _, _ uint64, _ bool) float64 { return float64(c) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_term", Help: "Current Raft term."},
			status(func(_, _, t, _ uint64, _ bool) float64 { return float64(t) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_has_leader", Help: "1 when a leader is known."},
			status(func(_, _, _, l uint64, _ bool) float64 { return b2f(l != 0) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_is_leader", Help: "1 when this node is the leader."},
			status(func(_, _, _, _ uint64, il bool) float64 { return b2f(il) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_members",
			Help: "Members of the cluster, voters and learners, as of this node's applied index."},
			func() float64 { return float64(len(st.Node().Members().Members)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_removed",
			Help: "1 once this node knows it was removed from the cluster (stop it)."},
			func() float64 { return b2f(st.Status().Removed) }),
	}
	counter := func(name, help string, v func(consensus.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return v(st.gen.Node().Stats()) })
	}
	cs = append(cs,
		counter("dss_raft_wal_syncs_total", "WAL saves that were fsynced.",
			func(s consensus.Stats) float64 { return float64(s.WALSyncs) }),
		counter("dss_raft_wal_entries_total", "Log entries written to the WAL (per fsync: the group-commit factor).",
			func(s consensus.Stats) float64 { return float64(s.EntriesSaved) }),
		counter("dss_raft_read_barriers_total", "Linearizable reads that waited for a ReadIndex round.",
			func(s consensus.Stats) float64 { return float64(s.ReadBarriers) }),
		counter("dss_raft_read_rounds_total", "ReadIndex rounds issued (per round: a heartbeat quorum; reads per round is the batching factor).",
			func(s consensus.Stats) float64 { return float64(s.ReadRounds) }),
		counter("dss_raft_corrupt_snapshots_total", "Unreadable snapshot files this node skipped at its start for an older snapshot plus the WAL (logged at error; replace the disk or the node).",
			func(s consensus.Stats) float64 { return float64(s.CorruptSnapshots) }),
		counter("dss_raft_read_round_seconds_total", "Time from issuing ReadIndex rounds to their answers (per round: the wait a read adds).",
			func(s consensus.Stats) float64 { return s.ReadRoundTime.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dss_raft_snapshot_results_total",
			Help: "Operations proposed here whose entry reached this node only inside a leader's snapshot, answered with the result the snapshot carried."},
			func() float64 { d, _ := st.gen.SnapshotOutcomes(); return float64(d) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dss_raft_snapshot_results_lost_total",
			Help: "Operations proposed here whose entry reached this node only inside a leader's snapshot without its result (answered 503)."},
			func() float64 { _, l := st.gen.SnapshotOutcomes(); return float64(l) }),
	)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
