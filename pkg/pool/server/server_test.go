package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestSplitPEM checks aux.md C1: a CA file with two certificates (a
// rotation) is listed as two PEM strings; other blocks are skipped; bytes
// that are not PEM make the configuration invalid.
func TestSplitPEM(t *testing.T) {
	a, b := selfSigned(t, "a"), selfSigned(t, "b")
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})
	got, err := SplitPEM(append(append(append([]byte{}, a...), key...), b...))
	if err != nil || len(got) != 2 || got[0] != string(a) || got[1] != string(b) {
		t.Fatalf("splitPEM: %d certificates (%v)", len(got), err)
	}
	if got, err := SplitPEM(nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("no file: %#v (%v), want an empty list", got, err)
	}
	if _, err := SplitPEM(append(a, "garbage"...)); err == nil {
		t.Fatal("trailing garbage accepted")
	}
}

// TestRoutesConfig checks that a node with an unusable pool configuration
// refuses to start (aux.md H4) instead of failing its requests.
func TestRoutesConfig(t *testing.T) {
	dar := func(context.Context) (string, error) { return "d", nil }
	for name, cfg := range map[string]Config{
		"no instance ID":    {DarID: dar},
		"no DarID":          {InstanceID: "1"},
		"long instance ID":  {InstanceID: strings.Repeat("x", 1025), DarID: dar},
		"long endpoint":     {InstanceID: "1", PublicEndpoint: strings.Repeat("x", 1025), DarID: dar},
		"control character": {InstanceID: "a\nb", DarID: dar},
	} {
		if _, err := Routes(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	rs, err := Routes(Config{InstanceID: "1", DarID: dar})
	if err != nil || len(rs) != 8 {
		t.Fatalf("%d routes (%v), want the 8 of aux.md §1", len(rs), err)
	}
}

// TestParseTime checks aux.md H5.
func TestParseTime(t *testing.T) {
	for _, ok := range []string{"2026-12-08T03:00:00Z", "2026-12-08T03:00:00.123456789+02:00"} {
		if _, err := parseTime(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "2026-12-08", "0001-01-01T00:00:00Z", "2026-12-08T03:00:00", strings.Repeat("9", 65)} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
