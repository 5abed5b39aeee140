package grpctransport_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
	"github.com/raftdss/dss/pkg/transport/internal/transporttest"
)

// testPKI is a CA that issues node certificates into a temp dir.
type testPKI struct {
	t      *testing.T
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T) *testPKI {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "raftdss test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{t: t, dir: t.TempDir(), ca: ca, caKey: key, serial: 1}
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue makes a certificate whose DNS SANs are names.
func (p *testPKI) issue(file string, names ...string) *grpctransport.TLSConfig {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: file},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return &grpctransport.TLSConfig{
		CertFile: p.write(file+".pem", "CERTIFICATE", der),
		KeyFile:  p.write(file+"-key.pem", "EC PRIVATE KEY", keyDER),
		CAFile:   p.caFile,
	}
}

// clientCreds builds raw-client credentials from c that trust the server
// as node serverID.
func clientCreds(t *testing.T, c *grpctransport.TLSConfig, serverID uint64) credentials.TransportCredentials {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   grpctransport.NodeName(serverID),
		MinVersion:   tls.VersionTLS13,
	})
}

func TestMutualTLS(t *testing.T) {
	pki := newPKI(t)
	certs := map[uint64]*grpctransport.TLSConfig{
		1: pki.issue("n1", grpctransport.NodeName(1)),
		2: pki.issue("n2", grpctransport.NodeName(2)),
		3: pki.issue("n3", grpctransport.NodeName(3)),
	}
	withTLS := func(id uint64) func(*grpctransport.GRPCConfig) {
		return func(c *grpctransport.GRPCConfig) { c.TLS = certs[id] }
	}
	r1, r2, r3 := transporttest.NewRecorder(), transporttest.NewRecorder(), transporttest.NewRecorder()
	t1, t2, t3 := node(t, 1, r1, withTLS(1)), node(t, 2, r2, withTLS(2)), node(t, 3, r3, withTLS(3))

	// Right certificates: messages flow both ways.
	t1.AddPeer(2, t2.Addr())
	t2.AddPeer(1, t1.Addr())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	t2.Send([]*raftpb.Message{transporttest.Msg(2, 1, 1)})
	r2.WaitMessages(t, 1, wait)
	r1.WaitMessages(t, 1, wait)

	// A client whose certificate is bound to node 3 cannot speak as node 2.
	s := rawStream(t, t1.Addr(), clientCreds(t, certs[3], 1))
	expectRejected(t, s, codes.PermissionDenied, batch(2, marshal(t, transporttest.Msg(2, 1, 2))))
	// Nor can a certificate that names two nodes speak as either.
	both := pki.issue("n2and3", grpctransport.NodeName(2), grpctransport.NodeName(3))
	s = rawStream(t, t1.Addr(), clientCreds(t, both, 1))
	expectRejected(t, s, codes.PermissionDenied, batch(2, marshal(t, transporttest.Msg(2, 1, 3))))
	// A client certificate from another CA fails the handshake.
	other := newPKI(t).issue("rogue2", grpctransport.NodeName(2))
	s, err := openRawStream(t, t1.Addr(), clientCreds(t, &grpctransport.TLSConfig{CertFile: other.CertFile, KeyFile: other.KeyFile, CAFile: pki.caFile}, 1))
	if err == nil {
		// TLS 1.3 may finish the client's side of the handshake before the
		// server rejects the certificate.
		expectRejected(t, s, codes.Unavailable, batch(2, marshal(t, transporttest.Msg(2, 1, 4))))
	} else if status.Code(err) != codes.Unavailable {
		t.Fatalf("rogue client: %v", err)
	}
	if n := len(r1.Messages()); n != 1 {
		t.Fatalf("node 1 stepped %d messages, want 1", n)
	}

	// Dialling "node 4" at node 3's address: node 3's certificate does not
	// name node 4, so nothing is sent and node 4 is reported unreachable.
	t1.AddPeer(4, t3.Addr())
	t3.AddPeer(1, t1.Addr())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 4, 1)})
	r1.WaitFor(t, wait, "unreachable 4", func() bool { return r1.Unreachable(4) > 0 })
	if len(r3.Messages()) != 0 {
		t.Fatal("message for node 4 reached node 3")
	}

	// A node refuses to start with a certificate bound to another ID.
	if tr, err := grpctransport.NewGRPC(grpctransport.GRPCConfig{ID: 5, ListenAddr: "127.0.0.1:0", Handler: r1, TLS: certs[3]}); err == nil {
		tr.Stop()
		t.Fatal("NewGRPC accepted a certificate bound to another node")
	}
}
