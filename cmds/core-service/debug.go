package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"
)

// Debug-only features, all off by default:
//
//   - --pprof_addr serves net/http/pprof on its own listener (never on the
//     API's address: profiles reveal internals and need no token), e.g.
//     go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
//   - --raft_reads_via_log sends every read through the Raft log
//     (raftstore.Config.ReadsViaLog): it is proposed as a log entry,
//     executed by every replica when applied, and answered with the result
//     of the proposing node's own apply, as in a DSS that proposes its
//     reads; it exists so that benchmarks can measure what ReadIndex reads
//     save, in the same run. Every node of a cluster must run with the same
//     setting: a node without it applies read entries as failed operations
//     (raftstore.ErrBadOperation: the state is unchanged, as a read leaves
//     it).

// startPprof serves the pprof handlers on addr until stop is called. It returns
// once the listener is open, so a busy port fails the start.
func startPprof(addr string, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", zap.Error(err))
		}
	}()
	log.Warn("serving pprof (debug only; do not expose)", zap.String("addr", ln.Addr().String()))
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}
