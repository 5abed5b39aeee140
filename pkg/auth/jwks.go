package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxJWKSBytes bounds a JWKS response: a key set is a few KiB, and the
// endpoint is outside our control.
const maxJWKSBytes = 1 << 20

// maxJWKSKeys bounds the usable keys taken from a JWKS. A token without a
// kid, or with one no key carries, is verified against every key in turn,
// so the key count multiplies the cost of each forged token (~30 µs per
// 2048-bit verification). Issuers publish two to ten keys; a larger set is
// refused (the previous keys stay) with a message pointing at jwks_key_ids.
const maxJWKSKeys = 32

// maxRSAModulusBits bounds a JWKS key: RSA verification grows with the
// modulus, and 8192 bits is above what any issuer uses (2048 to 4096).
const maxRSAModulusBits = 8192

// jwksFetchTimeout bounds one fetch so a hanging endpoint cannot stall the
// refresher past its next tick (and Close cancels it anyway).
const jwksFetchTimeout = 30 * time.Second

// jsonWebKey holds the RFC 7517/7518 members we use; others are ignored.
type jsonWebKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

type jsonWebKeySet struct {
	Keys []jsonWebKey `json:"keys"`
}

// fetchJWKS downloads and parses the key set once.
func (a *Authenticator) fetchJWKS(ctx context.Context) ([]kidKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.JWKSEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("auth: fetching JWKS from %s: HTTP status %s", a.cfg.JWKSEndpoint, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("auth: JWKS larger than %d bytes", maxJWKSBytes)
	}
	keys, err := parseJWKS(body, a.cfg.JWKSKeyIDs)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS from %s: %w", a.cfg.JWKSEndpoint, err)
	}
	return keys, nil
}

// parseJWKS returns the usable RSA signing keys of a JWKS, restricted to
// allowedKIDs when that is non-empty. Keys of other types, encryption keys
// and malformed keys are skipped (one bad entry must not block a rotation);
// a set with no usable key is an error.
func parseJWKS(data []byte, allowedKIDs []string) ([]kidKey, error) {
	var set jsonWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("malformed JWKS: %w", err)
	}
	var keys []kidKey
	var skipped []error
	for i, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if len(allowedKIDs) > 0 && !slices.Contains(allowedKIDs, k.Kid) {
			continue
		}
		pub, err := rsaFromJWK(k)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err))
			continue
		}
		keys = append(keys, kidKey{kid: k.Kid, key: pub})
	}
	if len(keys) == 0 {
		if len(allowedKIDs) > 0 {
			skipped = append(skipped, fmt.Errorf("no RSA signing key with an ID in %v", allowedKIDs))
		} else {
			skipped = append(skipped, errors.New("no RSA signing key"))
		}
		return nil, errors.Join(skipped...)
	}
	if len(keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%d usable RSA signing keys, more than the %d accepted "+
			"(restrict the set with jwks_key_ids)", len(keys), maxJWKSKeys)
	}
	return keys, nil
}

func rsaFromJWK(k jsonWebKey) (*rsa.PublicKey, error) {
	n, err := decodeB64URL(k.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("bad modulus n")
	}
	e, err := decodeB64URL(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("bad exponent e")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("bad exponent e")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if pub.N.BitLen() < 1024 {
		return nil, fmt.Errorf("modulus of %d bits is too small", pub.N.BitLen())
	}
	if pub.N.BitLen() > maxRSAModulusBits {
		return nil, fmt.Errorf("modulus of %d bits is larger than the %d accepted", pub.N.BitLen(), maxRSAModulusBits)
	}
	return pub, nil
}

// decodeB64URL accepts base64url with or without padding (RFC 7515 §2 says
// without; some issuers pad anyway).
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// refreshLoop refetches the JWKS every JWKSRefreshInterval until ctx ends.
// It is the Authenticator's only goroutine; Close cancels ctx and waits for
// done. lastOK is the time of the last successful fetch.
func (a *Authenticator) refreshLoop(ctx context.Context, lastOK time.Time) {
	defer close(a.done)
	ticker := time.NewTicker(a.cfg.JWKSRefreshInterval)
	defer ticker.Stop()
	expiredReported := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		keys, err := a.fetchJWKS(ctx)
		if ctx.Err() != nil {
			return
		}
		now := a.cfg.Now()
		if err == nil {
			lastOK = now
			a.setJWKSKeys(keys)
			continue
		}
		a.cfg.Logger.Warn("JWKS refresh failed; keeping previous keys",
			zap.Error(err), zap.Time("last_success", lastOK))
		if now.Sub(lastOK) <= a.cfg.JWKSKeyTTL {
			continue
		}
		// Spec §2: keys not refreshed within the TTL are no longer trusted
		// and the service stops. Drop them so nothing verifies against them
		// while the owner shuts down, and report once.
		a.setJWKSKeys(nil)
		if !expiredReported {
			expiredReported = true
			expErr := fmt.Errorf("auth: JWKS keys expired: no successful refresh since %s (ttl %s): %w",
				lastOK.Format(time.RFC3339), a.cfg.JWKSKeyTTL, err)
			a.cfg.Logger.Error("JWKS keys expired", zap.Error(expErr))
			if a.cfg.OnKeysExpired != nil {
				a.cfg.OnKeysExpired(expErr)
			}
		}
	}
}
