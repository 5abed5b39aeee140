package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

// The admin endpoint changes the Raft cluster's membership and shows the
// node's /status without a token. It is served on
// a Unix socket (--admin_socket, default <raft_data_dir>/admin.sock), never
// on the API listener, and takes no token: the socket file has mode 0600
// and by default lives in the node's data directory (0700), so only the
// node's own user (and root) can connect, who can already read and change
// the data anyway. `dssctl member` is its client.
//
//	GET    /members               the membership as of this node's applied index
//	POST   /members               {"id": 4, "raft_addr": "10.0.0.4:26001"}: add a voter;
//	                              with "learner": true, a learner (non-voting)
//	POST   /members/{id}/promote  make the learner id a voter
//	DELETE /members/{id}          remove a voter or a learner
//	GET    /status                the API's /status, without a token (curl --unix-socket)
//
// Every answer is JSON: adminMembersJSON (a change answers with the
// membership once the change is applied on this node), or {"message": ...}
// with 400 (bad request), 404 (no such member), 409 (the change conflicts
// with the membership: already a member, already a voter, removed before,
// the last member, a learner the leader sees behind its log) or 503 (the
// outcome is unknown: no quorum or leader within memberChangeTimeout, or the
// node is stopping; the change may still apply).

const (
	// adminSocketName is the admin socket's file name in the data directory.
	adminSocketName = "admin.sock"
	// memberChangeTimeout bounds one membership change: a change is one log
	// entry, committed within a few heartbeats when a quorum is up.
	memberChangeTimeout = 10 * time.Second
	// maxAdminBody bounds a request body (a member is a few dozen bytes).
	maxAdminBody = 64 << 10
)

// memberAdmin is what the admin endpoint needs of the consensus node
// (*consensus.Node; a fake in tests).
type memberAdmin interface {
	Status() consensus.Status
	Members() consensus.Membership
	AddMember(ctx context.Context, id uint64, addr string) error
	AddLearner(ctx context.Context, id uint64, addr string) error
	PromoteMember(ctx context.Context, id uint64) error
	RemoveMember(ctx context.Context, id uint64) error
	TransferLeadership(ctx context.Context, to uint64) error
}

// adminMembersJSON is the body of every successful admin answer.
type adminMembersJSON struct {
	Members  []adminMemberJSON `json:"members"` // the voters and learners, by ascending ID
	Removed  []uint64          `json:"removed"` // IDs removed from the cluster (never reused)
	LeaderID uint64            `json:"leader_id"`
	NodeID   uint64            `json:"node_id"` // the node that answered
}

type adminMemberJSON struct {
	ID uint64 `json:"id"`
	// RaftAddr is the address the member was added with or, for a member
	// the cluster was created with, this node's --raft_peers entry ("" if
	// it has none).
	RaftAddr string `json:"raft_addr"`
	// Learner: a non-voting member, which receives the log but does not
	// vote or count in the quorum (until promoted).
	Learner bool `json:"learner"`
}

// addMemberRequest is POST /members's body; pointers tell a missing field
// from a zero one.
type addMemberRequest struct {
	ID       *uint64 `json:"id"`
	RaftAddr *string `json:"raft_addr"`
	Learner  bool    `json:"learner"` // add a learner rather than a voter
}

type adminErrorJSON struct {
	Message string `json:"message"`
}

type adminHandler struct {
	node    memberAdmin
	peers   map[uint64]string // this node's --raft_peers
	timeout time.Duration
	log     *zap.Logger
}

// newAdminHandler serves the admin endpoints for node; timeout bounds each
// membership change.
func newAdminHandler(node memberAdmin, peers map[uint64]string, timeout time.Duration, log *zap.Logger) http.Handler {
	h := &adminHandler{node: node, peers: peers, timeout: timeout, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /members", func(w http.ResponseWriter, _ *http.Request) {
		writeAdminJSON(w, http.StatusOK, h.members())
	})
	mux.HandleFunc("POST /members", h.add)
	mux.HandleFunc("POST /members/{id}/promote", h.promote)
	mux.HandleFunc("DELETE /members/{id}", h.remove)
	mux.HandleFunc("POST /leader", h.transfer)
	return mux
}

// transferRequest is the body of POST /leader.
type transferRequest struct {
	To uint64 `json:"to"`
}

