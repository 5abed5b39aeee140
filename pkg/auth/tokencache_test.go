package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// movableClock is a Config.Now that tests can move.
type movableClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *movableClock {
	c := &movableClock{}
	c.set(t)
	return c
}
func (c *movableClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *movableClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

func TestTokenCacheHitReturnsTheSameClaims(t *testing.T) {
	a := newTestAuth(t, nil)
	h := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	first, err := authHeader(t, a, h)
	if err != nil {
		t.Fatal(err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d entries after one success, want 1", a.cache.len())
	}
	// A caller modifying its claims must not affect later requests.
	first.Subject = "mallory"
	first.Scopes[0] = "everything"
	second, err := authHeader(t, a, h)
	if err != nil {
		t.Fatal(err)
	}
	if second.Subject != "uss1" || second.Issuer != "issuer.example" || second.Scopes[0] != sc ||
		len(second.Scopes) != 2 || !second.ExpiresAt.Equal(testNow.Add(30*time.Minute)) {
		t.Fatalf("cached claims = %+v", second)
	}
	if second == first {
		t.Fatal("a hit returned the same *Claims as an earlier call")
	}
}

func TestTokenCacheRechecksTimeOnEveryHit(t *testing.T) {
	clock := newClock(testNow)
	a := newTestAuth(t, func(c *Config) { c.Now = clock.now })
	h := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	if _, err := authHeader(t, a, h); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at   time.Time
		want string // "" = success
	}{
		{testNow.Add(29 * time.Minute), ""},
		{testNow.Add(30 * time.Minute), "access token expired"},
		{testNow.Add(2 * time.Hour), "access token expired"},
		// A clock moved backwards: before nbf/iat, then too far from exp.
		{testNow.Add(-90 * time.Second), "not valid yet (nbf)"},
		{testNow.Add(-31 * time.Minute), "expires more than"},
		{testNow, ""},
	}
	for _, s := range steps {
		clock.set(s.at)
		_, err := authHeader(t, a, h)
		switch {
		case s.want == "" && err != nil:
			t.Errorf("at %v: %v", s.at, err)
		case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
			t.Errorf("at %v: err %v, want %q", s.at, err, s.want)
		}
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", a.cache.len())
	}
}

func TestTokenCacheIsDroppedWithItsKeySet(t *testing.T) {
	a := newTestAuth(t, nil)
	h := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	if _, err := authHeader(t, a, h); err != nil {
		t.Fatal(err)
	}
	// Rotate to a set without keyA (as a JWKS refresh would): the cached
	// token must be verified again, and fail.
	a.keys.Store(newKeySet([]kidKey{{kid: "b", key: &keyB.PublicKey}}))
	if _, err := authHeader(t, a, h); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("after rotation: err %v, want a signature failure", err)
	}
	// Back to keyA in a new set: verified afresh and cached again.
	a.keys.Store(newKeySet([]kidKey{{key: &keyA.PublicKey}}))
	if _, err := authHeader(t, a, h); err != nil {
		t.Fatal(err)
	}
}

func TestTokenCacheFailuresAreNotCached(t *testing.T) {
	a := newTestAuth(t, nil)
	for _, h := range []string{
		"Bearer " + sign(t, jwt.SigningMethodRS256, keyB, goodClaims(), ""),
		"Bearer " + sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "aud", "elsewhere"), ""),
		"Bearer " + sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "exp", testNow.Unix()), ""),
	} {
		if _, err := authHeader(t, a, h); err == nil {
			t.Fatalf("%s: accepted", h)
		}
	}
	if n := a.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries after failures only", n)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	const max = 16
	a := newTestAuth(t, func(c *Config) { c.TokenCacheSize = max })
	var headers []string
	for i := range 3 * max {
		headers = append(headers, "Bearer "+sign(t, jwt.SigningMethodRS256, keyA,
			edit(goodClaims(), "sub", fmt.Sprintf("uss%d", i)), ""))
	}
	for i, h := range headers {
		c, err := authHeader(t, a, h)
		if err != nil || c.Subject != fmt.Sprintf("uss%d", i) {
			t.Fatalf("token %d: %+v %v", i, c, err)
		}
		if n := a.cache.len(); n > max {
			t.Fatalf("cache holds %d entries, bound %d", n, max)
		}
	}
	// Every token still authenticates, cached or not.
	for i, h := range headers {
		if c, err := authHeader(t, a, h); err != nil || c.Subject != fmt.Sprintf("uss%d", i) {
			t.Fatalf("token %d again: %+v %v", i, c, err)
		}
	}
}

func TestTokenCacheEvictsExpiredFirst(t *testing.T) {
	ks := newKeySet([]kidKey{{key: &keyA.PublicKey}})
	c := newTokenCache(4, 1<<20)
	for i := range 4 {
		c.put(fmt.Sprint("old", i), &cachedToken{keys: ks, expiresAt: testNow.Add(time.Minute)}, testNow)
	}
	c.put("live", &cachedToken{keys: ks, expiresAt: testNow.Add(time.Hour)}, testNow)
	if n := c.len(); n != 4 {
		t.Fatalf("full cache without expired entries holds %d after a put, want 4 (random eviction to 7/8)", n)
	}
	later := testNow.Add(2 * time.Minute)
	c.put("new", &cachedToken{keys: ks, expiresAt: later.Add(time.Hour)}, later)
	if c.get("live", ks) == nil || c.get("new", ks) == nil || c.len() != 2 {
		t.Fatalf("after the expiry sweep: %d entries, live %v, new %v", c.len(), c.get("live", ks) != nil, c.get("new", ks) != nil)
	}
}

func TestTokenCacheDisabled(t *testing.T) {
	a := newTestAuth(t, func(c *Config) { c.TokenCacheSize = -1 })
	if a.cache != nil {
		t.Fatal("cache present with TokenCacheSize < 0")
	}
	h := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	for range 2 {
		if _, err := authHeader(t, a, h); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTokenCacheConcurrentRotation races hits, misses and key-set swaps
// (meaningful under -race); once the swaps stop, a token whose key is gone
// must fail.
func TestTokenCacheConcurrentRotation(t *testing.T) {
	a := newTestAuth(t, nil)
	hA := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = authHeader(t, a, hA)
			}
		})
	}
	for i := range 50 {
		k := keyA
		if i%2 == 1 {
			k = keyB
		}
		a.keys.Store(newKeySet([]kidKey{{key: &k.PublicKey}}))
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// The last set holds keyB only: the keyA token must now fail.
	a.keys.Store(newKeySet([]kidKey{{key: &keyB.PublicKey}}))
	if _, err := authHeader(t, a, hA); err == nil {
		t.Fatal("token accepted after its key was removed")
	}
}

func BenchmarkAuthenticateUncached(b *testing.B) {
	a := newTestAuth(b, func(c *Config) { c.TokenCacheSize = -1 })
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+sign(b, jwt.SigningMethodRS256, keyA, goodClaims(), ""))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
