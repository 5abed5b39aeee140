package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/raftdss/dss/pkg/models"
)

// paddedToken signs goodClaims plus a "pad" claim sized so the token is
// between want-3 and want bytes long.
func paddedToken(t testing.TB, want int) string {
	t.Helper()
	return paddedTokenFor(t, want, goodClaims())
}

// paddedTokenFor is paddedToken for claims c.
func paddedTokenFor(t testing.TB, want int, c jwt.MapClaims) string {
	t.Helper()
	pad := want * 3 / 4
	for range 20 {
		tok := sign(t, jwt.SigningMethodRS256, keyA, edit(c, "pad", strings.Repeat("p", max(pad, 0))), "")
		d := want - len(tok)
		if d >= 0 && d < 4 {
			return tok
		}
		pad += d * 3 / 4
		if d < 0 {
			pad--
		}
	}
	t.Fatalf("could not size a token to %d bytes", want)
	return ""
}

func wantUnauthenticated(t *testing.T, err error, want string) {
	t.Helper()
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.CodeUnauthenticated {
		t.Fatalf("err = %v, want CodeUnauthenticated", err)
	}
	if !strings.Contains(me.Message, want) {
		t.Fatalf("message %q does not contain %q", me.Message, want)
	}
}

// countKeyLookups makes a count the calls of its key function: a lookup
// happens after the header and claims are decoded and before the signature
// is checked, so zero lookups means the token was refused before any of it.
func countKeyLookups(a *Authenticator) *int {
	n := new(int)
	inner := a.keyfunc
	a.keyfunc = func(t *jwt.Token) (any, error) { *n++; return inner(t) }
	return n
}

func TestOversizedTokensAreRefusedBeforeVerification(t *testing.T) {
	atLimit := paddedToken(t, MaxTokenBytes)
	tests := []struct {
		name, header string
		want         string // "" = accepted
	}{
		{"token at the limit", "Bearer " + atLimit, ""},
		{"token at the limit with blanks", "Bearer    " + atLimit + "  ", ""},
		{"token one byte over", "Bearer " + atLimit + strings.Repeat("x", MaxTokenBytes+1-len(atLimit)),
			"more than the 16384 accepted"},
		{"header of 1 MiB", "Bearer " + strings.Repeat("A", 1<<20), "more than the 16448 accepted"},
		{"header one byte over", "Bearer " + strings.Repeat(" ", MaxAuthorizationBytes-len("Bearer ")-len(atLimit)+1) + atLimit,
			"Authorization header is 16449 bytes long"},
		{"header of blanks", strings.Repeat(" ", MaxAuthorizationBytes+1), "Authorization header is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuth(t, nil)
			lookups := countKeyLookups(a)
			c, err := authHeader(t, a, tt.header)
			if tt.want == "" {
				if err != nil || c.Subject != "uss1" {
					t.Fatalf("refused: %+v %v", c, err)
				}
				return
			}
			wantUnauthenticated(t, err, tt.want)
			if *lookups != 0 || a.cache.len() != 0 {
				t.Fatalf("%d key lookups, %d cache entries: the token was decoded", *lookups, a.cache.len())
			}
		})
	}
}

// TestOversizedHeaderCostsNoDecode: refusing a 1 MiB header allocates a few
// hundred bytes (the error), not the ~768 KiB a base64 decode would.
func TestOversizedHeaderCostsNoDecode(t *testing.T) {
	a := newTestAuth(t, nil)
	h := "Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", (1<<20)/21)
	const runs = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := a.authenticateHeader(h); err == nil {
			t.Fatal("accepted")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 4<<10 {
		t.Fatalf("%d bytes allocated per refused 1 MiB header, want < 4 KiB", per)
	}
}

