package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/raftdss/dss/pkg/models"
)

// acceptedAlgs are the RSA-based JWS algorithms (spec §2: clients use RS256;
// any RSA alg is accepted). Listing them makes the parser reject "none" and
// HMAC before any key is looked at: with HMAC a public key would act as the
// shared secret and anyone could forge tokens.
var acceptedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

var errNoKeys = errors.New("no verification keys available")

// Authenticator verifies access tokens (spec §2). It is safe for concurrent
// use; Close stops its JWKS refresher.
type Authenticator struct {
	cfg      Config
	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	keys     atomic.Pointer[keySet]
	fileKeys []kidKey
	// cache holds verified tokens (nil when Config.TokenCacheSize < 0).
	cache *tokenCache

	cancel    context.CancelFunc
	done      chan struct{} // closed when the refresher exits; nil without JWKS
	closeOnce sync.Once
}

// New loads the configured keys, fetches the JWKS if one is configured (an
// unreachable JWKS is an error: the service would otherwise start unable to
// authenticate anyone) and, in that case, starts one refresh goroutine that
// Close stops. ctx bounds only the initial fetch.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		cfg:    cfg,
		parser: jwt.NewParser(jwt.WithValidMethods(acceptedAlgs), jwt.WithoutClaimsValidation()),
	}
	a.keyfunc = a.lookupKey
	if cfg.TokenCacheSize > 0 {
		a.cache = newTokenCache(cfg.TokenCacheSize, cfg.TokenCacheBytes)
	}
	for i, k := range cfg.PublicKeys {
		if k == nil || k.N == nil {
			return nil, fmt.Errorf("auth: PublicKeys[%d] is nil", i)
		}
		a.fileKeys = append(a.fileKeys, kidKey{key: k})
	}
	for _, path := range cfg.PublicKeyFiles {
		keys, err := loadPublicKeyFile(path)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			a.fileKeys = append(a.fileKeys, kidKey{key: k})
		}
	}
	if cfg.JWKSEndpoint == "" {
		a.setJWKSKeys(nil)
		return a, nil
	}
	jwksKeys, err := a.fetchJWKS(ctx)
	if err != nil {
		return nil, err
	}
	a.setJWKSKeys(jwksKeys)
	// The refresher must outlive the caller's ctx (often a startup
	// deadline); only Close ends it.
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.done = make(chan struct{})
	go a.refreshLoop(loopCtx, cfg.Now())
	return a, nil
}

// Close stops the JWKS refresher and waits for it; an in-flight fetch is
// cancelled, so this is bounded by OnKeysExpired's run time. Idempotent.
func (a *Authenticator) Close() {
	a.closeOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
			<-a.done
		}
	})
}

// setJWKSKeys publishes a new key set made of the fixed keys plus jwksKeys.
func (a *Authenticator) setJWKSKeys(jwksKeys []kidKey) {
	all := make([]kidKey, 0, len(a.fileKeys)+len(jwksKeys))
	all = append(all, a.fileKeys...)
	all = append(all, jwksKeys...)
	a.keys.Store(newKeySet(all))
}

func (a *Authenticator) lookupKey(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	return a.keys.Load().lookup(kid)
}

// tokenClaims is what we decode from the JWT payload.
type tokenClaims struct {
	jwt.RegisteredClaims
	// Scope is space-separated (spec §2).
	Scope string `json:"scope"`
}

const bearerPrefix = "bearer "

// MaxTokenBytes bounds an access token (the JWS compact serialisation after
// "Bearer "). Real access tokens are well under 4 KiB (an RS256 signature is
// 342 characters, a header ~100, the claims a few hundred); 16 KiB leaves
// room for issuers that put many scopes, audiences or extra claims in a
// token, and bounds every step that runs before the signature is checked:
// the base64 decodes, the JSON decodes of header and claims (their nesting
// and the number of audiences and scopes included), the hash, and the
// token-cache key. A longer token is refused with 401 before any of them.
const MaxTokenBytes = 16 << 10

// MaxAuthorizationBytes bounds the whole Authorization header value: the
// scheme, one token of MaxTokenBytes and some surrounding blanks. It is
// checked first, so an oversized header is refused without being scanned.
const MaxAuthorizationBytes = MaxTokenBytes + 64

func unauthenticated(cause error, format string, args ...any) error {
	e := models.Errorf(models.CodeUnauthenticated, format, args...)
	e.Cause = cause
	return e
}

// Authenticate verifies the request's bearer token (spec §2) and returns its
// claims. Every failure is a *models.Error with CodeUnauthenticated (401).
func (a *Authenticator) Authenticate(r *http.Request) (*Claims, error) {
	if r == nil {
		return nil, unauthenticated(nil, "missing Authorization header")
	}
	// Two Authorization headers are ambiguous (RFC 9110 allows one): a
	// proxy in front may have checked the other one. Header is keyed by the
	// canonical name, so "authorization" and "AUTHORIZATION" land here too.
	if v := r.Header["Authorization"]; len(v) > 1 {
		return nil, unauthenticated(nil, "more than one Authorization header")
	}
	return a.authenticateHeader(r.Header.Get("Authorization"))
}

