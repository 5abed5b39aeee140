package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/raftdss/dss/pkg/models"
)

// jwksServer serves a JWKS that tests can rotate or break.
type jwksServer struct {
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int64
	srv    *httptest.Server
}

func newJWKSServer(t *testing.T, keys map[string]*rsa.PublicKey) *jwksServer {
	s := &jwksServer{}
	s.set(t, keys)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func jwkOf(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

func (s *jwksServer) set(t *testing.T, keys map[string]*rsa.PublicKey) {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		set.Keys = append(set.Keys, jwkOf(kid, k))
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body, s.status = body, http.StatusOK
	s.mu.Unlock()
}

func (s *jwksServer) fail() {
	s.mu.Lock()
	s.body, s.status = []byte("down"), http.StatusInternalServerError
	s.mu.Unlock()
}

func jwksConfig(s *jwksServer, mutate func(*Config)) func(*Config) {
	return func(c *Config) {
		c.PublicKeys = nil
		c.JWKSEndpoint = s.srv.URL + "/.well-known/jwks.json"
		c.HTTPClient = s.srv.Client()
		if mutate != nil {
			mutate(c)
		}
	}
}

func bearer(t *testing.T, key *rsa.PrivateKey, kid string) string {
	return "Bearer " + sign(t, jwt.SigningMethodRS256, key, goodClaims(), kid)
}

func TestJWKSKidSelection(t *testing.T) {
	s := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &keyA.PublicKey, "b": &keyB.PublicKey})
	a := newTestAuth(t, jwksConfig(s, nil))
	tests := []struct {
		name   string
		header string
		ok     bool
	}{
		{"kid b signed by B", bearer(t, keyB, "b"), true},
		{"kid a signed by A", bearer(t, keyA, "a"), true},
		// The kid-matched key is the one used: no fallback to other keys.
		{"kid a signed by B", bearer(t, keyB, "a"), false},
		{"no kid tries all keys", bearer(t, keyB, ""), true},
		{"unknown kid tries all keys", bearer(t, keyA, "zzz"), true},
		{"unknown key", bearer(t, keyC, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authHeader(t, a, tt.header)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && models.CodeOf(err) != models.CodeUnauthenticated {
				t.Fatalf("code = %v", models.CodeOf(err))
			}
		})
	}
}

func TestJWKSKeyIDRestriction(t *testing.T) {
	s := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &keyA.PublicKey, "b": &keyB.PublicKey})
	a := newTestAuth(t, jwksConfig(s, func(c *Config) { c.JWKSKeyIDs = []string{"b"} }))
	if _, err := authHeader(t, a, bearer(t, keyB, "b")); err != nil {
		t.Fatalf("allowed key rejected: %v", err)
	}
	for _, h := range []string{bearer(t, keyA, "a"), bearer(t, keyA, "")} {
		if _, err := authHeader(t, a, h); err == nil {
			t.Fatal("token signed by a key outside jwks_key_ids accepted")
		}
	}

	_, err := New(context.Background(), Config{
		JWKSEndpoint: s.srv.URL, HTTPClient: s.srv.Client(), JWKSKeyIDs: []string{"c"},
		AcceptedAudiences: []string{"x"},
	})
	if err == nil || !strings.Contains(err.Error(), "no RSA signing key with an ID in [c]") {
		t.Fatalf("New with absent key ID: err = %v", err)
	}
}

func TestJWKSInitialFetchFails(t *testing.T) {
	s := newJWKSServer(t, nil)
	s.fail()
	_, err := New(context.Background(), Config{JWKSEndpoint: s.srv.URL, HTTPClient: s.srv.Client(),
		AcceptedAudiences: []string{"x"}})
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v, want an HTTP status error", err)
	}
	_, err = New(context.Background(), Config{JWKSEndpoint: "://bad", AcceptedAudiences: []string{"x"}})
	if err == nil {
		t.Fatal("New accepted a malformed JWKS URL")
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWKSRefreshPicksUpRotatedKey(t *testing.T) {
	s := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &keyA.PublicKey})
	a := newTestAuth(t, jwksConfig(s, func(c *Config) { c.JWKSRefreshInterval = 10 * time.Millisecond }))
	hA, hB := bearer(t, keyA, "a"), bearer(t, keyB, "b")
	if _, err := authHeader(t, a, hA); err != nil {
		t.Fatalf("initial key rejected: %v", err)
	}
	if _, err := authHeader(t, a, hB); err == nil {
		t.Fatal("key B accepted before rotation")
	}

	// Authenticate concurrently with the swap (checked by -race).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = authHeader(t, a, hA)
			}
		}
	})
	s.set(t, map[string]*rsa.PublicKey{"b": &keyB.PublicKey})
	waitFor(t, "rotated key B to be accepted", func() bool {
		_, err := authHeader(t, a, hB)
		return err == nil
	})
	close(stop)
	wg.Wait()
	if _, err := authHeader(t, a, hA); err == nil {
		t.Fatal("removed key A still accepted after rotation")
	}
}

