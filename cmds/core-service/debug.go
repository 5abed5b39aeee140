package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// Debug-only features, all off by default:
//
//   - --pprof_addr serves net/http/pprof on its own listener (never on the
//     API's address: profiles reveal internals and need no token), e.g.
//     go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
//   - --raft_reads_via_log makes every read also cost a Raft log entry, as
//     in a DSS that proposes its reads; it exists so that benchmarks can
//     measure what ReadIndex reads save, in the same run.

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

// readProbeID names the operational intent that readsViaLog's log entry
// asks to delete. No client can create it (IDs are UUIDs; this one is the
// nil UUID, which parsing refuses), so the entry never changes the state.
const readProbeID models.ID = "00000000-0000-0000-0000-000000000000"

// readsViaLog is the --raft_reads_via_log store: before each read-only
// operation it commits one log entry (a delete of readProbeID, which every
// replica applies as a lookup answering 404) and only then reads. The read
// thus waits for a proposal, its replication, a WAL fsync on a majority and
// its application, like a read proposed through the log; it does not charge
// the followers for executing the query itself, so it flatters the via-log
// design a little.
type readsViaLog struct {
	scd.Store
}

func (s readsViaLog) Transact(ctx context.Context, op scd.Operation) (any, error) {
	if op != nil && op.ReadOnly() {
		_, err := s.Store.Transact(ctx, &scd.DeleteOperationalIntent{ID: readProbeID, OVN: "read-via-log"})
		var me *models.Error
		if !errors.As(err, &me) || me.Code != models.CodeNotFound {
			if err == nil {
				err = models.Errorf(models.CodeInternal, "read probe %s unexpectedly exists", readProbeID)
			}
			return nil, err
		}
	}
	return s.Store.Transact(ctx, op)
}
