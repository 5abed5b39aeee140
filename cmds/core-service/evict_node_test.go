package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/pgtest"
)

// shortOIR is an OIR with an implicit subscription, ending after d.
func shortOIR(d time.Duration) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`{"extents": [{"volume": {"outline_polygon": {"vertices": [
		{"lat": 40, "lng": 7}, {"lat": 40, "lng": 7.01}, {"lat": 40.01, "lng": 7.01}, {"lat": 40.01, "lng": 7}]},
		"altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
		"altitude_upper": {"value": 120, "reference": "W84", "units": "M"}},
		"time_start": {"value": %q, "format": "RFC3339"}, "time_end": {"value": %q, "format": "RFC3339"}}],
		"state": "Accepted", "uss_base_url": "https://uss1.example.com",
		"new_subscription": {"uss_base_url": "https://uss1.example.com"}}`,
		now.Format(time.RFC3339Nano), now.Add(d).Format(time.RFC3339Nano))
}

func adminEvict(t *testing.T, sock, method string) evictJSON {
	t.Helper()
	c := adminClient(sock)
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(method, "http://admin/evict", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out evictJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /evict: %d %v", method, resp.StatusCode, err)
	}
	return out
}

// TestNodeEvictsOnSchedule: a Raft node's schedule evicts an expired OIR and
// its implicit subscription through the log, counted in /metrics; the admin
// socket's dry run saw them first.
func TestNodeEvictsOnSchedule(t *testing.T) {
	devDir, dataDir := t.TempDir(), filepath.Join(shortTempDir(t), "data")
	// The first scheduled run comes 1.5 s after the start, after the dry runs below.
	n := startNode(t, devDir, append([]string{"--raft_data_dir", dataDir, "--raft_addr", "127.0.0.1:0",
		"--evict_after", "1ms", "--evict_interval", "1500ms"}, fastRaft...)...)
	n.waitReady()
	const id = "00000000-0000-4000-8000-00000000e001"
	if code, body := n.call("PUT", "/dss/v1/operational_intent_references/"+id, shortOIR(300*time.Millisecond)); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	sock := filepath.Join(dataDir, adminSocketName)
	if got := adminEvict(t, sock, http.MethodGet); got.OperationalIntents != 0 || !got.DryRun {
		t.Fatalf("dry run before the end: %+v", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := adminEvict(t, sock, http.MethodGet); got.OperationalIntents != 1 || got.Subscriptions != 1 || got.ImplicitSubscriptions != 1 {
		t.Fatalf("dry run after the end: %+v", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := n.call("GET", "/dss/v1/operational_intent_references/"+id, "")
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the OIR was not evicted: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, metrics := n.call("GET", "/metrics", "")
	for _, want := range []string{`dss_evicted_entities_total{kind="operational_intent"} 1`,
		`dss_evicted_entities_total{kind="subscription"} 1`, `dss_entities{kind="operational_intent"} 0`,
		"dss_eviction_last_run_timestamp_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestSQLNodeEvictsOnAdminSocket: a SQL node serves /evict and /status on
// the --admin_socket it is given, and nothing else there.
func TestSQLNodeEvictsOnAdminSocket(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	sock := filepath.Join(shortTempDir(t), "admin.sock")
	n := startNode(t, t.TempDir(), "--datastore_url", dbURL, "--migrate", "--admin_socket", sock,
		"--evict_after", "1ms", "--evict_interval", "0")
	n.waitReady()
	const id = "00000000-0000-4000-8000-00000000e002"
	if code, body := n.call("PUT", "/dss/v1/operational_intent_references/"+id, shortOIR(200*time.Millisecond)); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	time.Sleep(300 * time.Millisecond)
	if got := adminEvict(t, sock, http.MethodPost); got.OperationalIntents != 1 || got.Subscriptions != 1 || !got.Complete {
		t.Fatalf("evict now: %+v", got)
	}
	if code, _ := n.call("GET", "/dss/v1/operational_intent_references/"+id, ""); code != http.StatusNotFound {
		t.Fatalf("the OIR is still there: %d", code)
	}
	c := adminClient(sock)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://admin/members")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a SQL node's admin socket answers /members: %s", resp.Status)
	}
}