func TestMoreThanOneAuthorizationHeader(t *testing.T) {
	a := newTestAuth(t, nil)
	good := "Bearer " + sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	for _, second := range []string{good, "Bearer x", ""} {
		r := httptest.NewRequest(http.MethodGet, "/dss/v1/uss_availability/uss1", nil)
		r.Header.Add("Authorization", good)
		r.Header.Add("authorization", second)
		_, err := a.Authenticate(r)
		wantUnauthenticated(t, err, "more than one Authorization header")
	}
}

func TestSubjectMustBeAUSSIdentifier(t *testing.T) {
	a := newTestAuth(t, nil)
	tests := []struct {
		name, sub, want string // want "" = accepted
	}{
		{"client id", "uss1", ""},
		{"uri", "https://idp.example/clients/uss1", ""},
		{"255 bytes", strings.Repeat("s", models.MaxUSSIDBytes), ""},
		{"non-ascii", "ユーエスエス", ""},
		{"256 bytes", strings.Repeat("s", models.MaxUSSIDBytes+1), "not a valid USS identifier: it is 256 bytes long"},
		{"NUL", "uss\x001", "non-printable character U+0000"},
		{"newline", "uss1\nadmin", "U+000A"},
		{"zero-width", "uss\u200b1", "U+200B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := authHeader(t, a, "Bearer "+sign(t, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "sub", tt.sub), ""))
			if tt.want == "" {
				if err != nil || c.Subject != tt.sub {
					t.Fatalf("refused: %+v %v", c, err)
				}
				return
			}
			wantUnauthenticated(t, err, tt.want)
		})
	}
}

// checkCacheAccounting fails t unless c's byte count is the sum of its
// entries' sizes and within both bounds.
func checkCacheAccounting(t *testing.T, c *tokenCache) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	var sum int64
	for k, e := range c.entries {
		if e.size != entrySize(k, e) {
			t.Fatalf("entry size %d, recomputed %d", e.size, entrySize(k, e))
		}
		sum += e.size
	}
	if sum != c.bytes {
		t.Fatalf("cache counts %d bytes, entries sum to %d", c.bytes, sum)
	}
	if c.bytes > c.maxBytes || len(c.entries) > c.max {
		t.Fatalf("cache holds %d entries / %d bytes, bounds %d / %d", len(c.entries), c.bytes, c.max, c.maxBytes)
	}
}

func TestTokenCacheIsBoundedByBytes(t *testing.T) {
	tests := []struct {
		name     string
		entries  int
		maxBytes int64
		tokenLen int
	}{
		// Large tokens: the byte bound binds long before the count.
		{"large tokens", 1000, 64 << 10, 8 << 10},
		{"tokens at the size limit", 1000, 100 << 10, MaxTokenBytes},
		// Small tokens: the count binds.
		{"small tokens", 8, 1 << 20, 1 << 10},
		// A bound below one entry: nothing is cached, everything still works.
		{"bound below one entry", 1000, 4 << 10, 8 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuth(t, func(c *Config) { c.TokenCacheSize = tt.entries; c.TokenCacheBytes = tt.maxBytes })
			var headers []string
			for i := range 24 {
				tok := paddedTokenFor(t, tt.tokenLen, edit(goodClaims(), "sub", fmt.Sprintf("uss%04d", i)))
				headers = append(headers, "Bearer "+tok)
			}
			for round := range 2 {
				for i, h := range headers {
					c, err := authHeader(t, a, h)
					if err != nil || c.Subject != fmt.Sprintf("uss%04d", i) {
						t.Fatalf("round %d token %d: %+v %v", round, i, c, err)
					}
					checkCacheAccounting(t, a.cache)
				}
			}
			if used := a.cache.usedBytes(); used > tt.maxBytes ||
				(tt.maxBytes < 1<<20 && tt.maxBytes > int64(tt.tokenLen) && used < tt.maxBytes/2) {
				t.Fatalf("cache uses %d bytes, bound %d: want it bounded and in use", used, tt.maxBytes)
			}
			if tt.maxBytes < int64(tt.tokenLen) && a.cache.len() != 0 {
				t.Fatalf("%d entries cached under a bound smaller than one entry", a.cache.len())
			}
			if tt.maxBytes >= 1<<20 && a.cache.len() < tt.entries*7/8 {
				t.Fatalf("count-bound cache holds only %d of %d entries", a.cache.len(), tt.entries)
			}
		})
	}
}

