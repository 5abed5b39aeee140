package conformance

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/raftdss/dss/pkg/auth"
)

// signClaims signs arbitrary claims with RS256 and the target's key.
func signClaims(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(tgt.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokens: every failure of spec §2 → 401 with an error body; a
// missing scope → 403.
func TestTokens(t *testing.T) {
	t.Parallel()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sub := "uss-tok-" + suffix()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": sub, "iss": "test-issuer", "aud": tgt.audience, "scope": sc,
			"exp": now.Add(30 * time.Minute).Unix(), "iat": now.Unix()}
	}
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }

	wrongKey, err := auth.MintToken(otherKey, auth.TokenOptions{Subject: sub, Audience: tgt.audience, Scopes: []string{sc}})
	if err != nil {
		t.Fatal(err)
	}
	hmac, err := jwt.NewWithClaims(jwt.SigningMethodHS256, good()).SignedString([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	nonePayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + sub + `","iss":"x","aud":"` + tgt.audience +
		`","scope":"` + sc + `","exp":` + strconv.FormatInt(now.Add(30*time.Minute).Unix(), 10) + `}`))

	unauthorized := []struct{ name, header string }{
		{"missing header", ""},
		{"not bearer", "Basic dXNlcjpwYXNz"},
		{"bearer without token", "Bearer "},
		{"garbage token", "Bearer not.a.jwt"},
		{"wrong signing key", "Bearer " + wrongKey},
		{"expired", "Bearer " + mint(t, auth.TokenOptions{Subject: sub, Scopes: []string{sc}, Now: now.Add(-2 * time.Hour), TTL: time.Hour})},
		{"exp more than 1h ahead", "Bearer " + mint(t, auth.TokenOptions{Subject: sub, Scopes: []string{sc}, TTL: 2 * time.Hour})},
		{"wrong audience", "Bearer " + mint(t, auth.TokenOptions{Subject: sub, Scopes: []string{sc}, Audience: "other-dss-" + suffix()})},
		{"missing audience", "Bearer " + signClaims(t, without("aud"))},
		{"missing exp", "Bearer " + signClaims(t, without("exp"))},
		{"missing sub", "Bearer " + signClaims(t, without("sub"))},
		{"empty iss", "Bearer " + signClaims(t, with("iss", ""))},
		{"nbf in the future", "Bearer " + signClaims(t, with("nbf", now.Add(10*time.Minute).Unix()))},
		{"HMAC", "Bearer " + hmac},
		{"alg none", "Bearer " + noneHeader + "." + nonePayload + "."},
	}
	p := path(availPrefix, "uss-"+suffix())
	for _, c := range unauthorized {
		t.Run(c.name, func(t *testing.T) {
			callHeader(t, http.MethodGet, p, c.header, nil).expectError(t, http.StatusUnauthorized)
		})
	}

	t.Run("control: crafted claims accepted", func(t *testing.T) {
		callHeader(t, http.MethodGet, p, "Bearer "+signClaims(t, good()), nil).expect(t, http.StatusOK)
		callHeader(t, http.MethodGet, p, "Bearer "+signClaims(t, with("aud", []string{"x", tgt.audience})), nil).expect(t, http.StatusOK)
	})
	t.Run("bearer prefix is case-insensitive", func(t *testing.T) {
		callHeader(t, http.MethodGet, p, "bearer "+mint(t, auth.TokenOptions{Subject: sub, Scopes: []string{sc}}), nil).
			expect(t, http.StatusOK)
	})
	t.Run("wrong scope", func(t *testing.T) {
		call(t, http.MethodGet, p, mint(t, auth.TokenOptions{Subject: sub, Scopes: []string{cm}}), nil).
			expectError(t, http.StatusForbidden)
		call(t, http.MethodGet, p, mint(t, auth.TokenOptions{Subject: sub}), nil).expectError(t, http.StatusForbidden)
	})
}

// TestEvaluationOrder: route (404) → auth (401/403) → body (400), spec §1.
func TestEvaluationOrder(t *testing.T) {
	t.Parallel()
	broken := rawBody(`{"extents": [`)
	id := newID()
	// No token + broken body → 401, not 400.
	call(t, http.MethodPut, path(oirPrefix, id), "", broken).expectError(t, http.StatusUnauthorized)
	call(t, http.MethodPost, oirQueryPath, "", broken).expectError(t, http.StatusUnauthorized)
	call(t, http.MethodPut, path(subPrefix, id), "", broken).expectError(t, http.StatusUnauthorized)
	// Wrong scope + broken body → 403.
	newUSS(t, "cm", cm).do(t, http.MethodPut, path(oirPrefix, id), broken).expectError(t, http.StatusForbidden)
	// Right scope + broken body → 400.
	newUSS(t, "sc", sc).do(t, http.MethodPut, path(oirPrefix, id), broken).expectError(t, http.StatusBadRequest)
	// Unknown route without a token → 404.
	r := call(t, http.MethodGet, apiPrefix+"/operation_references/"+id, "", nil)
	if r.status != http.StatusNotFound {
		t.Fatalf("unknown route without token: want 404: %s", r)
	}
}
