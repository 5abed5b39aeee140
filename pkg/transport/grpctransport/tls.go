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

// tlsConfigs builds the server config and the client config that dialPeer
// specialises per peer.
func tlsConfigs(c *TLSConfig, selfID uint64) (server, client *tls.Config, err error) {
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return nil, nil, errors.New("grpctransport: TLS needs CertFile, KeyFile and CAFile")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("grpctransport: load key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("grpctransport: parse certificate: %w", err)
	}
	// Fail at start-up rather than on every connection if our own
	// certificate would be rejected by our peers.
	if id, err := certNodeID(leaf); err != nil || id != selfID {
		return nil, nil, fmt.Errorf("grpctransport: certificate %s is not bound to node %d (want %s): %v", c.CertFile, selfID, NodeName(selfID), err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("grpctransport: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("grpctransport: no certificate in CA file %s", c.CAFile)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client, nil
}

// peerTLS specialises the client config for dialling peer id: hostname
// verification against NodeName(id), plus a check that the certificate names
// no other node.
func peerTLS(base *tls.Config, id uint64) *tls.Config {
	c := base.Clone()
	c.ServerName = NodeName(id)
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer sent no certificate")
		}
		got, err := certNodeID(cs.PeerCertificates[0])
		if err != nil {
			return err
		}
		if got != id {
			return fmt.Errorf("peer certificate is bound to node %d, dialled node %d", got, id)
		}
		return nil
	}
	return c
}
