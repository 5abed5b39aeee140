package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestLoadOrCreateDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "keys")
	k1, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.N.BitLen() != 2048 {
		t.Errorf("key size = %d", k1.N.BitLen())
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, DevKeyFile): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	// The public file must be usable as --public_key_files.
	pub, err := loadPublicKeyFile(filepath.Join(dir, DevPubKeyFile))
	if err != nil || len(pub) != 1 || !pub[0].Equal(&k1.PublicKey) {
		t.Fatalf("public key file: %v", err)
	}
	// Reused, and a missing public file is rewritten.
	if err := os.Remove(filepath.Join(dir, DevPubKeyFile)); err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Equal(k1) {
		t.Fatal("second call created a new key")
	}
	if _, err := os.Stat(filepath.Join(dir, DevPubKeyFile)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries (temporary files left?)", len(entries))
	}
}

func TestLoadOrCreateDevKeyReusesPKCS1(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DevKeyFile),
		pemBytes(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keyC)), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(keyC) {
		t.Fatal("existing PKCS#1 key not reused")
	}
	if _, err := LoadOrCreateDevKey(""); err == nil {
		t.Fatal("empty dir accepted")
	}
}

func TestLoadPrivateKeyErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not PEM", []byte("nope"), "no PEM block"},
		{"public key", pkixPEM(t, &keyA.PublicKey), "unsupported PEM block"},
		{"EC key", pemBytes(t, "PRIVATE KEY", ecDER), "not an RSA key"},
		{"corrupt", pemBytes(t, "PRIVATE KEY", []byte{1, 2}), "parsing PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPrivateKey(writeTemp(t, "k.pem", tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	_, err = LoadPrivateKey(filepath.Join(t.TempDir(), "absent.pem"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestMintToken(t *testing.T) {
	a := newTestAuth(t, nil)
	tok, err := MintToken(keyA, TokenOptions{Subject: "uss1", Scopes: []string{sc, cmsa}, Now: testNow, KeyID: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := authHeader(t, a, "Bearer "+tok)
	if err != nil {
		t.Fatalf("minted token rejected: %v", err)
	}
	if c.Subject != "uss1" || c.Issuer != DefaultDevIssuer || !slices.Equal(c.Scopes, []string{sc, cmsa}) ||
		!c.ExpiresAt.Equal(testNow.Add(DefaultDevTokenTTL)) {
		t.Fatalf("claims = %+v", c)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "RS256" || parsed.Header["kid"] != "dev" {
		t.Errorf("header = %v", parsed.Header)
	}
	if iat, _ := parsed.Claims.GetIssuedAt(); iat == nil || !iat.Equal(testNow) {
		t.Errorf("iat = %v", iat)
	}

	// A token minted an hour ago has expired.
	old, err := MintToken(keyA, TokenOptions{Subject: "uss1", Now: testNow.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authHeader(t, a, "Bearer "+old); err == nil {
		t.Fatal("expired minted token accepted")
	}

	for name, o := range map[string]TokenOptions{
		"no subject":     {},
		"negative ttl":   {Subject: "u", TTL: -time.Second},
		"scope w/ space": {Subject: "u", Scopes: []string{"a b"}},
		"empty scope":    {Subject: "u", Scopes: []string{""}},
	} {
		if _, err := MintToken(keyA, o); err == nil {
			t.Errorf("%s: MintToken succeeded", name)
		}
	}
	if _, err := MintToken(nil, TokenOptions{Subject: "u"}); err == nil {
		t.Error("nil key accepted")
	}
}
