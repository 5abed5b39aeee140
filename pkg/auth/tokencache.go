package auth

import (
	"slices"
	"sync"
	"time"
)

// DefaultTokenCacheSize bounds the verified-token cache. A DSS serves a few
// dozen USSs, each holding a handful of live tokens at a time, so this is far
// above the working set; at most it holds a few MiB of token strings.
const DefaultTokenCacheSize = 4096

// tokenCache remembers access tokens whose signature and claims verified,
// keyed by the exact token string. A real DSS sees the same token on
// thousands of requests, and each RS256 verification (with the JSON decode of
// header and payload) costs ~45 µs, a third of a PUT's CPU; a hit costs a map
// lookup under a read lock.
//
// A hit is never more permissive than a fresh verification would be:
//   - Only successes are cached, and only with the claims that passed.
//   - Every time-dependent rule (exp, the lifetime cap, nbf, iat) is rechecked
//     against Config.Now on every hit, so an entry stops working the moment
//     its token expires, and a clock moved backwards is honoured too.
//   - An entry is tied to the key set that verified it: once the key set is
//     replaced (JWKS refresh or rotation, JWKS keys dropped past their TTL)
//     the entry no longer matches and the token is verified afresh.
//
// Rules that do not depend on time (sub, iss, aud, presence of exp) were
// checked at insertion and cannot change for the same token string.
type tokenCache struct {
	max     int
	mu      sync.RWMutex
	entries map[string]*cachedToken
}

type cachedToken struct {
	keys *keySet // the key set that was current when the token was verified
	// The claims the time rules read.
	expiresAt time.Time
	notBefore *time.Time
	issuedAt  *time.Time
	// claims is handed out as a deep copy on each hit.
	claims Claims
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]*cachedToken)}
}

// get returns the cached entry for raw if it was verified under keys.
func (c *tokenCache) get(raw string, keys *keySet) *cachedToken {
	c.mu.RLock()
	e := c.entries[raw]
	c.mu.RUnlock()
	if e == nil || e.keys != keys {
		return nil
	}
	return e
}

// put records a verified token. When the cache is full it first drops entries
// that can never hit again (expired, or verified under a replaced key set);
// if that is not enough it drops arbitrary entries (Go's map order is
// randomised, so this is random eviction) down to 7/8 of the bound, so the
// O(n) sweep runs at most once per max/8 insertions.
func (c *tokenCache) put(raw string, e *cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[raw]; !ok && len(c.entries) >= c.max {
		for k, old := range c.entries {
			if old.keys != e.keys || !now.Before(old.expiresAt) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max-c.max/8 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[raw] = e
}

// len is the number of entries (tests).
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// newCachedToken builds the entry for verified claims tc that produced out.
func newCachedToken(keys *keySet, tc *tokenClaims, out *Claims) *cachedToken {
	e := &cachedToken{keys: keys, expiresAt: out.ExpiresAt, claims: *out}
	e.claims.Scopes = slices.Clone(out.Scopes)
	if tc.NotBefore != nil {
		t := tc.NotBefore.Time
		e.notBefore = &t
	}
	if tc.IssuedAt != nil {
		t := tc.IssuedAt.Time
		e.issuedAt = &t
	}
	return e
}

// hit rechecks the time rules for a cached token and returns a copy of its
// claims, or the error checkClaims would return now.
func (e *cachedToken) hit(now time.Time) (*Claims, error) {
	if err := checkTimes(now, e.expiresAt, e.notBefore, e.issuedAt); err != nil {
		return nil, err
	}
	// A deep copy (two small allocations), so a caller that modifies its
	// Claims cannot affect other requests.
	c := e.claims
	c.Scopes = slices.Clone(c.Scopes)
	return &c, nil
}
