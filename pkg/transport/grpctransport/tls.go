package grpctransport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const nodeNamePrefix = "raft-node-"

// NodeName is the name a node's certificate must carry (as a DNS SAN, or as
// its CommonName) to be accepted as raft node id. Clients also use it as the
// TLS server name when dialling the peer, so standard hostname verification
// checks the binding.
func NodeName(id uint64) string {
	return nodeNamePrefix + strconv.FormatUint(id, 10)
}

// certNodeIDs returns every raft node ID a certificate names. Only the
// canonical decimal spelling counts, so one ID has exactly one name.
func certNodeIDs(cert *x509.Certificate) map[uint64]bool {
	ids := make(map[uint64]bool)
	names := append([]string{cert.Subject.CommonName}, cert.DNSNames...)
	for _, n := range names {
		s, ok := strings.CutPrefix(n, nodeNamePrefix)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil || id == 0 || strconv.FormatUint(id, 10) != s {
			continue
		}
		ids[id] = true
	}
	return ids
}

// certNodeID returns the single node ID cert is bound to. A certificate that
// names several nodes could impersonate each of them, so it is refused.
func certNodeID(cert *x509.Certificate) (uint64, error) {
	ids := certNodeIDs(cert)
	if len(ids) != 1 {
		return 0, fmt.Errorf("certificate %q names %d raft nodes, want exactly 1", cert.Subject.String(), len(ids))
	}
	var id uint64
	for k := range ids {
		id = k
	}
	return id, nil
}

// tlsMaterial is one generation of the node's TLS files. ReloadTLS replaces
// it whole, so a handshake sees either the old certificate and CA or the new
// ones, never a mix.
type tlsMaterial struct {
	cert   tls.Certificate
	pool   *x509.CertPool
	server *tls.Config // handed to gRPC per handshake by serverTLSConfig
}

// loadTLS reads and checks the files c names.
func loadTLS(c *TLSConfig, selfID uint64) (*tlsMaterial, error) {
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return nil, errors.New("grpctransport: TLS needs CertFile, KeyFile and CAFile")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("grpctransport: load key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("grpctransport: parse certificate: %w", err)
	}
	// Fail at start-up (or refuse the reload) rather than on every
	// connection if our own certificate would be rejected by our peers.
	if id, err := certNodeID(leaf); err != nil || id != selfID {
		return nil, fmt.Errorf("grpctransport: certificate %s is not bound to node %d (want %s): %v", c.CertFile, selfID, NodeName(selfID), err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("grpctransport: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("grpctransport: no certificate in CA file %s", c.CAFile)
	}
	return &tlsMaterial{
		cert: cert,
		pool: pool,
		server: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS13,
		},
	}, nil
}

// serverTLSConfig is the config gRPC serves with: every handshake takes the
// material current at that moment.
func (t *GRPCTransport) serverTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.tls.Load().server, nil
		},
	}
}

// peerTLS is the client config for dialling peer id. The chain is verified
// in VerifyConnection, against the CA current at the handshake: crypto/tls's
// own verification would use the pool of the moment the peer was added, and
// a reloaded CA would never reach peers already known. The check is the one
// crypto/tls makes with ServerName NodeName(id) (chain to the CA, a DNS SAN
// naming the node, server-auth usage), plus a check that the certificate
// names no other node.
func (t *GRPCTransport) peerTLS(id uint64) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: NodeName(id),
		// Verified in VerifyConnection, which crypto/tls always runs.
		InsecureSkipVerify: true, //nolint:gosec // see above
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &t.tls.Load().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, t.tls.Load().pool, id)
		},
	}
}

// verifyPeer checks the certificate a dialled peer presented.
func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool, id uint64) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: NodeName(id)}); err != nil {
		return err
	}
	got, err := certNodeID(leaf)
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("peer certificate is bound to node %d, dialled node %d", got, id)
	}
	return nil
}

// ReloadTLS rereads the certificate, key and CA files of the transport's
// TLSConfig. Handshakes from now on use them: new connections, and
// reconnections after a peer's connection broke. Connections already up
// stay as they are (both ends were authenticated when they were made). On an
// error nothing changes.
func (t *GRPCTransport) ReloadTLS() error {
	if t.cfg.TLS == nil {
		return errors.New("grpctransport: the transport runs without TLS; there is nothing to reload")
	}
	m, err := loadTLS(t.cfg.TLS, t.cfg.ID)
	if err != nil {
		return err
	}
	t.tls.Store(m)
	return nil
}