func TestJWKSRefreshFailureBeyondTTL(t *testing.T) {
	s := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &keyA.PublicKey})
	var calls atomic.Int64
	expired := make(chan error, 10)
	a := newTestAuth(t, jwksConfig(s, func(c *Config) {
		c.Now = nil // real clock: the TTL is measured with Config.Now
		c.JWKSRefreshInterval = 10 * time.Millisecond
		c.JWKSKeyTTL = 50 * time.Millisecond
		c.OnKeysExpired = func(err error) {
			calls.Add(1)
			expired <- err
		}
	}))
	s.fail()
	select {
	case err := <-expired:
		if !strings.Contains(err.Error(), "expired") {
			t.Errorf("OnKeysExpired error = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnKeysExpired was not called")
	}
	// Let several more refreshes fail; the callback must not fire again.
	before := s.hits.Load()
	waitFor(t, "more refresh attempts", func() bool { return s.hits.Load() >= before+5 })
	if n := calls.Load(); n != 1 {
		t.Fatalf("OnKeysExpired called %d times, want 1", n)
	}
	_, err := authHeader(t, a, bearer(t, keyA, "a"))
	if err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("expired JWKS key still used: err = %v", err)
	}
}

// countingTransport counts the requests a client starts. RoundTrip runs on
// the caller's goroutine, so once Close has returned no new one can begin
// (unlike server-side hits, where a request cancelled in flight may still be
// handled after Close).
type countingTransport struct {
	next    http.RoundTripper
	started atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.started.Add(1)
	return c.next.RoundTrip(r)
}

func TestCloseStopsRefresher(t *testing.T) {
	s := newJWKSServer(t, map[string]*rsa.PublicKey{"a": &keyA.PublicKey})
	ct := &countingTransport{next: s.srv.Client().Transport}
	a, err := New(context.Background(), Config{JWKSEndpoint: s.srv.URL, HTTPClient: &http.Client{Transport: ct},
		AcceptedAudiences: []string{"x"}, JWKSRefreshInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a refresh", func() bool { return ct.started.Load() >= 3 })
	a.Close()
	a.Close() // idempotent
	after := ct.started.Load()
	time.Sleep(30 * time.Millisecond)
	if got := ct.started.Load(); got != after {
		t.Fatalf("%d fetches started after Close", got-after)
	}
}

func TestParseJWKS(t *testing.T) {
	good := jwkOf("a", &keyA.PublicKey)
	manyKeys := func(n int) []map[string]string {
		var out []map[string]string
		for i := range n {
			out = append(out, jwkOf(fmt.Sprint("k", i), &keyA.PublicKey))
		}
		return out
	}
	enc := func(keys ...map[string]string) []byte {
		b, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		data    []byte
		allowed []string
		kids    []string
		wantErr string
	}{
		{"one key", enc(good), nil, []string{"a"}, ""},
		{"padded base64", enc(with("n", good["n"]+"==")), nil, []string{"a"}, ""},
		{"EC key skipped", enc(map[string]string{"kty": "EC", "kid": "e"}, good), nil, []string{"a"}, ""},
		{"enc key skipped", enc(with("use", "enc"), with("kid", "s")), nil, []string{"s"}, ""},
		{"bad key skipped", enc(with("e", "!!"), with("kid", "s")), nil, []string{"s"}, ""},
		{"restricted", enc(good, with("kid", "b")), []string{"b"}, []string{"b"}, ""},
		{"not json", []byte("<html>"), nil, nil, "malformed JWKS"},
		{"no keys", []byte(`{"keys":[]}`), nil, nil, "no RSA signing key"},
		{"only bad keys", enc(with("n", ""), with("e", "AAAAAAE")), nil, nil, "bad modulus"},
		{"even exponent", enc(with("e", "Ag")), nil, nil, "bad exponent"},
		{"small modulus", enc(with("n", "AQAB")), nil, nil, "too small"},
		{"huge modulus", enc(with("n", base64.RawURLEncoding.EncodeToString(
			append([]byte{1}, make([]byte, maxRSAModulusBits/8)...)))), nil, nil, "larger than the 8192"},
		{"too many keys", enc(manyKeys(maxJWKSKeys + 1)...), nil, nil, "33 usable RSA signing keys"},
		{"too many keys, restricted", enc(manyKeys(maxJWKSKeys + 1)...), []string{"k7"}, []string{"k7"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS(tt.data, tt.allowed)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.kid)
				if k.key.N.Cmp(keyA.N) != 0 || k.key.E != keyA.E {
					t.Errorf("key %s decoded wrongly", k.kid)
				}
			}
			if !slices.Equal(kids, tt.kids) {
				t.Fatalf("kids = %v, want %v", kids, tt.kids)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.JWKSRefreshInterval != time.Minute || c.JWKSKeyTTL != time.Hour {
		t.Fatalf("defaults = %v, %v", c.JWKSRefreshInterval, c.JWKSKeyTTL)
	}
	err := fs.Parse([]string{
		"--public_key_files=/a.pem, /b.pem", "--jwks_endpoint=https://issuer/jwks",
		"--jwks_key_ids=k1,,k2", "--jwks_refresh_interval=30s", "--jwks_key_ttl=2h",
		"--accepted_jwt_audiences=dss.example,localhost",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.PublicKeyFiles, []string{"/a.pem", "/b.pem"}) ||
		c.JWKSEndpoint != "https://issuer/jwks" ||
		!slices.Equal(c.JWKSKeyIDs, []string{"k1", "k2"}) ||
		c.JWKSRefreshInterval != 30*time.Second || c.JWKSKeyTTL != 2*time.Hour ||
		!slices.Equal(c.AcceptedAudiences, []string{"dss.example", "localhost"}) {
		t.Fatalf("config after flags = %+v", c)
	}
	if got := fs.Lookup("accepted_jwt_audiences").Value.String(); got != "dss.example,localhost" {
		t.Errorf("String() = %q", got)
	}
}
