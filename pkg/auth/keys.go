package auth

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// keySet is an immutable set of verification keys. The Authenticator swaps
// whole sets atomically, so a request sees either the old or the new keys.
type keySet struct {
	// all is a jwt.VerificationKeySet boxed once at construction, so handing
	// it to the parser costs no allocation per request.
	all any
	// byKID holds the keys that came with a key ID (JWKS keys).
	byKID map[string]*rsa.PublicKey
	size  int
}

type kidKey struct {
	kid string // "" for keys from PEM files or Config.PublicKeys
	key *rsa.PublicKey
}

func newKeySet(keys []kidKey) *keySet {
	ks := &keySet{byKID: make(map[string]*rsa.PublicKey), size: len(keys)}
	vks := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(keys))}
	for _, k := range keys {
		vks.Keys = append(vks.Keys, k.key)
		if k.kid != "" {
			ks.byKID[k.kid] = k.key
		}
	}
	ks.all = vks
	return ks
}

// lookup returns what the jwt parser should verify with: the key whose kid
// matches when there is one, else every key (a token may carry a kid the
// PEM-file keys do not know about).
func (ks *keySet) lookup(kid string) (any, error) {
	if ks.size == 0 {
		return nil, errNoKeys
	}
	if kid != "" {
		if k, ok := ks.byKID[kid]; ok {
			return k, nil
		}
	}
	return ks.all, nil
}

// loadPublicKeyFile reads every PEM block of path; each must be an RSA public
// key (PKIX or PKCS#1) or an X.509 certificate with an RSA key.
func loadPublicKeyFile(path string) ([]*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading public key file: %w", err)
	}
	keys, err := parsePublicKeysPEM(data)
	if err != nil {
		return nil, fmt.Errorf("auth: public key file %s: %w", path, err)
	}
	return keys, nil
}

func parsePublicKeysPEM(data []byte) ([]*rsa.PublicKey, error) {
	var keys []*rsa.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, not an RSA key (spec §2: tokens are RSA-signed)", block.Type, pub)
		}
		keys = append(keys, rk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no PEM-encoded public key found")
	}
	return keys, nil
}
