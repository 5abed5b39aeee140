package peercerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// verify checks that node id's files in dir form a key pair whose
// certificate chains to the directory's CA for both TLS roles and names
// exactly the node.
func verify(t *testing.T, dir string, id uint64) *x509.Certificate {
	t.Helper()
	f := NodeFiles(dir, id)
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: grpctransport.NodeName(id), Roots: pool,
			KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("node %d, usage %v: %v", id, usage, err)
		}
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != grpctransport.NodeName(id) ||
		leaf.Subject.CommonName != grpctransport.NodeName(id) {
		t.Errorf("node %d: names %v / %q", id, leaf.DNSNames, leaf.Subject.CommonName)
	}
	if fi, err := os.Stat(f.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key %s: %v %v, want mode 0600", f.Key, fi.Mode(), err)
	}
	return leaf
}

func TestCreateAddAndRefuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	res, err := Create(dir, []uint64{1, 2, 3}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CACreated || len(res.Written) != 2+3*2 {
		t.Fatalf("result %+v", res)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v %v, want 0700", fi.Mode(), err)
	}
	for id := uint64(1); id <= 3; id++ {
		leaf := verify(t, dir, id)
		if d := time.Until(leaf.NotAfter); d < DefaultValidity-2*time.Hour || d > DefaultValidity {
			t.Errorf("node %d valid for %v more, want about %v", id, d, DefaultValidity)
		}
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	cert2, err := os.ReadFile(filepath.Join(dir, CertFile(2)))
	if err != nil {
		t.Fatal(err)
	}

	// An existing node's files are never replaced, and nothing else is
	// written by a refused call.
	if _, err := Create(dir, []uint64{4, 2}, 0); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("re-creating node 2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CertFile(4))); err == nil {
		t.Error("a refused call wrote node 4's certificate")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, CertFile(2))); string(b) != string(cert2) {
		t.Error("node 2's certificate changed")
	}

	// A node added later is signed by the same CA.
	res, err = Create(dir, []uint64{4}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.CACreated || len(res.Written) != 2 {
		t.Fatalf("adding node 4: %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, CAFile)); string(b) != string(caBefore) {
		t.Error("the CA changed")
	}
	if leaf := verify(t, dir, 4); time.Until(leaf.NotAfter) > time.Hour {
		t.Errorf("node 4 valid until %v, want within the hour", leaf.NotAfter)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		ids  []uint64
		want string
	}{
		{nil, "no node ID"},
		{[]uint64{0}, "ID 0"},
		{[]uint64{1, 1}, "given twice"},
	} {
		if _, err := Create(dir, tc.ids, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%v): %v, want %q", tc.ids, err, tc.want)
		}
	}
	if _, err := Create(dir, []uint64{1}, -time.Second); err == nil {
		t.Error("negative validity accepted")
	}
	// Half a CA: the certificate without its key.
	if err := os.WriteFile(filepath.Join(dir, CAFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, []uint64{1}, 0); err == nil || !strings.Contains(err.Error(), CAKeyFile) {
		t.Errorf("CA without key: %v", err)
	}
	// Another CA's key.
	other := t.TempDir()
	if _, err := Create(other, []uint64{1}, 0); err != nil {
		t.Fatal(err)
	}
	third := t.TempDir()
	if _, err := Create(third, []uint64{1}, 0); err != nil {
		t.Fatal(err)
	}
	// other's CA certificate with third's CA key.
	mixed := t.TempDir()
	for src, name := range map[string]string{other: CAFile, third: CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mixed, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Create(mixed, []uint64{2}, 0); err == nil || !strings.Contains(err.Error(), "not the private key") {
		t.Errorf("mismatched CA key: %v", err)
	}
}