func (a *Authenticator) authenticateHeader(h string) (*Claims, error) {
	if h == "" {
		return nil, unauthenticated(nil, "missing Authorization header")
	}
	if len(h) > MaxAuthorizationBytes {
		return nil, unauthenticated(nil, "Authorization header is %d bytes long, more than the %d accepted",
			len(h), MaxAuthorizationBytes)
	}
	if len(h) < len(bearerPrefix) || !strings.EqualFold(h[:len(bearerPrefix)], bearerPrefix) {
		return nil, unauthenticated(nil, "Authorization header is not of the form \"Bearer <token>\"")
	}
	raw := strings.TrimSpace(h[len(bearerPrefix):])
	if raw == "" {
		return nil, unauthenticated(nil, "missing access token after \"Bearer\"")
	}
	if len(raw) > MaxTokenBytes {
		return nil, unauthenticated(nil, "access token is %d bytes long, more than the %d accepted",
			len(raw), MaxTokenBytes)
	}

	if a.cache == nil {
		if err := checkTokenShape(raw); err != nil {
			return nil, err
		}
		return a.verify(raw)
	}
	// The key set is read before verifying: lookupKey reads it again, and
	// may see a newer one; the entry then names the older set and simply
	// misses after the swap, which is the safe direction.
	keys := a.keys.Load()
	if e := a.cache.get(raw, keys); e != nil {
		return e.hit(a.cfg.Now())
	}
	if err := checkTokenShape(raw); err != nil {
		return nil, err
	}
	var tc tokenClaims
	tok, err := a.parser.ParseWithClaims(raw, &tc, a.keyfunc)
	if err != nil {
		return nil, classifyParseError(tok, err)
	}
	c, err := a.checkClaims(&tc)
	if err != nil {
		return nil, err
	}
	a.cache.put(raw, newCachedToken(keys, &tc, c), a.cfg.Now())
	return c, nil
}

// verify checks a token's signature and claims without the cache.
func (a *Authenticator) verify(raw string) (*Claims, error) {
	var tc tokenClaims
	tok, err := a.parser.ParseWithClaims(raw, &tc, a.keyfunc)
	if err != nil {
		return nil, classifyParseError(tok, err)
	}
	return a.checkClaims(&tc)
}

// classifyParseError turns a jwt parse/verify failure into a client message.
// The jwt error itself is kept as Cause for logs.
func classifyParseError(tok *jwt.Token, err error) error {
	switch {
	case errors.Is(err, errNoKeys):
		return unauthenticated(err, "no key is currently available to verify access tokens")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated(err, "malformed access token")
	}
	if tok != nil && tok.Method != nil && !slices.Contains(acceptedAlgs, tok.Method.Alg()) {
		return unauthenticated(err, "access token signing algorithm %q is not accepted (RSA algorithms only)", tok.Method.Alg())
	}
	if tok == nil || tok.Method == nil {
		// Unknown "alg" values fail before a Method is set.
		return unauthenticated(err, "access token signing algorithm is not accepted (RSA algorithms only)")
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return unauthenticated(err, "access token signature does not verify against any configured key")
	}
	return unauthenticated(err, "invalid access token")
}

// checkClaims applies the claim rules of spec §2 with Config.Now.
func (a *Authenticator) checkClaims(tc *tokenClaims) (*Claims, error) {
	if tc.Subject == "" {
		return nil, unauthenticated(nil, "access token has no subject (sub)")
	}
	// The subject becomes the manager of what the caller writes and is the
	// uss_id others use to look up or set its availability (utm.yaml), so
	// it must be a valid USS identifier: bounded and printable.
	if p := models.USSIDProblem(tc.Subject); p != "" {
		return nil, unauthenticated(nil, "access token subject (sub) is not a valid USS identifier: it %s "+
			"(want 1 to %d bytes of printable UTF-8)", p, models.MaxUSSIDBytes)
	}
	if tc.Issuer == "" {
		return nil, unauthenticated(nil, "access token has no issuer (iss)")
	}
	if tc.ExpiresAt == nil {
		return nil, unauthenticated(nil, "access token has no expiration time (exp)")
	}
	exp := tc.ExpiresAt.Time
	var nbf, iat *time.Time
	if tc.NotBefore != nil {
		nbf = &tc.NotBefore.Time
	}
	if tc.IssuedAt != nil {
		iat = &tc.IssuedAt.Time
	}
	if err := checkTimes(a.cfg.Now(), exp, nbf, iat); err != nil {
		return nil, err
	}
	if len(tc.Audience) == 0 {
		return nil, unauthenticated(nil, "access token has no audience (aud)")
	}
	if !a.audienceAccepted(tc.Audience) {
		return nil, unauthenticated(nil, "access token audience is not accepted by this DSS")
	}
	return &Claims{
		Subject:   tc.Subject,
		Issuer:    tc.Issuer,
		Scopes:    strings.Fields(tc.Scope),
		ExpiresAt: exp,
	}, nil
}

// checkTimes applies the time rules of spec §2 at now: exp in the future but
// at most MaxTokenLifetime ahead, nbf and iat (when present) not after now.
// The token cache reruns it on every hit.
func checkTimes(now, exp time.Time, nbf, iat *time.Time) error {
	if !now.Before(exp) {
		return unauthenticated(nil, "access token expired")
	}
	if exp.Sub(now) > MaxTokenLifetime {
		return unauthenticated(nil, "access token expires more than %s from now", MaxTokenLifetime)
	}
	if nbf != nil && now.Before(*nbf) {
		return unauthenticated(nil, "access token is not valid yet (nbf)")
	}
	if iat != nil && now.Before(*iat) {
		return unauthenticated(nil, "access token is issued in the future (iat)")
	}
	return nil
}

func (a *Authenticator) audienceAccepted(aud jwt.ClaimStrings) bool {
	for _, got := range aud {
		if slices.Contains(a.cfg.AcceptedAudiences, got) {
			return true
		}
	}
	return false
}
