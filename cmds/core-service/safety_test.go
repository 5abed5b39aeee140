package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

type fakeSafety struct {
	rejections map[string]uint64
	status     consensus.Status
}

func (f *fakeSafety) PeerRejections() map[string]uint64 { return f.rejections }
func (f *fakeSafety) Status() consensus.Status          { return f.status }

// TestRaftSafetyMetrics: dss_raft_peer_messages_rejected_total has one
// series per reason, zeros included, with the node's counts, and
// dss_raft_halted_index follows the node's status (0 while not halted).
func TestRaftSafetyMetrics(t *testing.T) {
	f := &fakeSafety{rejections: map[string]uint64{consensus.RejectSender: 7, consensus.RejectTerm: 2}}
	reg := prometheus.NewRegistry()
	if err := registerRaftSafetyMetrics(reg, f); err != nil {
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
	body := scrape()
	for _, r := range consensus.RejectReasons {
		want := fmt.Sprintf("dss_raft_peer_messages_rejected_total{reason=%q} %d", r, f.rejections[r])
		if !strings.Contains(body, want+"\n") {
			t.Errorf("lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(body, "# TYPE dss_raft_peer_messages_rejected_total counter") ||
		!strings.Contains(body, "\ndss_raft_halted_index 0\n") {
		t.Errorf("metrics:\n%s", body)
	}
	f.status = consensus.Status{HaltedIndex: 42, HaltedReason: "x"}
	f.rejections[consensus.RejectSender] = 8
	body = scrape()
	if !strings.Contains(body, "\ndss_raft_halted_index 42\n") ||
		!strings.Contains(body, `dss_raft_peer_messages_rejected_total{reason="sender"} 8`) {
		t.Errorf("after a halt and a rejection:\n%s", body)
	}
}

// TestHaltedMessage: the readiness answer of a halted node names the entry,
// the reason (bounded) and the recovery procedure.
func TestHaltedMessage(t *testing.T) {
	msg := haltedMessage(consensus.Status{HaltedIndex: 1234, HaltedReason: "raftstore: undecodable entry: type 99"})
	for _, want := range []string{"HALTED", "log entry 1234,", "undecodable entry: type 99", consensus.HaltRecovery} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	long := haltedMessage(consensus.Status{HaltedIndex: 1, HaltedReason: strings.Repeat("x", 10*maxHaltReason)})
	if len(long) > maxHaltReason+len(consensus.HaltRecovery)+300 {
		t.Errorf("unbounded reason: %d bytes", len(long))
	}
}

// TestNodeExportsSafetyMetrics: a running raft node exports every
// rejection reason (0 on a healthy node) and dss_raft_halted_index 0.
func TestNodeExportsSafetyMetrics(t *testing.T) {
	n := startNode(t, t.TempDir(), append([]string{"--raft_data_dir", shortTempDir(t)}, fastRaft...)...)
	n.waitReady()
	code, body := n.call("GET", "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, r := range consensus.RejectReasons {
		if want := fmt.Sprintf("dss_raft_peer_messages_rejected_total{reason=%q} 0\n", r); !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := metricLine(t, n, "dss_raft_halted_index"); got != "dss_raft_halted_index 0" {
		t.Errorf("halted index: %q", got)
	}
	if st := n.status(); st.HaltedIndex != 0 || st.HaltedReason != "" {
		t.Errorf("/status of a healthy node: %+v", st)
	}
}