// transfer moves the leadership to another voter (dssctl leader transfer);
// it runs on the leader.
func (h *adminHandler) transfer(w http.ResponseWriter, r *http.Request) {
	var req transferRequest
	if err := decodeStrict(w, r, &req); err != nil {
		writeAdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	from := h.node.Status().Leader
	err := h.node.TransferLeadership(ctx, req.To)
	log := h.log.With(zap.Uint64("from", from), zap.Uint64("to", req.To))
	if err == nil {
		log.Info("leadership transferred")
		writeAdminJSON(w, http.StatusOK, h.members())
		return
	}
	var status int
	var msg string
	switch {
	case errors.Is(err, consensus.ErrNotLeader):
		status, msg = http.StatusConflict, fmt.Sprintf("this node is not the leader (node %d is): run the "+
			"transfer on the leader's machine", h.node.Status().Leader)
	case errors.Is(err, consensus.ErrTransferFailed):
		status, msg = http.StatusServiceUnavailable, strings.TrimPrefix(err.Error(), "consensus: ")+
			": is the target up and caught up? Check dssctl status and retry"
	default:
		status, msg = h.memberError(err, "transfer", req.To)
	}
	log.Warn("leadership transfer refused or failed", zap.Int("status", status), zap.Error(err))
	writeAdminError(w, status, msg)
}

// newAdminMux serves the admin socket: members (newAdminHandler's
// endpoints) and GET /status. On a node whose raft peers would be plaintext
// without --raft_insecure_plaintext_peers (a single node without TLS),
// adding a member is refused: the new member could only talk to it
// unauthenticated.
func newAdminMux(members, status http.Handler, plaintextPeers bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", members)
	mux.Handle("GET /status", status)
	if plaintextPeers {
		mux.HandleFunc("POST /members", func(w http.ResponseWriter, _ *http.Request) {
			writeAdminError(w, http.StatusConflict, "this node runs raft without mutual TLS, so a new member "+
				"could only talk to it unauthenticated: restart it with --raft_tls_cert, --raft_tls_key and "+
				"--raft_tls_ca ('dssctl certs' creates them) before adding members, or, only on a network where "+
				"every process is trusted, with --"+insecurePlaintextFlag)
		})
	}
	return mux
}

func (h *adminHandler) members() adminMembersJSON {
	m := h.node.Members()
	st := h.node.Status()
	out := adminMembersJSON{Members: []adminMemberJSON{}, Removed: []uint64{}, LeaderID: st.Leader, NodeID: st.ID}
	for _, mem := range m.Members {
		addr := mem.Addr
		if addr == "" {
			addr = h.peers[mem.ID]
		}
		out.Members = append(out.Members, adminMemberJSON{ID: mem.ID, RaftAddr: addr, Learner: mem.Learner})
	}
	out.Removed = append(out.Removed, m.Removed...)
	return out
}

func (h *adminHandler) add(w http.ResponseWriter, r *http.Request) {
	var req addMemberRequest
	if err := decodeStrict(w, r, &req); err != nil {
		writeAdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case req.ID == nil:
		writeAdminError(w, http.StatusBadRequest, `missing field "id": the new member's raft ID`)
		return
	case *req.ID == 0:
		writeAdminError(w, http.StatusBadRequest, `"id" must be a positive raft ID`)
		return
	case req.RaftAddr == nil || *req.RaftAddr == "":
		writeAdminError(w, http.StatusBadRequest, `missing field "raft_addr": the host:port the other members dial`)
		return
	}
	id, addr := *req.ID, *req.RaftAddr
	if req.Learner {
		h.change(w, r, "add", id, func(ctx context.Context) error { return h.node.AddLearner(ctx, id, addr) },
			zap.String("raft_addr", addr), zap.Bool("learner", true))
		return
	}
	h.change(w, r, "add", id, func(ctx context.Context) error { return h.node.AddMember(ctx, id, addr) },
		zap.String("raft_addr", addr))
}

func (h *adminHandler) promote(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	h.change(w, r, "promote", id, func(ctx context.Context) error { return h.node.PromoteMember(ctx, id) })
}

func (h *adminHandler) remove(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	h.change(w, r, "remove", id, func(ctx context.Context) error { return h.node.RemoveMember(ctx, id) })
}

// pathID parses the {id} of the request's path, or answers 400.
func pathID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	s := r.PathValue("id")
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("member ID %q: want a positive integer", s))
		return 0, false
	}
	return id, true
}