func TestTokenCacheByteBoundConfig(t *testing.T) {
	a := newTestAuth(t, nil)
	if a.cache.maxBytes != DefaultTokenCacheBytes || a.cache.max != DefaultTokenCacheSize {
		t.Fatalf("default bounds %d entries / %d bytes", a.cache.max, a.cache.maxBytes)
	}
	_, err := New(context.Background(), Config{PublicKeys: a.cfg.PublicKeys, AcceptedAudiences: []string{"x"},
		TokenCacheBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "negative token cache byte bound") {
		t.Fatalf("negative TokenCacheBytes: err = %v", err)
	}
}

// hostileTokens are tokens of at most MaxTokenBytes built to make the work
// before the signature check expensive: deep JSON nesting in the header and
// claims, thousands of audiences and scopes. None verifies (the signature is
// not theirs), and each must be refused with 401, never a panic.
func hostileTokens(t testing.TB) map[string]string {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	sig := strings.Split(sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), ""), ".")[2]
	fit := func(prefix, unit, suffix string, encoded func(string) int) string {
		n := 1
		for encoded(prefix+strings.Repeat(unit, n*2)+suffix) < MaxTokenBytes {
			n *= 2
		}
		for encoded(prefix+strings.Repeat(unit, n+1)+suffix) < MaxTokenBytes {
			n++
		}
		return prefix + strings.Repeat(unit, n) + suffix
	}
	claims := `{"sub":"uss1","iss":"i","aud":"dss.example","exp":9999999999,"scope":"x"}`
	header := `{"alg":"RS256","typ":"JWT"}`
	headerLen := func(h string) int { return len(b64(h)) + 1 + len(b64(claims)) + 1 + len(sig) }
	claimsLen := func(c string) int { return len(b64(header)) + 1 + len(b64(c)) + 1 + len(sig) }
	nest := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	out := map[string]string{}
	h := fit(`{"alg":"RS256","x":`, "[", "", headerLen)
	depth := (len(h) - len(`{"alg":"RS256","x":`)) / 2
	h = `{"alg":"RS256","x":` + nest(depth) + `}`
	out["nested header"] = b64(h) + "." + b64(claims) + "." + sig
	c := fit(`{"sub":"uss1","iss":"i","exp":9999999999,"aud":"dss.example","x":`, "[", "", claimsLen)
	depth = (len(c) - len(`{"sub":"uss1","iss":"i","exp":9999999999,"aud":"dss.example","x":`)) / 2
	c = `{"sub":"uss1","iss":"i","exp":9999999999,"aud":"dss.example","x":` + nest(depth) + `}`
	out["nested claims"] = b64(header) + "." + b64(c) + "." + sig
	c = fit(`{"sub":"uss1","iss":"i","exp":9999999999,"aud":["dss.example"`, `,""`, `]}`, claimsLen)
	out["thousands of audiences"] = b64(header) + "." + b64(c) + "." + sig
	c = fit(`{"sub":"uss1","iss":"i","exp":9999999999,"aud":"dss.example","scope":"`, `s `, `"}`, claimsLen)
	out["thousands of scopes"] = b64(header) + "." + b64(c) + "." + sig
	c = fit(`{"sub":"uss1","iss":"i","exp":9999999999,"aud":"dss.example"`, `,"k":1`, `}`, claimsLen)
	out["thousands of duplicate keys"] = b64(header) + "." + b64(c) + "." + sig
	for name, tok := range out {
		if len(tok) > MaxTokenBytes || len(tok) < MaxTokenBytes-64 {
			t.Fatalf("%s: %d bytes, want just under %d", name, len(tok), MaxTokenBytes)
		}
	}
	return out
}

