package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// raftConnsCollector exports the raft port's connection limits:
// dss_raft_inbound_connections (open now) and
// dss_raft_inbound_connections_refused_total by reason, both reasons
// always present so that an alert can be written before the first refusal.
type raftConnsCollector struct {
	open, refused *prometheus.Desc
	stats         func() grpctransport.InboundStats
}

func (c *raftConnsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.refused
}

func (c *raftConnsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.RefusedTotal), grpctransport.RefusedTotal)
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.RefusedPerIP), grpctransport.RefusedPerIP)
}

// registerRaftConnMetrics adds the raft port's connection metrics to reg;
// stats reports the transport's counts (zeros before it listens).
func registerRaftConnMetrics(reg prometheus.Registerer, stats func() grpctransport.InboundStats) error {
	return reg.Register(&raftConnsCollector{
		open: prometheus.NewDesc("dss_raft_inbound_connections",
			"Inbound connections the raft port holds open now (members' and anyone else's; at most --"+
				maxInboundConnsFlag+").", nil, nil),
		refused: prometheus.NewDesc("dss_raft_inbound_connections_refused_total",
			"Inbound raft connections closed on arrival, before the TLS handshake, because --"+maxInboundConnsFlag+
				" (reason total) or --"+maxInboundConnsPerIPFlag+" (reason per_ip) connections were open: a flood, "+
				"or limits too small for the cluster.",
			[]string{"reason"}, nil),
		stats: stats,
	})
}
