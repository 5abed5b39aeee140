package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/auth"
)

var (
	devKeyOnce sync.Once
	devKeyDir  string
	devKey     *rsa.PrivateKey
	devKeyErr  error
)

// testKey creates one dev key per test binary (2048-bit generation is slow).
func testKey(t *testing.T) (string, *rsa.PrivateKey) {
	t.Helper()
	devKeyOnce.Do(func() {
		devKeyDir, devKeyErr = os.MkdirTemp("", "dssctl-test")
		if devKeyErr == nil {
			devKey, devKeyErr = auth.LoadOrCreateDevKey(devKeyDir)
		}
	})
	if devKeyErr != nil {
		t.Fatal(devKeyErr)
	}
	return filepath.Join(devKeyDir, auth.DevKeyFile), devKey
}

func TestMain(m *testing.M) {
	code := m.Run()
	if devKeyDir != "" {
		os.RemoveAll(devKeyDir)
	}
	// The PostgreSQL server the store-moving tests share (pgtest.Main's
	// job, done here beside the dev key clean-up).
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTokenVerifiesWithAuth(t *testing.T) {
	keyPath, key := testKey(t)
	tests := []struct {
		name   string
		args   []string
		aud    string
		scopes []string
	}{
		{"shorthands, comma-separated", []string{"--scope", "sc,cp"}, "localhost",
			[]string{auth.ScopeStrategicCoordination, auth.ScopeConstraintProcessing}},
		{"full names, space-separated, custom audience",
			[]string{"--scope", auth.ScopeConformanceMonitoringSA + " " + auth.ScopeAvailabilityArbitration, "--aud", "dss.example"},
			"dss.example", []string{auth.ScopeConformanceMonitoringSA, auth.ScopeAvailabilityArbitration}},
		{"mixed and duplicated", []string{"--scope", "CM, utm.constraint_management cmsa", "--ttl", "10m", "--iss", "me", "--kid", "k1"},
			"localhost", []string{auth.ScopeConstraintManagement, auth.ScopeConformanceMonitoringSA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"token", "--key", keyPath, "--sub", "uss1"}, tt.args...)
			code, out, errOut := runCLI(args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, errOut)
			}
			a, err := auth.New(context.Background(), auth.Config{
				PublicKeys:        []*rsa.PublicKey{&key.PublicKey},
				AcceptedAudiences: []string{tt.aud},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out))
			c, err := a.Authenticate(r)
			if err != nil {
				t.Fatalf("minted token rejected: %v", err)
			}
			if c.Subject != "uss1" || !slices.Equal(c.Scopes, tt.scopes) {
				t.Fatalf("claims = %+v", c)
			}
			if left := time.Until(c.ExpiresAt); left <= 0 || left > auth.MaxTokenLifetime {
				t.Fatalf("expires in %v", left)
			}
		})
	}
}

func TestTokenUsageErrors(t *testing.T) {
	keyPath, _ := testKey(t)
	base := []string{"token", "--key", keyPath, "--sub", "uss1", "--scope", "sc"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", append(slices.Clone(base), "--bogus"), 2, "flag provided but not defined"},
		{"missing key", []string{"token", "--sub", "u", "--scope", "sc"}, 2, "--key is required"},
		{"missing sub", []string{"token", "--key", keyPath, "--scope", "sc"}, 2, "--sub is required"},
		{"missing scope", []string{"token", "--key", keyPath, "--sub", "u"}, 2, "no scope given"},
		{"unknown shorthand", []string{"token", "--key", keyPath, "--sub", "u", "--scope", "sc strategic"}, 2, `unknown scope "strategic"`},
		{"ttl too long", append(slices.Clone(base), "--ttl", "2h"), 2, "--ttl must be"},
		{"ttl not a duration", append(slices.Clone(base), "--ttl", "soon"), 2, "invalid value"},
		{"extra argument", append(slices.Clone(base), "extra"), 2, `unexpected argument "extra"`},
		{"unreadable key", []string{"token", "--key", filepath.Join(t.TempDir(), "none.pem"), "--sub", "u", "--scope", "sc"}, 1, "reading private key"},
		{"public key as key", []string{"token", "--key", filepath.Join(filepath.Dir(keyPath), auth.DevPubKeyFile), "--sub", "u", "--scope", "sc"}, 1, "unsupported PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errOut)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.want)
			}
			if tt.code == 2 && !strings.Contains(errOut, "usage: dssctl token") {
				t.Errorf("no usage on stderr: %q", errOut)
			}
		})
	}
}

func TestDispatch(t *testing.T) {
	code, out, _ := runCLI("help")
	if code != 0 || !strings.Contains(out, "token") || !strings.Contains(out, "usage: dssctl") {
		t.Fatalf("help: exit %d, stdout %q", code, out)
	}
	code, out, _ = runCLI("help", "token")
	if code != 0 || !strings.Contains(out, "--sub") {
		t.Fatalf("help token: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := runCLI("help", "nope"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("help nope: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(); code != 2 || !strings.Contains(errOut, "usage: dssctl") {
		t.Fatalf("no args: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := runCLI("--help"); code != 0 || !strings.Contains(out, "commands:") {
		t.Fatalf("--help: exit %d, stdout %q", code, out)
	}
}

func TestParseScopes(t *testing.T) {
	got, err := parseScopes(" sc,,CP\taa  utm.custom_scope ")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{auth.ScopeStrategicCoordination, auth.ScopeConstraintProcessing,
		auth.ScopeAvailabilityArbitration, "utm.custom_scope"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"", " , ", "strategic_coordination"} {
		if _, err := parseScopes(bad); err == nil {
			t.Errorf("parseScopes(%q) succeeded", bad)
		}
	}
}
