package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/scd/store/raftstore"
)

// The admin socket's online backup endpoint, the server side of `dssctl
// snapshot save`:
//
//	GET /snapshot   a backup file (raftstore.EncodeBackup) of this node's
//	                state at an applied index no lower than the cluster's
//	                commit index when the request arrived; 409 while
//	                another backup is being taken on this node
//
// The node keeps serving writes meanwhile: it only waits for a read barrier
// and freezes the state between two applies (raftstore.Store.Backup). A
// node that cannot confirm the commit index with a quorum answers 503.

const (
	// backupBarrierTimeout bounds the wait for the read barrier.
	backupBarrierTimeout = 30 * time.Second
	// backupWriteTimeout bounds sending the file (the admin server's write
	// timeout is for membership changes, far shorter).
	backupWriteTimeout = 10 * time.Minute
)

// backupTaker takes backups (*raftstore.Store; a fake in tests).
type backupTaker interface {
	Backup(ctx context.Context) ([]byte, raftstore.BackupHeader, error)
}

// withSnapshotEndpoint serves GET /snapshot from node and everything else
// from admin. node nil (no Raft store) leaves admin alone.
func withSnapshotEndpoint(admin http.Handler, node backupTaker, log *zap.Logger) http.Handler {
	if node == nil {
		return admin
	}
	mux := http.NewServeMux()
	mux.Handle("/", admin)
	// One backup at a time: each holds a copy of the whole state in memory.
	busy := make(chan struct{}, 1)
	mux.HandleFunc("GET /snapshot", func(w http.ResponseWriter, r *http.Request) {
		select {
		case busy <- struct{}{}:
			defer func() { <-busy }()
		default:
			writeAdminError(w, http.StatusConflict, "another backup is being taken on this node: retry when it is done")
			return
		}
		// Before the wait: the admin server's own write deadline (set when
		// the request arrived) is shorter than the barrier's timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupBarrierTimeout + backupWriteTimeout))
		ctx, cancel := context.WithTimeout(r.Context(), backupBarrierTimeout)
		defer cancel()
		began := time.Now()
		file, h, err := node.Backup(ctx)
		if err != nil {
			log.Warn("online backup failed", zap.Error(err))
			writeAdminError(w, http.StatusServiceUnavailable, "no backup taken: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		if _, err := w.Write(file); err != nil {
			log.Warn("sending the online backup", zap.Error(err))
			return
		}
		log.Info("online backup sent", zap.Uint64("index", h.Index), zap.Int("bytes", len(file)),
			zap.Duration("took", time.Since(began)))
	})
	return mux
}

// backupNode is be's Raft store as a backupTaker, nil without one (a nil
// *raftstore.Store in the interface would not compare equal to nil).
func backupNode(be *backend) backupTaker {
	if be.raft == nil {
		return nil
	}
	return be.raft
}
