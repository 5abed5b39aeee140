package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// writePKI creates a CA and one certificate per raft node ID in dir and
// returns the CA file; node N's files are nodeN.pem and nodeN-key.pem.
func writePKI(t *testing.T, dir string, ids ...uint64) string {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test raft CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(id) + 1), Subject: pkix.Name{CommonName: grpctransport.NodeName(id)},
			DNSNames:  []string{grpctransport.NodeName(id)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("node%d.pem", id), "CERTIFICATE", der)
		write(fmt.Sprintf("node%d-key.pem", id), "PRIVATE KEY", keyDER)
	}
	return write("ca.pem", "CERTIFICATE", caDER)
}

// TestClusterWithMutualTLS: three nodes whose raft traffic uses mTLS agree;
// a node given another node's certificate refuses to start; a fourth node,
// with its own certificate, joins as a learner and is promoted.
func TestClusterWithMutualTLS(t *testing.T) {
	pki := t.TempDir()
	caFile := writePKI(t, pki, 1, 2, 3, 4)
	devDir := t.TempDir()
	addrs := freeAddrs(t, 4)
	peers := fmt.Sprintf("1=%s,2=%s,3=%s", addrs[0], addrs[1], addrs[2])
	dirs := []string{shortTempDir(t), shortTempDir(t), shortTempDir(t), shortTempDir(t)}
	tlsArgs := func(id, certID int) []string {
		return append([]string{"--raft_node_id", fmt.Sprint(id), "--raft_peers", peers, "--raft_data_dir", dirs[id-1],
			"--raft_tls_cert", filepath.Join(pki, fmt.Sprintf("node%d.pem", certID)),
			"--raft_tls_key", filepath.Join(pki, fmt.Sprintf("node%d-key.pem", certID)),
			"--raft_tls_ca", caFile}, fastRaft...)
	}

	// Node 3 with node 1's certificate: its identity is its raft ID, and the
	// certificate does not prove it.
	var stdout, stderr syncBuffer
	code := run(context.Background(), append([]string{"--dev", "--dev_dir", devDir, "--addr", "127.0.0.1:0"},
		append(tlsArgs(3, 1), "--raft_data_dir", t.TempDir())...), &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "not bound to node 3") {
		t.Fatalf("node 3 with node 1's certificate: exit %d, stderr:\n%s", code, stderr.String())
	}

	var nodes []*node
	for id := 1; id <= 3; id++ {
		nodes = append(nodes, startNode(t, devDir, tlsArgs(id, id)...))
	}
	for _, n := range nodes {
		n.waitReady()
	}
	if code, body := nodes[2].call("PUT", "/dss/v1/uss_availability/uss2", `{"availability": "Normal"}`); code != http.StatusOK {
		t.Fatalf("PUT on node 3: %d %s", code, body)
	}
	if code, body := nodes[0].call("GET", "/dss/v1/uss_availability/uss2", ""); code != http.StatusOK || !strings.Contains(body, "Normal") {
		t.Fatalf("GET on node 1: %d %s", code, body)
	}
	waitEqualHashes(t, nodes)

	// Node 4 joins: added as a learner through node 1's admin socket, it
	// dials and is dialled over mTLS with its own certificate.
	admin := adminClient(filepath.Join(dirs[0], adminSocketName))
	defer admin.CloseIdleConnections()
	post := func(path, body string) {
		t.Helper()
		resp, err := admin.Post("http://admin"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	post("/members", fmt.Sprintf(`{"id": 4, "raft_addr": %q, "learner": true}`, addrs[3]))
	peers = fmt.Sprintf("1=%s,2=%s,3=%s,4=%s", addrs[0], addrs[1], addrs[2], addrs[3])
	nodes = append(nodes, startNode(t, devDir, append(tlsArgs(4, 4), "--raft_join")...))
	nodes[3].waitReady()
	if code, body := nodes[3].call("PUT", "/dss/v1/uss_availability/uss3", `{"availability": "Down"}`); code != http.StatusOK {
		t.Fatalf("PUT on node 4: %d %s", code, body)
	}
	waitEqualHashes(t, nodes)
	post("/members/4/promote", "")
	if code, body := nodes[1].call("GET", "/dss/v1/uss_availability/uss3", ""); code != http.StatusOK || !strings.Contains(body, "Down") {
		t.Fatalf("GET on node 2: %d %s", code, body)
	}
}
