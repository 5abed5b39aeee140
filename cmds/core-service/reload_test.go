package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/peercerts"
)

// writeAPICert writes a self-signed certificate for 127.0.0.1 with the
// given serial to certFile and keyFile, and returns it.
func writeAPICert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "raftdss API test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestAPITLSAndReloadOnHangup: with --tls_cert/--tls_key the API serves
// HTTPS; SIGHUP makes it serve a replaced certificate and rereads the raft
// peer certificates, each counted on /metrics; a broken file on SIGHUP is
// counted as an error and the certificate loaded before stays in use.
func TestAPITLSAndReloadOnHangup(t *testing.T) {
	// The test sends SIGHUP to its own process: keep it from ending the
	// process should it arrive when no node listens for it.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api-key.pem")
	first := writeAPICert(t, certFile, keyFile, 1)
	pki := writePKI(t, 1)
	n := startNode(t, t.TempDir(), slices.Concat([]string{"--raft_data_dir", shortTempDir(t),
		"--tls_cert", certFile, "--tls_key", keyFile}, peercerts.Flags(pki, 1), fastRaft)...)
	if !strings.HasPrefix(n.base, "https://") {
		t.Fatalf("node announced %s, want an https URL", n.base)
	}
	roots := x509.NewCertPool()
	roots.AddCert(first)
	setRoots := func() {
		n.client.CloseIdleConnections()
		n.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}
	}
	setRoots()
	n.waitReady()
	served := func() *big.Int {
		t.Helper()
		resp, err := n.client.Get(n.base + "/healthy")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber
	}
	if got := served(); got.Int64() != 1 {
		t.Fatalf("serving certificate serial %v, want 1", got)
	}

	hangupUntil := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP: %s never happened", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	metric := func(target, result string) string {
		return metricLine(t, n, `dss_tls_reloads_total{result="`+result+`",target="`+target+`"}`)
	}

	second := writeAPICert(t, certFile, keyFile, 2)
	roots.AddCert(second)
	setRoots()
	hangupUntil("serving the new certificate", func() bool { return served().Int64() == 2 })
	hangupUntil("a counted peer reload", func() bool { return metric("raft_peers", "ok") != "" && !strings.HasSuffix(metric("raft_peers", "ok"), " 0") })
	if m := metric("api", "error"); !strings.HasSuffix(m, " 0") {
		t.Fatalf("API reload errors: %q, want 0", m)
	}

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangupUntil("a counted API reload error", func() bool { return strings.HasSuffix(metric("api", "error"), " 1") })
	if got := served(); got.Int64() != 2 {
		t.Fatalf("after a failed reload: serving serial %v, want 2 (the one loaded before)", got)
	}
	if m := metric("raft_peers", "error"); !strings.HasSuffix(m, " 0") {
		t.Fatalf("peer reload errors: %q, want 0 (their files did not change)", m)
	}
}

func TestAPITLSFlagsGoTogether(t *testing.T) {
	for _, args := range [][]string{{"--tls_cert", "c.pem"}, {"--tls_key", "k.pem"}} {
		if _, err := parseFlags(append([]string{"--dev"}, args...), &syncBuffer{}); err == nil ||
			!strings.Contains(err.Error(), "--tls_cert and --tls_key go together") {
			t.Errorf("%v: err %v", args, err)
		}
	}
}