// change runs one membership change under the timeout and answers with the
// membership after it, or with the mapped error.
func (h *adminHandler) change(w http.ResponseWriter, r *http.Request, verb string, id uint64,
	do func(context.Context) error, fields ...zap.Field) {
	log := h.log.With(append(fields, zap.String("change", verb), zap.Uint64("member", id))...)
	if h.node.Status().Removed {
		writeAdminError(w, http.StatusServiceUnavailable,
			"this node was removed from the cluster: run membership changes on a current member")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	start := time.Now()
	err := do(ctx)
	if err == nil {
		log.Info("membership change applied", zap.Duration("took", time.Since(start)))
		writeAdminJSON(w, http.StatusOK, h.members())
		return
	}
	status, msg := h.memberError(err, verb, id)
	log.Warn("membership change refused or failed", zap.Int("status", status), zap.Error(err))
	writeAdminError(w, status, msg)
}

// memberError maps an error of AddMember, AddLearner, PromoteMember or
// RemoveMember (verb "add", "promote" or "remove") to an HTTP status and a
// message for the operator.
func (h *adminHandler) memberError(err error, verb string, id uint64) (int, string) {
	switch {
	case errors.Is(err, consensus.ErrInvalidMember):
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), "consensus: ")
	case errors.Is(err, consensus.ErrMemberRemoved) && verb == "remove":
		return http.StatusConflict, fmt.Sprintf("member %d was already removed from the cluster", id)
	case errors.Is(err, consensus.ErrMemberRemoved) && verb == "promote":
		return http.StatusConflict, fmt.Sprintf("member %d was removed from the cluster: it cannot be promoted", id)
	case errors.Is(err, consensus.ErrMemberRemoved):
		return http.StatusConflict, fmt.Sprintf("member %d was removed from the cluster and its ID cannot be reused: "+
			"add the node under a new ID", id)
	case errors.Is(err, consensus.ErrNoSuchMember):
		return http.StatusNotFound, fmt.Sprintf("%d is not a member of the cluster", id)
	case errors.Is(err, consensus.ErrMemberExists) && verb == "promote":
		return http.StatusConflict, fmt.Sprintf("%d is already a voter", id)
	case errors.Is(err, consensus.ErrMemberExists) && h.isLearner(id):
		return http.StatusConflict, fmt.Sprintf("%d is already a member of the cluster, as a learner: "+
			"promote it to make it a voter", id)
	case errors.Is(err, consensus.ErrMemberExists):
		return http.StatusConflict, fmt.Sprintf("%d is already a member of the cluster", id)
	case errors.Is(err, consensus.ErrLearnerBehind):
		return http.StatusConflict, strings.TrimPrefix(err.Error(), "consensus: ") + ": wait until its /readyz " +
			"answers 200 and its /status applied_index is near the others', then promote it again"
	case errors.Is(err, consensus.ErrLastMember):
		return http.StatusConflict, fmt.Sprintf("%d is the cluster's last voter: it cannot be removed", id)
	case errors.Is(err, consensus.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, fmt.Sprintf("the %s of member %d was not applied on this node within %v "+
			"(no quorum or no leader?); it may still be applied: list the members before retrying", verb, id, h.timeout)
	case errors.Is(err, consensus.ErrNoLeader):
		return http.StatusServiceUnavailable, fmt.Sprintf("this node knows no leader now, so the %s of member %d "+
			"was not proposed: retry in a few seconds", verb, id)
	case errors.Is(err, consensus.ErrStopped):
		return http.StatusServiceUnavailable, "the node is stopping; the outcome of the change is unknown: " +
			"list the members on another node"
	}
	return http.StatusInternalServerError, err.Error()
}

// isLearner reports whether id is a learner as of this node's applied index.
func (h *adminHandler) isLearner(id uint64) bool {
	for _, m := range h.node.Members().Members {
		if m.ID == id {
			return m.Learner
		}
	}
	return false
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data and bodies over maxAdminBody.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty request body: want a JSON object")
		}
		return fmt.Errorf("bad request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad request body: data after the JSON object")
	}
	return nil
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAdminError(w http.ResponseWriter, status int, msg string) {
	writeAdminJSON(w, status, adminErrorJSON{Message: msg})
}

// maxSocketPath is the longest path a Unix socket can be bound to on this
// platform (sun_path less its terminating NUL: 107 bytes on Linux, 103 on
// macOS and the BSDs).
var maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// checkSocketPath refuses a socket path the kernel cannot bind, with a
// message saying what to do, rather than the bind's "invalid argument".
func checkSocketPath(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("the admin socket path %s is %d bytes, more than the %d a Unix socket path may have: "+
			"pass a shorter --admin_socket (the default is <raft_data_dir>/%s)",
			path, len(path), maxSocketPath, adminSocketName)
	}
	return nil
}

// listenAdmin creates the admin socket at path with mode 0600, creating its
// directory (0700) when missing. A socket file left by a node that did not
// shut down cleanly is replaced; one that a live process answers on is not
// (two nodes on one data directory, or one --admin_socket), nor a file that
// is not a socket.
func listenAdmin(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
		}
		c, derr := net.DialTimeout("unix", path, 2*time.Second)
		if derr == nil {
			_ = c.Close()
			return nil, fmt.Errorf("another process serves the admin socket %s (is a node already running on "+
				"this data directory?); stop it, or pass another --admin_socket", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("the admin socket %s exists and cannot be checked: %w", path, derr)
		}
		// Stale: nothing listens on it.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing the stale admin socket: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The socket is created with the umask's mode; the connections that
	// could slip in before this chmod need access to its directory, which
	// for the default path is the 0700 data directory. Closing the
	// listener removes the file.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return ln, nil
}
