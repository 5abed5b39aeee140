package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// TestRaftConnLimitFlags: the raft port's connection limits default to the
// transport's defaults, take positive values, and refuse 0, negative
// values and a per-IP limit above the total with an error naming the flag.
func TestRaftConnLimitFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--dev"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.raft.maxInboundConns != 64 || cfg.raft.maxInboundConnsPerIP != 16 {
		t.Fatalf("defaults %d, %d; want 64, 16", cfg.raft.maxInboundConns, cfg.raft.maxInboundConnsPerIP)
	}
	cfg, err = parseFlags([]string{"--dev", "--raft_max_inbound_conns=5", "--raft_max_inbound_conns_per_ip", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.raft.maxInboundConns != 5 || cfg.raft.maxInboundConnsPerIP != 5 {
		t.Fatalf("parsed %d, %d; want 5, 5", cfg.raft.maxInboundConns, cfg.raft.maxInboundConnsPerIP)
	}
	for _, bad := range [][]string{
		{"--raft_max_inbound_conns=0"},
		{"--raft_max_inbound_conns=-1"},
		{"--raft_max_inbound_conns=many"},
		{"--raft_max_inbound_conns_per_ip=0"},
		{"--raft_max_inbound_conns_per_ip=-3"},
		{"--raft_max_inbound_conns=8", "--raft_max_inbound_conns_per_ip=9"},
	} {
		_, err := parseFlags(append([]string{"--dev"}, bad...), io.Discard)
		flagName := strings.TrimPrefix(strings.Split(bad[len(bad)-1], "=")[0], "--")
		if err == nil || !strings.Contains(err.Error(), flagName) {
			t.Errorf("%q: error %v, want one naming %s", bad, err, flagName)
		}
	}
}

// TestRaftConnMetrics: the open-connection gauge and both refusal reasons
// are exported, zeros included, with the transport's counts.
func TestRaftConnMetrics(t *testing.T) {
	st := grpctransport.InboundStats{}
	reg := prometheus.NewRegistry()
	if err := registerRaftConnMetrics(reg, func() grpctransport.InboundStats { return st }); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	scrape := func() string {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		st   grpctransport.InboundStats
		want []string
	}{
		{grpctransport.InboundStats{}, []string{
			"dss_raft_inbound_connections 0\n",
			`dss_raft_inbound_connections_refused_total{reason="total"} 0` + "\n",
			`dss_raft_inbound_connections_refused_total{reason="per_ip"} 0` + "\n",
			"# TYPE dss_raft_inbound_connections gauge\n",
			"# TYPE dss_raft_inbound_connections_refused_total counter\n",
		}},
		{grpctransport.InboundStats{Open: 3, RefusedTotal: 7, RefusedPerIP: 11}, []string{
			"dss_raft_inbound_connections 3\n",
			`dss_raft_inbound_connections_refused_total{reason="total"} 7` + "\n",
			`dss_raft_inbound_connections_refused_total{reason="per_ip"} 11` + "\n",
		}},
	} {
		st = c.st
		body := scrape()
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("stats %+v: metrics lack %q:\n%s", c.st, w, body)
			}
		}
	}
}

// TestNodeLimitsRaftConns: a running node applies
// --raft_max_inbound_conns_per_ip to its raft port (a connection past it is
// closed on arrival) and /metrics shows the open connection and the
// refusal.
func TestNodeLimitsRaftConns(t *testing.T) {
	raftAddr := freeAddrs(t, 1)[0]
	n := startNode(t, t.TempDir(), append([]string{"--raft_data_dir", shortTempDir(t), "--raft_addr", raftAddr,
		"--raft_max_inbound_conns_per_ip", "1"}, fastRaft...)...)
	n.waitReady()
	held, err := net.Dial("tcp", raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	waitMetric(t, n, "dss_raft_inbound_connections", "dss_raft_inbound_connections 1")

	// Reset on arrival, which may already fail the dial.
	over, err := net.Dial("tcp", raftAddr)
	if err == nil {
		defer over.Close()
		_ = over.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = over.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection past --raft_max_inbound_conns_per_ip was not reset: %v", err)
	}
	waitMetric(t, n, `dss_raft_inbound_connections_refused_total{reason="per_ip"}`,
		`dss_raft_inbound_connections_refused_total{reason="per_ip"} 1`)
	if got := metricLine(t, n, "dss_raft_inbound_connections"); got != "dss_raft_inbound_connections 1" {
		t.Fatalf("after the refusal: %q", got)
	}
	if code, _ := n.call("GET", "/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz %d after a refused connection", code)
	}
}

// waitMetric polls /metrics until the line of name is want.
func waitMetric(t *testing.T, n *node, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricLine(t, n, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics: %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
