package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// apiKeyPair is the certificate the API serves with (--tls_cert and
// --tls_key), replaced on SIGHUP: every TLS handshake takes the current one.
type apiKeyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func loadAPIKeyPair(certFile, keyFile string) (*apiKeyPair, error) {
	k := &apiKeyPair{certFile: certFile, keyFile: keyFile}
	if err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *apiKeyPair) reload() error {
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("API certificate (--tls_cert %s, --tls_key %s): %w", k.certFile, k.keyFile, err)
	}
	k.cur.Store(&c)
	return nil
}

// tlsConfig serves the current certificate. TLS 1.2 stays allowed: the API's
// clients are USSs and operators' tools, not only this project's.
func (k *apiKeyPair) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return k.cur.Load(), nil
		},
	}
}

// reloader rereads one set of certificate files.
type reloader struct {
	target string // metric label and log name
	reload func() error
}

// reloadOnHangup rereads every target's files each time the process gets
// SIGHUP, logging and counting each outcome (a failed reload keeps the files
// loaded before). It returns the function that stops it; the goroutine it
// starts has ended when that returns.
func reloadOnHangup(targets []reloader, reg prometheus.Registerer, log *zap.Logger) (stop func(), err error) {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dss_tls_reloads_total",
		Help: "Certificate reloads on SIGHUP by target (api, raft_peers) and result (ok, error).",
	}, []string{"target", "result"})
	if err := reg.Register(reloads); err != nil {
		return nil, err
	}
	for _, t := range targets {
		reloads.WithLabelValues(t.target, "ok")
		reloads.WithLabelValues(t.target, "error")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-hup:
			}
			for _, t := range targets {
				if err := t.reload(); err != nil {
					reloads.WithLabelValues(t.target, "error").Inc()
					log.Error("SIGHUP: certificate reload failed; the certificates loaded before stay in use",
						zap.String("target", t.target), zap.Error(err))
					continue
				}
				reloads.WithLabelValues(t.target, "ok").Inc()
				log.Info("SIGHUP: certificates reloaded", zap.String("target", t.target))
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(quit)
		wg.Wait()
	}, nil
}

// checkAPITLSFlags: the API's certificate and key come together.
func checkAPITLSFlags(cert, key string) error {
	if (cert == "") != (key == "") {
		return errors.New("--tls_cert and --tls_key go together: give both to serve the API over TLS, or neither")
	}
	return nil
}
