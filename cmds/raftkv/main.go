// Command raftkv is a demo key-value service on the Raft store: every node
// serves PUT/GET/DELETE /v1/data/{key}; writes go through the log, reads
// through a ReadIndex barrier, on any node. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/raftstore/kv"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

const maxValueBytes = 1 << 20

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		os.Exit(1)
	}
}

// parsePeers parses "1=host:port,2=host:port".
func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("peer %q: want id=host:port", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("peer %q: bad raft ID", part)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("peer ID %d given twice", id)
		}
		peers[id] = addr
	}
	return peers, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	id := fs.Uint64("id", 1, "this node's raft ID")
	peersFlag := fs.String("peers", "", "initial members, id=host:port,... (this node included); empty: a 1-node cluster")
	raftAddr := fs.String("raft_addr", "", "listen address for raft traffic (default: this node's address in --peers)")
	httpAddr := fs.String("http_addr", "127.0.0.1:8080", "listen address for the HTTP API")
	dataDir := fs.String("data_dir", "", "directory for the WAL and snapshots (required)")
	tick := fs.Duration("tick_interval", 100*time.Millisecond, "raft tick")
	electionTicks := fs.Int("election_ticks", 10, "election timeout in ticks")
	snapEntries := fs.Uint64("snapshot_entries", 10000, "applied entries between snapshots")
	timeout := fs.Duration("request_timeout", 5*time.Second, "per-request deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("--data_dir is required")
	}
	peers, err := parsePeers(*peersFlag)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		addr := *raftAddr
		if addr == "" {
			addr = "127.0.0.1:26001"
		}
		peers = map[uint64]string{*id: addr}
	}
	if *raftAddr == "" {
		*raftAddr = peers[*id]
	}
	lg, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()

	sm := kv.New()
	st, err := raftstore.Open(raftstore.Config{
		Consensus: consensus.Config{
			ID:              *id,
			Peers:           peers,
			DataDir:         *dataDir,
			TickInterval:    *tick,
			ElectionTicks:   *electionTicks,
			SnapshotEntries: *snapEntries,
			Logger:          lg,
		},
		StateMachine: sm,
		NewTransport: func(h transport.Handler) (transport.Transport, error) {
			return grpctransport.NewGRPC(grpctransport.GRPCConfig{
				ID: *id, ListenAddr: *raftAddr, Handler: h, Logger: lg,
			})
		},
	})
	if err != nil {
		return err
	}
	defer st.Stop()

	srv := &http.Server{
		Addr:              *httpAddr,
		Handler:           newHandler(st, sm, *timeout),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	lg.Info("raftkv serving", zap.String("http", *httpAddr), zap.String("raft", *raftAddr))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		lg.Info("shutting down", zap.Stringer("signal", s))
	case <-st.Done():
		lg.Error("raft node stopped", zap.Error(st.Err()))
	case err := <-errc:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

func newHandler(st *raftstore.Store, sm *kv.Machine, timeout time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/data/{key}", func(w http.ResponseWriter, r *http.Request) {
		val, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueBytes))
		if err != nil {
			http.Error(w, "body too large or unreadable", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if _, err := st.Transact(ctx, kv.EncodePut(r.PathValue("key"), val)); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/data/{key}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		res, err := st.Transact(ctx, kv.EncodeDelete(r.PathValue("key")))
		if err != nil {
			writeErr(w, err)
			return
		}
		if existed, _ := res.(bool); !existed {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/data/{key}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		type got struct {
			v  []byte
			ok bool
		}
		res, err := st.Read(ctx, func() (any, error) {
			v, ok := sm.Get(r.PathValue("key"))
			return got{v, ok}, nil
		})
		if err != nil {
			writeErr(w, err)
			return
		}
		g := res.(got)
		if !g.ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(g.v)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st.Status())
	})
	return mux
}

// writeErr maps store errors to HTTP: an unknown outcome or a missing quorum
// is 503 (retry may be needed), never a definite failure.
func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, raftstore.ErrIndeterminate), errors.Is(err, raftstore.ErrNoQuorum),
		errors.Is(err, raftstore.ErrStopped):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
