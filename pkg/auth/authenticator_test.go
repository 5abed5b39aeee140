package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/raftdss/dss/pkg/models"
)

// testNow is whole seconds: JWT times are whole seconds.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func newTestAuth(t testing.TB, mutate func(*Config)) *Authenticator {
	t.Helper()
	cfg := Config{
		PublicKeys:        []*rsa.PublicKey{&keyA.PublicKey},
		AcceptedAudiences: []string{"dss.example", "localhost"},
		Now:               fixedNow,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":   "uss1",
		"iss":   "issuer.example",
		"aud":   "dss.example",
		"exp":   testNow.Add(30 * time.Minute).Unix(),
		"iat":   testNow.Add(-time.Minute).Unix(),
		"nbf":   testNow.Add(-time.Minute).Unix(),
		"scope": sc + " " + cp,
	}
}

func edit(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func authHeader(t testing.TB, a *Authenticator, header string) (*Claims, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/dss/v1/operational_intent_references/x", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return a.Authenticate(r)
}

func TestAuthenticateSuccess(t *testing.T) {
	a := newTestAuth(t, nil)
	tests := []struct {
		name   string
		header string
	}{
		{"RS256", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")},
		{"RS384", "Bearer " + sign(t, jwt.SigningMethodRS384, keyA, goodClaims(), "")},
		{"RS512", "Bearer " + sign(t, jwt.SigningMethodRS512, keyA, goodClaims(), "")},
		{"PS256", "Bearer " + sign(t, jwt.SigningMethodPS256, keyA, goodClaims(), "")},
		{"PS512", "Bearer " + sign(t, jwt.SigningMethodPS512, keyA, goodClaims(), "")},
		{"lowercase prefix", "bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")},
		{"uppercase prefix", "BEARER " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")},
		{"aud array with one accepted", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA,
			edit(goodClaims(), "aud", []string{"other", "localhost"}), "")},
		{"exp exactly 1h ahead", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA,
			edit(goodClaims(), "exp", testNow.Add(time.Hour).Unix()), "")},
		{"no nbf, no iat", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA,
			edit(goodClaims(), "nbf", nil, "iat", nil), "")},
		{"iat and nbf exactly now", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA,
			edit(goodClaims(), "nbf", testNow.Unix(), "iat", testNow.Unix()), "")},
		{"unknown kid falls back to all keys", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "nope")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := authHeader(t, a, tt.header)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if c.Subject != "uss1" || c.Issuer != "issuer.example" {
				t.Errorf("claims = %+v", c)
			}
			if !slices.Equal(c.Scopes, []string{sc, cp}) {
				t.Errorf("scopes = %q", c.Scopes)
			}
			if !c.ExpiresAt.After(testNow) {
				t.Errorf("ExpiresAt = %v", c.ExpiresAt)
			}
		})
	}
}

