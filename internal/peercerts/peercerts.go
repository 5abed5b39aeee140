// Package peercerts creates the certificates of raft peer mutual TLS: a CA
// and, per node, a certificate that names the node (grpctransport.NodeName:
// "raft-node-<ID>", as DNS SAN and CommonName) with its private key. It is
// what `dssctl certs`, scripts/dev-cluster.sh (through dssctl) and the tests
// that start multi-node clusters use, so that the authenticated setup is the
// easy one.
//
// Files in a directory:
//
//	ca.pem                  the CA certificate (--raft_tls_ca of every node)
//	ca-key.pem              the CA's private key: needed only to add nodes
//	raft-node-<ID>.pem      node ID's certificate (--raft_tls_cert)
//	raft-node-<ID>-key.pem  its private key (--raft_tls_key)
//
// Keys are ECDSA P-256 in PKCS#8 PEM, written with mode 0600; the directory is
// created with mode 0700. Nothing is ever overwritten.
package peercerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// File names in a certificate directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// Validity defaults.
const (
	// DefaultValidity is a node certificate's lifetime.
	DefaultValidity = 365 * 24 * time.Hour
	// caValidity is a new CA's lifetime (at least the node validity asked
	// for).
	caValidity = 10 * 365 * 24 * time.Hour
	// backdate covers clocks that lag the machine creating the files.
	backdate = time.Hour
)

// CertFile is node id's certificate file name.
func CertFile(id uint64) string { return grpctransport.NodeName(id) + ".pem" }

// KeyFile is node id's private key file name.
func KeyFile(id uint64) string { return grpctransport.NodeName(id) + "-key.pem" }

// Files are the paths of node id's files in dir: what its --raft_tls_cert,
// --raft_tls_key and --raft_tls_ca take.
type Files struct {
	Cert, Key, CA string
}

// NodeFiles returns node id's file paths in dir.
func NodeFiles(dir string, id uint64) Files {
	return Files{Cert: filepath.Join(dir, CertFile(id)), Key: filepath.Join(dir, KeyFile(id)),
		CA: filepath.Join(dir, CAFile)}
}

// Flags are node id's three core-service flags for the files in dir.
func Flags(dir string, id uint64) []string {
	f := NodeFiles(dir, id)
	return []string{"--raft_tls_cert", f.Cert, "--raft_tls_key", f.Key, "--raft_tls_ca", f.CA}
}

// Result says what Create wrote.
type Result struct {
	// CACreated: the CA was created; otherwise the directory's CA signed
	// the new certificates.
	CACreated bool
	// Written lists the files written, in order.
	Written []string
}

// Create writes a certificate and key for each of ids into dir, signed by
// the CA of dir (ca.pem and ca-key.pem), which it creates first when dir has
// neither. It refuses, before writing anything, when a file of one of ids
// already exists, when dir has only one of the CA's two files, or when an ID
// is 0 or repeated. validity is the node certificates' lifetime (0:
// DefaultValidity); it is cut to the CA's remaining lifetime.
func Create(dir string, ids []uint64, validity time.Duration) (*Result, error) {
	if len(ids) == 0 {
		return nil, errors.New("no node ID given")
	}
	if validity < 0 {
		return nil, fmt.Errorf("negative validity %v", validity)
	}
	if validity == 0 {
		validity = DefaultValidity
	}
	seen := map[uint64]bool{}
	for _, id := range ids {
		if id == 0 {
			return nil, errors.New("raft node ID 0 is not valid")
		}
		if seen[id] {
			return nil, fmt.Errorf("raft node ID %d given twice", id)
		}
		seen[id] = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, id := range ids {
		for _, name := range []string{CertFile(id), KeyFile(id)} {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("%s already exists: refusing to overwrite it (a node's certificate "+
					"is made once; remove the file first to replace it)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
	}
	res := &Result{}
	now := time.Now()
	caCert, caKey, err := loadCA(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		caCert, caKey, err = createCA(dir, now, max(validity, caValidity), res)
		if err != nil {
			return res, err
		}
		res.CACreated = true
	case err != nil:
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	if !notAfter.After(now) {
		return res, fmt.Errorf("the CA in %s expired on %s", dir, caCert.NotAfter.Format(time.RFC3339))
	}
	for _, id := range ids {
		if err := createNode(dir, id, caCert, caKey, now, notAfter, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// loadCA reads dir's CA; an fs.ErrNotExist error means dir has neither file.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fs.ErrNotExist
	case errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("%s exists but %s does not: new certificates need the CA's key "+
			"(or an empty directory, for a new CA)", certPath, keyPath)
	case errors.Is(certErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("%s exists but %s does not", keyPath, certPath)
	case certErr != nil:
		return nil, nil, certErr
	case keyErr != nil:
		return nil, nil, keyErr
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, nil, fmt.Errorf("%s: no PKCS#8 PEM private key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the private key of %s", keyPath, certPath)
	}
	return cert, key, nil
}

func createCA(dir string, now time.Time, validity time.Duration, res *Result) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "raftdss raft peer CA"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	// The key first: a CA certificate without its key would make the
	// directory unusable for new nodes.
	if err := writeKey(filepath.Join(dir, CAKeyFile), key, res); err != nil {
		return nil, nil, err
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", der, 0o644, res); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func createNode(dir string, id uint64, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now, notAfter time.Time, res *Result) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	name := grpctransport.NodeName(id)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Every node both serves and dials its peers with one certificate.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, KeyFile(id)), key, res); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CertFile(id)), "CERTIFICATE", der, 0o644, res)
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func writeKey(path string, key *ecdsa.PrivateKey, res *Result) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600, res)
}

// writePEM creates path (never replacing a file) with one PEM block.
func writePEM(path, typ string, der []byte, perm os.FileMode, res *Result) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return err
	}
	res.Written = append(res.Written, path)
	return nil
}
