package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReadsViaLogFlag: with --raft_reads_via_log every read is a log entry
// of its own (the applied index advances by one per read, and the read
// counts as a committed proposal) that leaves the state alone, and answers
// as usual; a node restarted on that data directory without the flag
// applies the read entries as failed operations, changing nothing.
func TestReadsViaLogFlag(t *testing.T) {
	cfg, err := parseFlags([]string{"--dev", "--raft_reads_via_log"}, io.Discard)
	if err != nil || !cfg.raft.readsViaLog {
		t.Fatalf("--raft_reads_via_log not parsed: %v %+v", err, cfg)
	}
	if cfg, err = parseFlags([]string{"--dev"}, io.Discard); err != nil || cfg.raft.readsViaLog {
		t.Fatalf("reads via the log must be off by default: %v %+v", err, cfg)
	}

	devDir, dataDir := t.TempDir(), t.TempDir()
	args := append([]string{"--raft_data_dir", dataDir, "--raft_addr", "127.0.0.1:0"}, fastRaft...)
	n := startNode(t, devDir, append(args, "--raft_reads_via_log")...)
	n.waitReady()
	if code, body := n.call("PUT", "/dss/v1/uss_availability/uss1", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT availability: %d %s", code, body)
	}
	st := n.status()
	query := `{"area_of_interest": {"volume": {"outline_circle": {"center": {"lat": 46.97, "lng": 7.47},
		"radius": {"value": 300, "units": "M"}}}}}`
	const rounds = 5
	for i := range rounds {
		if code, body := n.call("GET", "/dss/v1/uss_availability/uss1", ""); code != http.StatusOK || !strings.Contains(body, "Down") {
			t.Fatalf("GET availability: %d %s", code, body)
		}
		if code, body := n.call("POST", "/dss/v1/operational_intent_references/query", query); code != http.StatusOK {
			t.Fatalf("query: %d %s", code, body)
		}
		after := n.status()
		if want := st.AppliedIndex + 2*uint64(i+1); after.AppliedIndex != want || after.StateHash != st.StateHash {
			t.Fatalf("after %d reads: applied index %d (want %d), hash %s (want %s, unchanged)",
				2*(i+1), after.AppliedIndex, want, after.StateHash, st.StateHash)
		}
	}
	_, metrics := n.call("GET", "/metrics", "")
	if want := fmt.Sprintf("dss_raft_proposals_committed_total %d", 1+2*rounds); !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q", want)
	}
	if code := n.stop(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, n.stderr.String())
	}

	// Restarted without the flag, the node applies the read entries as
	// failed operations (raftstore.ErrBadOperation): nothing changes, and
	// it does not halt (one malformed entry must not stop every replica).
	m := startNode(t, devDir, args...)
	m.waitReady()
	if after := m.status(); after.HaltedIndex != 0 || after.StateHash != st.StateHash ||
		after.AppliedIndex < st.AppliedIndex+2*rounds {
		t.Errorf("restart without the flag: %+v, want the state hash %s at index ≥ %d, not halted",
			after, st.StateHash, st.AppliedIndex+2*rounds)
	}
	if code := m.stop(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, m.stderr.String())
	}
}
