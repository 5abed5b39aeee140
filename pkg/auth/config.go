package auth

import (
	"crypto/rsa"
	"errors"
	"flag"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Defaults of spec §2 / §13.
const (
	DefaultJWKSRefreshInterval = time.Minute
	DefaultJWKSKeyTTL          = time.Hour
)

// MaxTokenLifetime is the longest remaining lifetime an access token may have
// (spec §2, §14): a token whose exp is further ahead is rejected, so a leaked
// token is useful for at most this long.
const MaxTokenLifetime = time.Hour

// Config configures an Authenticator. At least one key source (PublicKeyFiles,
// PublicKeys or JWKSEndpoint) and at least one audience are required.
type Config struct {
	// PublicKeyFiles are PEM files, each holding an RSA public key as PKIX
	// ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") or an X.509 certificate.
	PublicKeyFiles []string
	// PublicKeys are keys given directly (tests and core-service --dev).
	PublicKeys []*rsa.PublicKey
	// JWKSEndpoint is a URL serving a JSON Web Key Set; its RSA keys are
	// fetched by New and refreshed every JWKSRefreshInterval.
	JWKSEndpoint string
	// JWKSKeyIDs, when non-empty, restricts the JWKS to keys with these kids.
	JWKSKeyIDs []string
	// JWKSRefreshInterval is the period between JWKS fetches (default 1 min).
	JWKSRefreshInterval time.Duration
	// JWKSKeyTTL is how long JWKS keys stay trusted without a successful
	// refresh (default 1 h). Past it the JWKS keys are dropped and
	// OnKeysExpired is called.
	JWKSKeyTTL time.Duration
	// AcceptedAudiences: a token's aud must contain one of them (spec §2).
	AcceptedAudiences []string
	// Now is the clock for every time check (default time.Now).
	Now func() time.Time
	// HTTPClient fetches the JWKS (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Logger receives refresh failures (default: no logging).
	Logger *zap.Logger
	// TokenCacheSize bounds the cache of verified tokens (default
	// DefaultTokenCacheSize; negative disables it). A cached token skips
	// signature verification until its key set is replaced; its time claims
	// are still checked on every request.
	TokenCacheSize int
	// TokenCacheBytes bounds the memory of that cache: token strings,
	// kept claims and a per-entry overhead (default DefaultTokenCacheBytes;
	// negative is an error).
	TokenCacheBytes int64
	// OnKeysExpired is called once, from the refresh goroutine, when JWKS
	// refreshing has failed for longer than JWKSKeyTTL; the service is
	// expected to stop (spec §2). It must not call Close and should return
	// promptly.
	OnKeysExpired func(error)
}

// RegisterFlags registers the reference flag names of spec §13 on fs, bound
// to c. List flags are comma-separated; defaults are filled into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.JWKSRefreshInterval == 0 {
		c.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if c.JWKSKeyTTL == 0 {
		c.JWKSKeyTTL = DefaultJWKSKeyTTL
	}
	fs.Var((*commaList)(&c.PublicKeyFiles), "public_key_files",
		"comma-separated PEM files with RSA public keys that verify access tokens")
	fs.StringVar(&c.JWKSEndpoint, "jwks_endpoint", c.JWKSEndpoint,
		"URL of a JWKS whose RSA keys verify access tokens")
	fs.Var((*commaList)(&c.JWKSKeyIDs), "jwks_key_ids",
		"comma-separated key IDs to accept from the JWKS (default: all)")
	fs.DurationVar(&c.JWKSRefreshInterval, "jwks_refresh_interval", c.JWKSRefreshInterval,
		"how often the JWKS is refetched")
	fs.DurationVar(&c.JWKSKeyTTL, "jwks_key_ttl", c.JWKSKeyTTL,
		"how long JWKS keys stay valid without a successful refresh; past it the service stops")
	fs.Var((*commaList)(&c.AcceptedAudiences), "accepted_jwt_audiences",
		"comma-separated audiences accepted in access tokens (normally this DSS's host name)")
}

// withDefaults validates c and fills its zero fields.
func (c Config) withDefaults() (Config, error) {
	if len(c.PublicKeyFiles) == 0 && len(c.PublicKeys) == 0 && c.JWKSEndpoint == "" {
		return c, errors.New("auth: no token verification key configured (need public_key_files or jwks_endpoint)")
	}
	if len(c.AcceptedAudiences) == 0 {
		return c, errors.New("auth: no accepted JWT audience configured (accepted_jwt_audiences)")
	}
	for _, a := range c.AcceptedAudiences {
		if a == "" {
			return c, errors.New("auth: empty accepted JWT audience")
		}
	}
	if len(c.JWKSKeyIDs) > 0 && c.JWKSEndpoint == "" {
		return c, errors.New("auth: jwks_key_ids given without jwks_endpoint")
	}
	if c.JWKSRefreshInterval < 0 || c.JWKSKeyTTL < 0 {
		return c, errors.New("auth: negative JWKS refresh interval or key TTL")
	}
	if c.JWKSRefreshInterval == 0 {
		c.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if c.JWKSKeyTTL == 0 {
		c.JWKSKeyTTL = DefaultJWKSKeyTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.TokenCacheBytes < 0 {
		return c, errors.New("auth: negative token cache byte bound")
	}
	if c.TokenCacheBytes == 0 {
		c.TokenCacheBytes = DefaultTokenCacheBytes
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// commaList is a flag.Value for a comma-separated list; empty items are
// dropped so "a,,b," means [a b].
type commaList []string

func (l *commaList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *commaList) Set(v string) error {
	*l = splitList(v, ",")
	return nil
}

// splitList splits s on any of the separator characters, trimming spaces
// and dropping empty items.
func splitList(s, seps string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
