// Package auth authenticates DSS requests and checks their scopes (spec §2).
//
// It owns: the access-token rules of spec §2 (RSA-signed JWT in an
// "Authorization: Bearer" header; sub, iss, exp, nbf, iat and aud checks;
// the one-hour cap on remaining lifetime), the verification keys (PEM files
// and a periodically refreshed JWKS endpoint), the scope names and the
// OR-of-AND scope requirements of the §1 table, and the dev/test helpers that
// create a local signing key and mint tokens with it.
//
// Every request is bounded before its token is verified: one Authorization
// header of at most MaxAuthorizationBytes holding a token of at most
// MaxTokenBytes, whose header and claims JSON nest at most 16 levels with at
// most 1,024 members (checkTokenShape); the JWKS is at most 1 MiB with at most
// 32 usable keys of at most 8,192 bits. The verified-token cache is bounded by
// entries and by bytes (DefaultTokenCacheSize, DefaultTokenCacheBytes). The
// subject must be a valid USS identifier (models.USSIDProblem), since it is
// the uss_id of the availability endpoints. docs/limits.md lists them.
//
// It must never: accept a token that is not RSA-signed (alg "none" and HMAC
// are rejected outright, since an HMAC "secret" would be our public key);
// read the clock other than through Config.Now; render HTTP responses (it
// returns *models.Error values with CodeUnauthenticated or
// CodePermissionDenied and the HTTP layer maps them, spec §3.7); register
// flags in init() or keep global state; or outlive Close() with a goroutine.
package auth
