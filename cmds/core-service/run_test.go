package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftdss/dss/internal/pgtest"
)

// TestMain stops the shared PostgreSQL of the SQL tests (if one was
// started) before looking for leaked goroutines: its reaper goroutine lives
// as long as the server.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		code = max(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// syncBuffer is an io.Writer the node writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	listeningRE = regexp.MustCompile(`listening on (https?://\S+)`)
	tokenRE     = regexp.MustCompile(`export DSS_TOKEN=(\S+)`)
)

// waitFor polls out until re matches, for at most 20 s.
func waitFor(t testing.TB, out *syncBuffer, re *regexp.Regexp, exited <-chan int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-exited:
			t.Fatalf("core-service exited with %d before printing %s; output:\n%s", code, re, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no %s in output:\n%s", re, out.String())
	return ""
}

func TestDevModeServesTheAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--dev", "--dev_dir", t.TempDir(), "--addr", "127.0.0.1:0", "--log_level", "warn",
			"--raft_data_dir", t.TempDir(), "--raft_addr", "127.0.0.1:0"},
			&stdout, &stderr)
	}()
	base := waitFor(t, &stdout, listeningRE, exited)
	tok := waitFor(t, &stdout, tokenRE, exited)
	if !strings.Contains(stdout.String(), "curl ") {
		t.Errorf("no curl example in:\n%s", stdout.String())
	}

	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	call := func(method, path, tok, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := call("GET", "/healthy", "", ""); code != 200 || body != "ok" {
		t.Fatalf("/healthy: %d %q", code, body)
	}
	query := `{"area_of_interest": {"volume": {"outline_circle": {"center": {"lat": 46.97, "lng": 7.47},
		"radius": {"value": 300, "units": "M"}}}}}`
	if code, body := call("POST", "/dss/v1/operational_intent_references/query", tok, query); code != 200 ||
		!strings.Contains(body, `"operational_intent_references"`) {
		t.Fatalf("query with the printed token: %d %s", code, body)
	}
	if code, _ := call("POST", "/dss/v1/operational_intent_references/query", "", query); code != 401 {
		t.Fatalf("query without a token: %d, want 401", code)
	}
	// The printed token is for USS "uss1" and carries every scope.
	if code, body := call("PUT", "/dss/v1/uss_availability/uss1", tok, `{"availability": "Normal"}`); code != 200 {
		t.Fatalf("availability with the printed token: %d %s", code, body)
	}

	client.CloseIdleConnections()
	cancel()
	select {
	case code := <-exited:
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("core-service did not shut down")
	}
}

func TestRefusesToStartWithoutKeys(t *testing.T) {
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"--addr", "127.0.0.1:0"}, &stdout, &stderr)
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"--public_key_files", "--jwks_endpoint", "--accepted_jwt_audiences", "--dev"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("message %q does not mention %s", stderr.String(), want)
		}
	}
}

func TestRefusesBadConfiguration(t *testing.T) {
	for _, args := range [][]string{
		{"--public_key_files", "key.pem"}, // no audience
		{"--no_such_flag"},
		{"--server_timeout", "0s", "--dev"},
		{"--log_level", "loud"},
		{"stray-argument"},
		{"--dev", "--raftstore", "--datastore_url", "postgres://localhost/scd"},
		{"--dev", "--memstore", "--raftstore"},
		{"--dev", "--memstore", "--datastore_url", "postgres://localhost/scd"},
		{"--dev", "--migrate"}, // SQL flags without the SQL store
		{"--dev", "--datastore_max_conns", "4"},
		{"--dev", "--datastore_url", "postgres://localhost/scd", "--datastore_max_conns", "0"},
		{"--dev", "--datastore_url", "postgres://localhost/scd", "--datastore_max_retries", "0"},
		{"--dev", "--datastore_url", "postgres://localhost/scd", "--datastore_lock_timeout", "0s"},
		{"--dev", "--datastore_url", "postgres://localhost/scd", "--datastore_retry_budget", "0s"},
		{"--dev", "--datastore_url", "postgres://localhost/scd", "--datastore_retry_budget", "10s"}, // = --server_timeout
		{"--dev", "--datastore_url", "postgres://localhost/scd", "--server_timeout", "3s", "--datastore_retry_budget", "3s"},
		{"--dev", "--datastore_lock_timeout", "20ms"},
		{"--dev", "--raft_peers", "1=127.0.0.1:1,2=127.0.0.1:2", "--raft_node_id", "3"},
		{"--dev", "--raft_peers", "1=127.0.0.1:1,1=127.0.0.1:2"},
		{"--dev", "--raft_peers", "1=127.0.0.1:1,2=127.0.0.1:1"},
		{"--dev", "--raft_peers", "0=127.0.0.1:1"},
		{"--dev", "--raft_peers", "1=nohostport"},
		{"--dev", "--raft_node_id", "0"},
		{"--dev", "--raft_election_ticks", "2", "--raft_heartbeat_ticks", "2"},
		{"--dev", "--raft_tls_cert", "c.pem"},
		{"--dev", "--raft_snapshot_entries", "0"},
	} {
		var stdout, stderr syncBuffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit code %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	for _, flag := range []string{"-addr", "-allow_http_base_urls", "-server_timeout", "-dev_dir", "-log_level", "-jwks_endpoint",
		"-raftstore", "-memstore", "-datastore_url", "-migrate", "-datastore_max_conns", "-datastore_max_retries", "-raft_node_id", "-raft_peers", "-raft_addr", "-raft_data_dir",
		"-raft_tick_interval", "-raft_election_ticks", "-raft_heartbeat_ticks", "-raft_snapshot_entries",
		"-raft_catchup_entries", "-raft_tls_cert", "-raft_tls_key", "-raft_tls_ca", "-raft_join", "-admin_socket"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("usage lacks %s", flag)
		}
	}
}

// TestStatusShape: Raft fields appear, zeros included, only on the Raft
// store; other stores report just their kind.
func TestStatusShape(t *testing.T) {
	b, err := json.Marshal(nodeStatus(&backend{}, storeSQL))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"store":"sql"}` {
		t.Errorf("/status of the SQL store = %s", b)
	}
	b, err = json.Marshal(statusJSON{Store: "raft", raftStatusJSON: &raftStatusJSON{NodeID: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"node_id":2`, `"leader_id":0`, `"is_leader":false`, `"applied_index":0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/status %s lacks %s", b, want)
		}
	}
}
