package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Dev key file names inside the directory given to LoadOrCreateDevKey.
const (
	DevKeyFile    = "dev-key.pem"
	DevPubKeyFile = "dev-key.pub.pem"
)

// Defaults of MintToken.
const (
	DefaultDevIssuer   = "raftdss-dev"
	DefaultDevAudience = "localhost"
	// DefaultDevTokenTTL stays just under MaxTokenLifetime so a fresh token
	// is accepted despite small clock differences.
	DefaultDevTokenTTL = MaxTokenLifetime - time.Minute
)

// LoadOrCreateDevKey returns the RSA key in dir/dev-key.pem, creating a
// 2048-bit one (file mode 0600, dir created 0700) when absent, and makes sure
// dir/dev-key.pub.pem holds its public half (for --public_key_files).
//
// For local development and tests only: a production DSS verifies tokens
// issued by a real authorization server and holds no signing key.
func LoadOrCreateDevKey(dir string) (*rsa.PrivateKey, error) {
	if dir == "" {
		return nil, errors.New("auth: empty dev key directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: creating dev key directory: %w", err)
	}
	keyPath := filepath.Join(dir, DevKeyFile)
	key, err := LoadPrivateKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createDevKey(keyPath)
	}
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("auth: encoding dev public key: %w", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := writeFileAtomic(filepath.Join(dir, DevPubKeyFile), pubPEM, 0o644, true); err != nil {
		return nil, err
	}
	return key, nil
}

// createDevKey generates a key and publishes it at path only if no file is
// there yet, so two processes starting together end up sharing one key.
func createDevKey(path string) (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("auth: generating dev key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("auth: encoding dev key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	err = writeFileAtomic(path, data, 0o600, false)
	if errors.Is(err, fs.ErrExist) {
		return LoadPrivateKey(path)
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// writeFileAtomic writes data to a temporary file and then moves it to path,
// so readers never see a half-written key. With replace false an existing
// path is kept and fs.ErrExist returned.
func writeFileAtomic(path string, data []byte, perm os.FileMode, replace bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("auth: writing %s: %w", path, werr)
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		// A hard link fails if path exists: an atomic create-if-absent.
		err = os.Link(tmp, path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads an RSA private key from a PEM file holding PKCS#8
// ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). Encrypted keys are not
// supported. Errors wrap fs.ErrNotExist when the file is absent.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading private key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("auth: %s: no PEM block found", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("auth: %s: unsupported PEM block %q (want PRIVATE KEY or RSA PRIVATE KEY)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %s: parsing %s: %w", path, block.Type, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: %s: holds a %T, not an RSA key", path, key)
	}
	return rk, nil
}

// TokenOptions describe a token minted by MintToken. Zero fields take the
// defaults documented on each.
type TokenOptions struct {
	// Subject is the sub claim: the USS identity (required).
	Subject string
	// Issuer is the iss claim (default "raftdss-dev").
	Issuer string
	// Audience is the aud claim (default "localhost").
	Audience string
	// Scopes are space-joined into the scope claim.
	Scopes []string
	// TTL sets exp = Now + TTL (default 59 min: under the 1 h cap of §2).
	TTL time.Duration
	// Now is the iat claim and the base of exp (default time.Now()).
	Now time.Time
	// KeyID, when set, goes into the kid header.
	KeyID string
}

// devClaims is the payload MintToken writes.
type devClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
}

// MintToken signs an RS256 access token with key.
//
// It exists ONLY for local testing (core-service --dev, tests, dssctl
// token): real deployments get tokens from their authorization server, and
// a DSS must never hold the key its tokens are signed with.
func MintToken(key *rsa.PrivateKey, o TokenOptions) (string, error) {
	if key == nil {
		return "", errors.New("auth: nil signing key")
	}
	if o.Subject == "" {
		return "", errors.New("auth: token subject is required")
	}
	if o.TTL < 0 {
		return "", errors.New("auth: negative token TTL")
	}
	if o.Issuer == "" {
		o.Issuer = DefaultDevIssuer
	}
	if o.Audience == "" {
		o.Audience = DefaultDevAudience
	}
	if o.TTL == 0 {
		o.TTL = DefaultDevTokenTTL
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return "", fmt.Errorf("auth: invalid scope %q", s)
		}
	}
	claims := devClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   o.Subject,
			Issuer:    o.Issuer,
			Audience:  jwt.ClaimStrings{o.Audience},
			ExpiresAt: jwt.NewNumericDate(o.Now.Add(o.TTL)),
			IssuedAt:  jwt.NewNumericDate(o.Now),
		},
		Scope: strings.Join(o.Scopes, " "),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if o.KeyID != "" {
		tok.Header["kid"] = o.KeyID
	}
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: signing token: %w", err)
	}
	return s, nil
}
