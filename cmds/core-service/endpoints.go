package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// newMux serves the operational endpoints beside the DSS API (which answers
// everything else, /healthy included):
//
//	/livez    the process is up (no store access)
//	/readyz   the store can serve: for Raft, this node is a member, a leader
//	          is known and this node has applied everything it knows to be
//	          committed; for SQL, a pooled connection answers within
//	          readyTimeout
//	/metrics  Prometheus: the store's metrics (registry reg) and the default
//	          registry's, where etcd's WAL registers its fsync metrics
//	/status   JSON view of the node (Raft: IDs, indexes, state hash, removed)
//
// readyTimeout bounds /readyz's database ping: a probe must get an answer
// well within a typical probe timeout, and a database (or pool) slower than
// this is not ready to serve requests either.
const readyTimeout = 2 * time.Second

// newMux: a request reaches an operational endpoint only when its escaped path is
// exactly one of opsPaths; everything else goes to the API handler, whose
// router answers every non-canonical path with its plain 404. Go's ServeMux
// is kept for the four endpoints (it answers a wrong method with 405) but
// never sees another path: given "/dss/v1/../livez" or "//livez" it would
// answer 307 with the cleaned path as Location, and it decodes "/liv%65z" to
// "/livez".
func newMux(api http.Handler, be *backend, kind storeKind, reg *prometheus.Registry, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if be.ping != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := be.ping(ctx); err != nil {
				// The cause goes to the log only: /readyz needs no token,
				// and database errors name users and databases.
				log.Warn("not ready: the database does not answer", zap.Error(err))
				writeText(w, http.StatusServiceUnavailable, "not ready: the database does not answer")
				return
			}
			writeText(w, http.StatusOK, "ok")
			return
		}
		if be.raft == nil {
			writeText(w, http.StatusOK, "ok")
			return
		}
		st := be.raft.Status()
		switch {
		case st.Removed:
			writeText(w, http.StatusServiceUnavailable, "not ready: this node was removed from the cluster")
		case st.Leader == 0:
			writeText(w, http.StatusServiceUnavailable, "not ready: no raft leader known")
		case st.Applied < st.Commit:
			writeText(w, http.StatusServiceUnavailable,
				fmt.Sprintf("not ready: applied index %d is behind commit index %d", st.Applied, st.Commit))
		default:
			writeText(w, http.StatusOK, "ok")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, reg},
		promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(nodeStatus(be, kind))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opsPaths[r.URL.EscapedPath()] {
			mux.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// opsPaths are the paths newMux serves itself, in their only (canonical,
// unescaped) spelling.
var opsPaths = map[string]bool{"/livez": true, "/readyz": true, "/metrics": true, "/status": true}

// statusJSON is the body of /status. The Raft fields are present exactly
// when the node runs the Raft store, zeros included (leader_id 0: no leader
// known).
type statusJSON struct {
	Store string `json:"store"`
	*raftStatusJSON
}

type raftStatusJSON struct {
	NodeID       uint64 `json:"node_id"`
	LeaderID     uint64 `json:"leader_id"`
	IsLeader     bool   `json:"is_leader"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	// StateHash is the hex SHA-256 of the canonical state at AppliedIndex:
	// nodes that report the same applied_index must report the same hash.
	StateHash string `json:"state_hash"`
	// Removed: this node was removed from the cluster; it serves nothing
	// any more and must be stopped.
	Removed bool `json:"removed"`
}

func nodeStatus(be *backend, kind storeKind) statusJSON {
	out := statusJSON{Store: kind.String()}
	if be.raft == nil {
		return out
	}
	// The hash and its index are read together; the rest is read after, so
	// commit_index ≥ applied_index holds in the answer.
	applied, hash := be.raft.StateHash()
	st := be.raft.Status()
	out.raftStatusJSON = &raftStatusJSON{NodeID: st.ID, LeaderID: st.Leader, IsLeader: st.IsLeader, Term: st.Term,
		AppliedIndex: applied, CommitIndex: max(st.Commit, applied), StateHash: hex.EncodeToString(hash[:]),
		Removed: st.Removed}
	return out
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}
