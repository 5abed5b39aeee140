package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftdss/dss/internal/peercerts"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCerts: `dssctl certs` writes a CA and one raft-node-<ID> certificate
// per node, signed by it, prints each node's three flags, refuses to
// overwrite any file, and signs a later node with the existing CA.
func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	code, stdout, stderr := runCLI("certs", "--dir", dir, "--nodes", "1, 2,3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v %v", st, err)
	}
	ca := readCert(t, filepath.Join(dir, peercerts.CAFile))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for id := uint64(1); id <= 3; id++ {
		want := "  node " + fmt.Sprint(id) + ": " + strings.Join(peercerts.Flags(dir, id), " ") + "\n"
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
		c := readCert(t, filepath.Join(dir, peercerts.CertFile(id)))
		name := fmt.Sprintf("raft-node-%d", id)
		if c.Subject.CommonName != name || len(c.DNSNames) != 1 || c.DNSNames[0] != name {
			t.Errorf("node %d: CN %q SAN %v", id, c.Subject.CommonName, c.DNSNames)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: name,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("node %d: %v", id, err)
		}
		if st, err := os.Stat(filepath.Join(dir, peercerts.KeyFile(id))); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("node %d key: %v %v", id, st, err)
		}
	}
	if !strings.Contains(stdout, "New CA") || !strings.Contains(stdout, peercerts.CAKeyFile) {
		t.Errorf("stdout does not name the new CA and its key:\n%s", stdout)
	}

	// Nothing is overwritten: node 2's files exist, so the run writes
	// nothing, node 4's included.
	before, err := os.ReadFile(filepath.Join(dir, peercerts.CertFile(2)))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("certs", "--dir", dir, "--nodes", "4,2")
	if code != 1 || !strings.Contains(stderr, "already exists") || strings.Contains(stdout, "wrote") {
		t.Fatalf("existing node: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, peercerts.CertFile(2))); string(after) != string(before) {
		t.Error("node 2's certificate changed")
	}
	if _, err := os.Stat(filepath.Join(dir, peercerts.CertFile(4))); err == nil {
		t.Error("node 4's certificate was written by a refused run")
	}

	// With --skip_existing, existing nodes are kept and the run succeeds:
	// nothing is written when every node exists.
	code, stdout, stderr = runCLI("certs", "--dir", dir, "--nodes", "1,2,3", "--skip_existing")
	if code != 0 || strings.Contains(stdout, "wrote") || !strings.Contains(stdout, "kept the existing certificate of node 2") ||
		!strings.Contains(stdout, "  node 3: "+strings.Join(peercerts.Flags(dir, 3), " ")) {
		t.Fatalf("--skip_existing, all exist: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, peercerts.CertFile(2))); string(after) != string(before) {
		t.Error("--skip_existing changed node 2's certificate")
	}
	// A node whose key alone was lost is not skipped: Create refuses it.
	if err := os.Remove(filepath.Join(dir, peercerts.KeyFile(3))); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("certs", "--dir", dir, "--nodes", "3", "--skip_existing")
	if code != 1 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("--skip_existing, key lost: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A later node: signed by the same CA, which is kept.
	code, stdout, stderr = runCLI("certs", "--dir", dir, "--nodes", "4")
	if code != 0 || !strings.Contains(stdout, "existing CA") || strings.Contains(stdout, "wrote "+filepath.Join(dir, peercerts.CAFile)) {
		t.Fatalf("node 4: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := readCert(t, filepath.Join(dir, peercerts.CertFile(4))).Verify(x509.VerifyOptions{Roots: pool,
		DNSName: "raft-node-4", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("node 4: %v", err)
	}
}

func TestCertsUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "1"}, "--dir is required"},
		{[]string{"--dir", dir}, "--nodes is required"},
		{[]string{"--dir", dir, "--nodes", "1,0"}, `"0" is not a raft node ID`},
		{[]string{"--dir", dir, "--nodes", "1,x"}, `"x" is not a raft node ID`},
		{[]string{"--dir", dir, "--nodes", "1,,2"}, `"" is not a raft node ID`},
		{[]string{"--dir", dir, "--nodes", "2,2"}, "given twice"},
		{[]string{"--dir", dir, "--nodes", "1", "--validity", "-1h"}, "--validity must be positive"},
		{[]string{"--dir", dir, "--nodes", "1", "extra"}, "unexpected argument"},
	} {
		code, _, stderr := runCLI(append([]string{"certs"}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tt.args, code, stderr, tt.want)
		}
	}
	var ids []string
	for i := range maxCertNodes + 1 {
		ids = append(ids, fmt.Sprint(i+1))
	}
	if code, _, stderr := runCLI("certs", "--dir", dir, "--nodes", strings.Join(ids, ",")); code != 2 ||
		!strings.Contains(stderr, "more than") {
		t.Errorf("too many IDs: exit %d, %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused run wrote %v", entries)
	}
	if code, stdout, _ := runCLI("help", "certs"); code != 0 || !strings.Contains(stdout, "raft-node-<ID>") {
		t.Errorf("help certs: %d %q", code, stdout)
	}
}
