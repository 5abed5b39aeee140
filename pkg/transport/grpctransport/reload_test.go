package grpctransport_test

import (
	"os"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
	"github.com/raftdss/dss/pkg/transport/internal/transporttest"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadTLS rotates a node's CA and certificate in place, the way an
// operator does: first a CA file trusting the old and the new CA, then the
// node's certificate from the new CA. After ReloadTLS, the node accepts
// clients of the new CA, presents its new certificate when serving and when
// dialling, and a broken set of files is refused without changing anything.
func TestReloadTLS(t *testing.T) {
	oldCA, newCA := newPKI(t), newPKI(t)
	certs := map[uint64]*grpctransport.TLSConfig{
		1: oldCA.issue("n1", grpctransport.NodeName(1)),
		2: oldCA.issue("n2", grpctransport.NodeName(2)),
	}
	r1, r2, r3 := transporttest.NewRecorder(), transporttest.NewRecorder(), transporttest.NewRecorder()
	t1 := node(t, 1, r1, func(c *grpctransport.GRPCConfig) { c.TLS = certs[1] })
	t2 := node(t, 2, r2, func(c *grpctransport.GRPCConfig) { c.TLS = certs[2] })
	t1.AddPeer(2, t2.Addr())
	t2.AddPeer(1, t1.Addr())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	r2.WaitMessages(t, 1, wait)

	// A node 2 of the new CA only: refused before the reload.
	new2 := newCA.issue("new2", grpctransport.NodeName(2))
	onlyNew := &grpctransport.TLSConfig{CertFile: new2.CertFile, KeyFile: new2.KeyFile, CAFile: newCA.caFile}
	if s, err := openRawStream(t, t1.Addr(), clientCreds(t, onlyNew, 1)); err == nil {
		expectRejected(t, s, codes.Unavailable, batch(2, marshal(t, transporttest.Msg(2, 1, 1))))
	}
	if n := len(r1.Messages()); n != 0 {
		t.Fatalf("node 1 stepped %d messages from a certificate it does not trust yet", n)
	}

	// Node 1's files now: both CAs, and a certificate of the new CA.
	bundle := append(readFile(t, oldCA.caFile), readFile(t, newCA.caFile)...)
	if err := os.WriteFile(certs[1].CAFile, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	new1 := newCA.issue("new1", grpctransport.NodeName(1))
	copyFile(t, new1.CertFile, certs[1].CertFile)
	copyFile(t, new1.KeyFile, certs[1].KeyFile)
	if err := t1.ReloadTLS(); err != nil {
		t.Fatal(err)
	}

	// Serving: a client trusting only the new CA accepts node 1, and node 1
	// accepts the client.
	s := rawStream(t, t1.Addr(), clientCreds(t, onlyNew, 1))
	if err := s.Send(batch(2, marshal(t, transporttest.Msg(2, 1, 2)))); err != nil {
		t.Fatal(err)
	}
	r1.WaitMessages(t, 1, wait)

	// Dialling: a node of the new CA only is reached with the new
	// certificate, and verified against the reloaded CA file.
	t3 := node(t, 3, r3, func(c *grpctransport.GRPCConfig) {
		n3 := newCA.issue("new3", grpctransport.NodeName(3))
		c.TLS = &grpctransport.TLSConfig{CertFile: n3.CertFile, KeyFile: n3.KeyFile, CAFile: newCA.caFile}
	})
	t1.AddPeer(3, t3.Addr())
	t3.AddPeer(1, t1.Addr())
	t1.Send([]*raftpb.Message{transporttest.Msg(1, 3, 1)})
	r3.WaitMessages(t, 1, wait)

	// A key that does not match the certificate: refused, nothing changes.
	copyFile(t, certs[2].KeyFile, certs[1].KeyFile)
	if err := t1.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS accepted a key of another certificate")
	}
	s = rawStream(t, t1.Addr(), clientCreds(t, onlyNew, 1))
	if err := s.Send(batch(2, marshal(t, transporttest.Msg(2, 1, 3)))); err != nil {
		t.Fatal(err)
	}
	r1.WaitMessages(t, 2, wait)

	// A certificate of another node: refused too.
	copyFile(t, certs[2].CertFile, certs[1].CertFile)
	if err := t1.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS accepted a certificate bound to node 2")
	}

	plain := node(t, 4, transporttest.NewRecorder(), nil)
	if err := plain.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS on a plaintext transport reported success")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