func TestHostileTokensUnderTheLimit(t *testing.T) {
	// Which check refuses each one, before any key is looked up ("" = the
	// signature check, after decoding).
	want := map[string]string{
		"nested header":               "header nests JSON",
		"nested claims":               "claims nests JSON",
		"thousands of audiences":      "claims holds more than 1024",
		"thousands of duplicate keys": "claims holds more than 1024",
		"thousands of scopes":         "",
	}
	for _, cached := range []bool{true, false} {
		a := newTestAuth(t, func(c *Config) {
			if !cached {
				c.TokenCacheSize = -1
			}
		})
		lookups := countKeyLookups(a)
		for name, tok := range hostileTokens(t) {
			t.Run(fmt.Sprintf("%s/cache=%v", name, cached), func(t *testing.T) {
				*lookups = 0
				w, ok := want[name]
				if !ok {
					t.Fatalf("no expectation for %q", name)
				}
				c, err := authHeader(t, a, "Bearer "+tok)
				if err == nil {
					t.Fatalf("accepted: %+v", c)
				}
				if w == "" {
					wantUnauthenticated(t, err, "signature does not verify")
					return
				}
				wantUnauthenticated(t, err, w)
				if *lookups != 0 {
					t.Fatalf("refused after %d key lookups, want before decoding", *lookups)
				}
			})
		}
	}
}

func TestTokenShape(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	list := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("0,", n+1), ",") + "]" }
	tests := []struct {
		name, header, claims, want string // want "" = passes the shape check
	}{
		{"typical", `{"alg":"RS256","kid":"k"}`, `{"sub":"u","aud":["a","b"],"realm":{"roles":["x"]}}`, ""},
		{"depth at the limit", `{"alg":"RS256"}`, `{"x":` + nest(maxTokenJSONDepth-1) + `}`, ""},
		{"depth over the limit", `{"alg":"RS256"}`, `{"x":` + nest(maxTokenJSONDepth) + `}`, "claims nests JSON 17 levels"},
		{"header depth over", `{"x":` + nest(maxTokenJSONDepth) + `}`, `{}`, "header nests JSON 17 levels"},
		{"members at the limit", `{}`, `{"x":` + list(maxTokenJSONMembers-1) + `}`, ""},
		{"members over the limit", `{}`, `{"x":` + list(maxTokenJSONMembers) + `,"y":1}`, "more than 1024"},
		{"brackets and commas inside strings", `{}`, `{"x":"` + strings.Repeat(`[{,\"`, 2000) + `"}`, ""},
		{"escaped backslash ends the string", `{}`, `{"x":"\\",` + `"y":` + nest(maxTokenJSONDepth) + `}`, "nests JSON"},
		{"unbalanced closers", `{}`, strings.Repeat("]", 100) + nest(maxTokenJSONDepth-1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTokenShape(b64(tt.header) + "." + b64(tt.claims) + ".sig")
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantUnauthenticated(t, err, tt.want)
		})
	}
	// What it cannot decode it leaves to the parser.
	for _, raw := range []string{"", "abc", "a.b", "!!.??.**", b64(`{}`) + ".%%.x", "%%." + b64(nest(99)) + ".x"} {
		if err := checkTokenShape(raw); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

// BenchmarkHostileToken measures the work one hostile token of the maximum
// size causes before it is refused (docs/limits-auth.md quotes it).
func BenchmarkHostileToken(b *testing.B) {
	a := newTestAuth(b, nil)
	for name, tok := range hostileTokens(b) {
		h := "Bearer " + tok
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.authenticateHeader(h); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
	b.Run("valid_uncached", func(b *testing.B) {
		a := newTestAuth(b, func(c *Config) { c.TokenCacheSize = -1 })
		h := "Bearer " + sign(b, jwt.SigningMethodRS256, keyA, goodClaims(), "")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.authenticateHeader(h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