func TestAuthenticateFailures(t *testing.T) {
	a := newTestAuth(t, nil)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&keyA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rs := func(c jwt.MapClaims) string { return "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, c, "") }
	good := sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	parts := strings.Split(good, ".")

	tests := []struct {
		name, header, want string
	}{
		{"missing header", "", "missing Authorization"},
		{"basic scheme", "Basic dXNzMTpwYXNz", "Bearer <token>"},
		{"prefix without space", "Bearer" + good, "Bearer <token>"},
		{"bearer only", "Bearer", "Bearer <token>"},
		{"bearer and space", "Bearer ", "missing access token"},
		{"bearer and blanks", "Bearer    ", "missing access token"},
		{"not a jwt", "Bearer abc", "malformed"},
		{"bad base64", "Bearer !!.??.**", "malformed"},
		{"payload not json", "Bearer " + parts[0] + ".bm90IGpzb24." + parts[2], "malformed"},
		{"tampered payload", "Bearer " + parts[0] + "." + strings.Split(sign(t, jwt.SigningMethodRS256, keyB,
			edit(goodClaims(), "sub", "admin"), ""), ".")[1] + "." + parts[2], "signature"},
		{"signed by unknown key", "Bearer " + sign(t, jwt.SigningMethodRS256, keyB, goodClaims(), ""), "signature"},
		{"alg none", "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims(), ""), "not accepted"},
		{"HS256 keyed with the public key", "Bearer " + sign(t, jwt.SigningMethodHS256, pubPEM, goodClaims(), ""), "not accepted"},
		{"ES256", "Bearer " + sign(t, jwt.SigningMethodES256, ecKey, goodClaims(), ""), "not accepted"},
		{"expired", rs(edit(goodClaims(), "exp", testNow.Add(-time.Second).Unix())), "expired"},
		{"expires now", rs(edit(goodClaims(), "exp", testNow.Unix())), "expired"},
		{"exp missing", rs(edit(goodClaims(), "exp", nil)), "no expiration"},
		{"exp more than 1h ahead", rs(edit(goodClaims(), "exp", testNow.Add(time.Hour+time.Second).Unix())), "more than"},
		{"exp not a number", rs(edit(goodClaims(), "exp", "tomorrow")), "malformed"},
		{"nbf in the future", rs(edit(goodClaims(), "nbf", testNow.Add(time.Second).Unix())), "not valid yet"},
		{"iat in the future", rs(edit(goodClaims(), "iat", testNow.Add(time.Second).Unix())), "issued in the future"},
		{"sub missing", rs(edit(goodClaims(), "sub", nil)), "no subject"},
		{"sub empty", rs(edit(goodClaims(), "sub", "")), "no subject"},
		{"iss missing", rs(edit(goodClaims(), "iss", nil)), "no issuer"},
		{"aud missing", rs(edit(goodClaims(), "aud", nil)), "no audience"},
		{"aud empty array", rs(edit(goodClaims(), "aud", []string{})), "no audience"},
		{"aud not accepted", rs(edit(goodClaims(), "aud", "evil.example")), "audience is not accepted"},
		{"aud array none accepted", rs(edit(goodClaims(), "aud", []string{"a", "b"})), "audience is not accepted"},
		{"aud case differs", rs(edit(goodClaims(), "aud", "DSS.EXAMPLE")), "audience is not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := authHeader(t, a, tt.header)
			if err == nil {
				t.Fatalf("Authenticate accepted the token: %+v", c)
			}
			var me *models.Error
			if !errors.As(err, &me) || me.Code != models.CodeUnauthenticated {
				t.Fatalf("err = %v, want a models.Error with CodeUnauthenticated", err)
			}
			if !strings.Contains(me.Message, tt.want) {
				t.Errorf("message %q does not contain %q", me.Message, tt.want)
			}
		})
	}
}

// TestAuthenticateThenAuthorize checks the 401-versus-403 split of spec §2:
// a valid token without the scopes is PermissionDenied, a bad one is
// Unauthenticated.
func TestAuthenticateThenAuthorize(t *testing.T) {
	a := newTestAuth(t, nil)
	oirPut := Requirement{{sc}, {sc, cp}, {cmsa}}
	tests := []struct {
		name   string
		header string
		want   models.Code
		ok     bool
	}{
		{"SC token", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "scope", sc), ""), 0, true},
		{"CMSA token", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "scope", cmsa), ""), 0, true},
		{"CP-only token", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "scope", cp), ""), models.CodePermissionDenied, false},
		{"no scope claim", "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "scope", nil), ""), models.CodePermissionDenied, false},
		{"bad token", "Bearer " + sign(t, jwt.SigningMethodRS256, keyB, goodClaims(), ""), models.CodeUnauthenticated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := authHeader(t, a, tt.header)
			if err == nil {
				err = Authorize(c, oirPut)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if got := models.CodeOf(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

func TestAuthenticateNilRequest(t *testing.T) {
	a := newTestAuth(t, nil)
	if _, err := a.Authenticate(nil); models.CodeOf(err) != models.CodeUnauthenticated {
		t.Fatalf("err = %v", err)
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key source", Config{AcceptedAudiences: []string{"x"}}, "no token verification key"},
		{"no audience", Config{PublicKeys: []*rsa.PublicKey{&keyA.PublicKey}}, "audience"},
		{"empty audience", Config{PublicKeys: []*rsa.PublicKey{&keyA.PublicKey}, AcceptedAudiences: []string{""}}, "empty accepted"},
		{"nil key", Config{PublicKeys: []*rsa.PublicKey{nil}, AcceptedAudiences: []string{"x"}}, "nil"},
		{"key ids without endpoint", Config{PublicKeys: []*rsa.PublicKey{&keyA.PublicKey}, AcceptedAudiences: []string{"x"},
			JWKSKeyIDs: []string{"a"}}, "without jwks_endpoint"},
		{"negative interval", Config{JWKSEndpoint: "http://127.0.0.1:1/", AcceptedAudiences: []string{"x"},
			JWKSRefreshInterval: -time.Second}, "negative"},
		{"missing file", Config{PublicKeyFiles: []string{"/nonexistent/key.pem"}, AcceptedAudiences: []string{"x"}}, "reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(context.Background(), tt.cfg)
			if err == nil {
				a.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestConcurrentAuthenticate exercises the shared parser and key set from
// many goroutines (meaningful under -race).
func TestConcurrentAuthenticate(t *testing.T) {
	a := newTestAuth(t, nil)
	h := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := authHeader(t, a, h); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	a := newTestAuth(b, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+sign(b, jwt.SigningMethodRS256, keyA, goodClaims(), ""))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
