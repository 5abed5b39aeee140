package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func pemBytes(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes(t, "PUBLIC KEY", der)
}

func certPEM(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.example"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes(t, "CERTIFICATE", der)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPublicKeyFileFormats loads each accepted PEM format from a file and
// checks a token signed by the matching private key verifies.
func TestPublicKeyFileFormats(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		signer *rsa.PrivateKey
	}{
		{"PKIX", pkixPEM(t, &keyB.PublicKey), keyB},
		{"PKCS1", pemBytes(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&keyB.PublicKey)), keyB},
		{"certificate", certPEM(t, keyB), keyB},
		{"two blocks, second key used", append(pkixPEM(t, &keyC.PublicKey), pkixPEM(t, &keyB.PublicKey)...), keyB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "key.pem", tt.data)
			a := newTestAuth(t, func(c *Config) {
				c.PublicKeys = nil
				c.PublicKeyFiles = []string{path}
			})
			if _, err := authHeader(t, a, "Bearer "+sign(t, jwt.SigningMethodRS256, tt.signer, goodClaims(), "")); err != nil {
				t.Fatalf("token signed by the file's key rejected: %v", err)
			}
			if _, err := authHeader(t, a, "Bearer "+sign(t, jwt.SigningMethodRS256, keyA, goodClaims(), "")); err == nil {
				t.Fatal("token signed by another key accepted")
			}
		})
	}
}

func TestPublicKeyFileErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no PEM-encoded public key"},
		{"not PEM", []byte("hello"), "no PEM-encoded public key"},
		{"EC key", pkixPEM(t, &ecKey.PublicKey), "not an RSA key"},
		{"private key block", pemBytes(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keyA)), "unsupported PEM block"},
		{"corrupt PKIX", pemBytes(t, "PUBLIC KEY", []byte{1, 2, 3}), "parsing PUBLIC KEY"},
		{"corrupt PKCS1", pemBytes(t, "RSA PUBLIC KEY", []byte{1, 2, 3}), "parsing RSA PUBLIC KEY"},
		{"corrupt certificate", pemBytes(t, "CERTIFICATE", []byte{1, 2, 3}), "parsing CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "key.pem", tt.data)
			_, err := loadPublicKeyFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("err %q does not name the file", err)
			}
		})
	}
}
