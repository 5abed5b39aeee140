package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

// raftSafety is what the consensus layer reports about the messages it
// refused and the entry it halted at (a *consensus.Node).
type raftSafety interface {
	PeerRejections() map[string]uint64
	Status() consensus.Status
}

// peerRejectionsCollector exports dss_raft_peer_messages_rejected_total,
// one series per consensus.RejectReasons entry, zeros included, so that an
// alert can be written before the first rejection.
type peerRejectionsCollector struct {
	desc *prometheus.Desc
	node raftSafety
}

func newPeerRejectionsCollector(node raftSafety) *peerRejectionsCollector {
	return &peerRejectionsCollector{
		desc: prometheus.NewDesc("dss_raft_peer_messages_rejected_total",
			"Raft messages from peers that this node refused before raft saw them, by reason "+
				"(recipient, sender, type, term, shape, entry, conf_change, snapshot): a peer that "+
				"is misconfigured, runs an incompatible version, or is forging messages.",
			[]string{"reason"}, nil),
		node: node,
	}
}

func (c *peerRejectionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *peerRejectionsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.node.PeerRejections()
	for _, r := range consensus.RejectReasons {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(counts[r]), r)
	}
}

// registerRaftSafetyMetrics adds dss_raft_peer_messages_rejected_total and
// dss_raft_halted_index (0 while not halted) to reg.
func registerRaftSafetyMetrics(reg prometheus.Registerer, node raftSafety) error {
	for _, c := range []prometheus.Collector{
		newPeerRejectionsCollector(node),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dss_raft_halted_index",
			Help: "The committed log entry this node could not apply and halted at (it applies nothing more and " +
				"is not ready until replaced or upgraded, see docs/peer-security.md); 0 while not halted."},
			func() float64 { return float64(node.Status().HaltedIndex) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// maxHaltReason bounds the halt reason in /readyz's answer (it quotes the
// entry's decoding error).
const maxHaltReason = 512

// haltedMessage is /readyz's answer on a node halted at an entry: the
// index, why, and the recovery procedure.
func haltedMessage(st consensus.Status) string {
	reason := st.HaltedReason
	if len(reason) > maxHaltReason {
		reason = reason[:maxHaltReason] + "..."
	}
	return fmt.Sprintf("not ready: HALTED at committed log entry %d, which this node cannot apply (%s); it applies "+
		"nothing more and answers requests 503. Recovery: %s", st.HaltedIndex, reason, consensus.HaltRecovery)
}
