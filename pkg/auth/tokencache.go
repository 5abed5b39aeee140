package auth

import (
	"slices"
	"sync"
	"time"
)

// DefaultTokenCacheSize bounds the number of entries of the verified-token
// cache. A DSS serves a few dozen USSs, each holding a handful of live tokens
// at a time, so this is far above the working set.
const DefaultTokenCacheSize = 4096

// DefaultTokenCacheBytes bounds the memory of the verified-token cache: the
// token strings plus the claims kept per entry plus a fixed per-entry
// overhead (entrySize). 32 MiB holds the full DefaultTokenCacheSize entries
// at ~8 KiB each, twice a large real token, while a cache filled by one
// holder of signing credentials minting tokens of MaxTokenBytes stays at
// 32 MiB instead of the ~64 MiB the entry count alone would allow (and the
// ~4 GiB it allowed before tokens were bounded).
const DefaultTokenCacheBytes = 32 << 20

// entryOverhead estimates what an entry costs besides its strings: the map
// slot and key header, the cachedToken struct with its three times and two
// time pointers, and the Claims headers. It is an estimate on the high side,
// so the byte bound holds.
const entryOverhead = 320

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
//
// The cache is bounded twice: by entry count and by bytes (entrySize); when a
// put would pass either bound, entries are dropped first.
type tokenCache struct {
	max      int
	maxBytes int64
	mu       sync.RWMutex
	entries  map[string]*cachedToken
	bytes    int64 // sum of the entries' size
}

type cachedToken struct {
	keys *keySet // the key set that was current when the token was verified
	// The claims the time rules read.
	expiresAt time.Time
	notBefore *time.Time
	issuedAt  *time.Time
	// claims is handed out as a deep copy on each hit.
	claims Claims
	// size is what the entry counts against the byte bound (set by put).
	size int64
}

func newTokenCache(max int, maxBytes int64) *tokenCache {
	return &tokenCache{max: max, maxBytes: maxBytes, entries: make(map[string]*cachedToken)}
}

// entrySize is the memory an entry for token raw holding e keeps alive: the
// key, the claim strings (the scopes are substrings of one decoded string, a
// header each) and entryOverhead.
func entrySize(raw string, e *cachedToken) int64 {
	n := int64(len(raw)) + int64(len(e.claims.Subject)) + int64(len(e.claims.Issuer)) + entryOverhead
	for _, s := range e.claims.Scopes {
		n += int64(len(s)) + 16
	}
	return n
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

// put records a verified token. When the cache would pass its entry or byte
// bound it first drops entries that can never hit again (expired, or
// verified under a replaced key set); if that is not enough it drops
// arbitrary entries (Go's map order is randomised, so this is random
// eviction) down to 7/8 of both bounds, so the O(n) sweep runs at most once
// per max/8 insertions or maxBytes/8 bytes. An entry larger than the whole
// byte bound is not cached.
func (c *tokenCache) put(raw string, e *cachedToken, now time.Time) {
	e.size = entrySize(raw, e)
	if e.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[raw]; ok {
		c.bytes -= old.size
		delete(c.entries, raw)
	}
	if len(c.entries) >= c.max || c.bytes+e.size > c.maxBytes {
		for k, old := range c.entries {
			if old.keys != e.keys || !now.Before(old.expiresAt) {
				c.drop(k, old)
			}
		}
		for k, old := range c.entries {
			if len(c.entries) < c.max-c.max/8 && c.bytes+e.size <= c.maxBytes-c.maxBytes/8 {
				break
			}
			c.drop(k, old)
		}
	}
	c.entries[raw] = e
	c.bytes += e.size
}

// drop removes entry k (its value e); c.mu is held.
func (c *tokenCache) drop(k string, e *cachedToken) {
	delete(c.entries, k)
	c.bytes -= e.size
}

// len is the number of entries (tests).
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// usedBytes is the sum of the entries' sizes (tests).
func (c *tokenCache) usedBytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
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
