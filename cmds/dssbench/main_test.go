package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/scd/server"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// worker, progress printer and calibration server must have stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey is generated once: RSA generation is slow on a shared machine.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// writeKey writes testKey as PEM for --token_key.
func writeKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDSS serves a fresh in-memory DSS that accepts testKey's tokens.
func startDSS(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := auth.New(ctx, auth.Config{
		PublicKeys:        []*rsa.PublicKey{&testKey().PublicKey},
		AcceptedAudiences: []string{auth.DefaultDevAudience},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h, err := server.NewHandler(server.Config{Store: memstore.New(), Authenticator: a})
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		cancel()
	})
	return srv.URL
}

// runBench runs the command and returns its exit code, the JSON records and
// stderr.
func runBench(t *testing.T, args ...string) (int, []record, string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "out.jsonl")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "--json", jsonPath), &stdout, &stderr)
	rows, err := readRecords(jsonPath)
	if err != nil && code != exitUsage {
		t.Fatalf("reading results: %v\nstderr:\n%s", err, stderr.String())
	}
	if code == exitOK && !strings.Contains(stdout.String(), "| label |") {
		t.Errorf("no markdown table on stdout:\n%s", stdout.String())
	}
	return code, rows, stderr.String()
}

// TestWorkloadsAgainstInProcessDSS runs each workload briefly at
// concurrency 2 and checks that every operation type succeeded and that
// the DSS never answered 5xx nor an unexpected 4xx.
func TestWorkloadsAgainstInProcessDSS(t *testing.T) {
	url := startDSS(t)
	key := writeKey(t)
	for _, wl := range []string{"w1", "w2", "w3"} {
		t.Run(wl, func(t *testing.T) {
			code, rows, stderr := runBench(t, "--urls", url+","+url, "--token_key", key, "--workload", wl,
				"--concurrency", "2", "--w2_concurrency", "1,2", "--duration", "1500ms", "--usses", "2",
				"--w3_seed", "20", "--w3_mix", "10,10,5,5", "--calibrate_duration", "0", "--label", "test")
			if code != exitOK {
				t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
			}
			phases := 0
			got := map[string]map[string]record{} // phase key → op → record
			for _, r := range rows {
				if r.Label != "test" {
					t.Errorf("label %q", r.Label)
				}
				k := fmt.Sprintf("%s/%s/c=%d", r.Workload, r.Role, r.Concurrency)
				switch r.Kind {
				case kindOp:
					if got[k] == nil {
						got[k] = map[string]record{}
					}
					got[k][r.Op] = r
				case kindPhase:
					phases++
					if r.C5xx != 0 || r.Errors != 0 || r.C4xx != r.C409 {
						t.Errorf("%s: 5xx %d, errors %d, non-409 4xx %d", k, r.C5xx, r.Errors, r.C4xx-r.C409)
					}
					if r.OKPerS <= 0 {
						t.Errorf("%s: no throughput", k)
					}
				}
			}
			if phases == 0 {
				t.Fatal("no phase in the output")
			}
			for k, ops := range got {
				wl := strings.SplitN(k, "/", 2)[0]
				for _, op := range expectedOps[wl] {
					r, ok := ops[op]
					if !ok || r.OK == 0 {
						t.Errorf("%s: no successful %s", k, op)
						continue
					}
					if !(r.P50ms > 0 && r.P50ms <= r.P95ms && r.P95ms <= r.P99ms && r.P99ms <= r.MaxMs) {
						t.Errorf("%s %s: percentiles out of order: %+v", k, op, r)
					}
				}
			}
			if wl == "w2" {
				var peak *record
				for i := range rows {
					if rows[i].Kind == kindW2Peak {
						peak = &rows[i]
					}
				}
				if peak == nil || peak.PeakFlights <= 0 || peak.W1AtPeak <= 0 || peak.PeakConcurrency < 1 {
					t.Errorf("w2 peak record missing or empty: %+v", peak)
				}
			}
			if !strings.Contains(stderr, "dssbench: "+wl) {
				t.Errorf("no progress line on stderr:\n%s", stderr)
			}
		})
	}
}

// TestCheckFailsOnServerErrors points the bench at a server that answers
// 500 to everything: --check must fail the run, so a smoke test using it
// can catch a broken DSS.
func TestCheckFailsOnServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Subscriptions succeed so the workload gets past its set-up.
		if strings.HasPrefix(r.URL.Path, subPath) {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, `{"error_message":"boom"}`, http.StatusInternalServerError)
	}))
	defer srv.Close()
	code, rows, stderr := runBench(t, "--urls", srv.URL, "--token_key", writeKey(t), "--workload", "w1",
		"--concurrency", "2", "--duration", "500ms", "--usses", "1", "--calibrate_duration", "0", "--check")
	if code != exitFailed {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	if !strings.Contains(stderr, "5xx") || !strings.Contains(stderr, "no successful put_accepted") {
		t.Errorf("check did not explain the failure:\n%s", stderr)
	}
	var fives uint64
	for _, r := range rows {
		if r.Kind == kindPhase {
			fives += r.C5xx
		}
	}
	if fives == 0 {
		t.Error("no 5xx counted")
	}
}

func TestCalibrationMeasuresSomething(t *testing.T) {
	r, err := calibrateFsync(t.TempDir(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.OKPerS <= 0 || r.P50ms <= 0 {
		t.Errorf("fsync calibration: %+v", r)
	}
	r, err = calibrateHTTP(context.Background(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.OKPerS <= 0 || r.P50ms <= 0 {
		t.Errorf("http calibration: %+v", r)
	}
}

func TestFlagErrors(t *testing.T) {
	key := writeKey(t)
	for _, args := range [][]string{
		{}, // no --token_key
		{"--token_key", key, "--workload", "w9"},
		{"--token_key", key, "--concurrency", "x"},
		{"--token_key", key, "--w3_mix", "1,2"},
		{"--token_key", key, "--w2_drop", "1.5"},
		{"--token_key", filepath.Join(t.TempDir(), "absent.pem")},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit code %d, want %d", args, code, exitUsage)
		}
	}
}
