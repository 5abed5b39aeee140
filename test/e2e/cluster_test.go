package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/peercerts"
	"github.com/raftdss/dss/pkg/auth"
)

// Timing of the test clusters. Short raft ticks keep elections (and so the
// tests) fast; the snapshot settings are small so that log compaction and
// snapshot transfer happen within a test, not only after 10k writes.
const (
	tickInterval    = 20 * time.Millisecond
	electionTicks   = 15 // election timeout 300–600 ms: tolerant of a busy 2-core machine
	heartbeatTicks  = 1
	snapshotEntries = 200
	catchupEntries  = 50
	// serverTimeout bounds a request inside the node; clientTimeout is
	// larger, so a client timeout means the node never answered: a hang.
	serverTimeout = 5 * time.Second
	clientTimeout = 8 * time.Second

	readyTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second // core-service's graceful shutdown allows 15 s
	// logTailLines of every node log are printed when a test fails.
	logTailLines = 60
)

// Status is a node's GET /status.
type Status struct {
	NodeID       uint64 `json:"node_id"`
	LeaderID     uint64 `json:"leader_id"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	// StateHash is kept raw so the comparison does not depend on whether
	// the node renders it as a hex string or otherwise.
	StateHash json.RawMessage `json:"state_hash"`
}

func (s Status) String() string {
	return fmt.Sprintf("{node %d leader %d term %d applied %d commit %d hash %s}",
		s.NodeID, s.LeaderID, s.Term, s.AppliedIndex, s.CommitIndex, s.StateHash)
}

// Node is one core-service process of a Cluster. Its addresses, data
// directory and flags stay the same across restarts.
type Node struct {
	Index    int    // position in Cluster.Nodes
	ID       uint64 // raft ID: Index+1
	HTTPAddr string
	RaftAddr string
	DataDir  string
	LogPath  string
	// Flags are appended to this node's flags only, after the cluster's
	// (a repeated flag's last value wins).
	Flags []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process exited
	exitErr  error         // cmd.Wait's result, valid after done
	logStart int64         // offset in LogPath where the current process's output starts
}

// URL is the node's HTTP base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr }

// running reports whether the node's process is alive.
func (n *Node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Options select how a Cluster's nodes are configured.
type Options struct {
	// Nodes is the cluster size (default 3).
	Nodes int
	// Dev runs the nodes with --dev and a shared --dev_dir, as a developer
	// would. Without it they verify tokens with --public_key_files (the
	// same key) and --accepted_jwt_audiences, as in production; that also
	// leaves http:// base URLs rejected, which --dev allows.
	Dev bool
	// ExtraFlags are appended to every node's flags.
	ExtraFlags []string
	// DatastoreURL, when set, runs every node on the SQL store of this
	// PostgreSQL database (with --migrate, so the nodes also race to
	// migrate it) instead of the Raft store: the nodes are independent
	// processes sharing one database, with no raft flags and no state hash.
	DatastoreURL string
	// PlaintextPeers runs raft without mutual TLS, with the override
	// --raft_insecure_plaintext_peers (no certificates are made).
	PlaintextPeers bool
	// Prepare, when set, runs once the nodes' addresses, data directories
	// and certificates are chosen, before any node starts: to write their
	// data directories (a restore, say).
	Prepare func(c *Cluster)
}

// Cluster is a set of core-service processes forming one Raft group, or,
// with Options.DatastoreURL, sharing one PostgreSQL database.
type Cluster struct {
	t      *testing.T
	opts   Options
	Nodes  []*Node
	DevDir string // holds the signing key (dev-key.pem) every node accepts
	// PKIDir holds the raft peer CA and every node's certificate
	// (peercerts, as `dssctl certs` makes them): raft traffic is mutual TLS.
	PKIDir string
	Key    *rsa.PrivateKey
	HTTP   *http.Client
	token  string
	places atomic.Int64 // next location handed out by nextPlace
}

// NewCluster starts the nodes and waits until all are ready. Every process
// is killed when the test ends, however it ends, and the tails of the node
// logs are printed if it failed.
func NewCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	n := opts.Nodes
	dir := t.TempDir()
	c := &Cluster{
		t:      t,
		opts:   opts,
		DevDir: filepath.Join(dir, "dev"),
		PKIDir: filepath.Join(dir, "pki"),
		HTTP:   &http.Client{Timeout: clientTimeout},
	}
	// Create the dev key before any node starts, so the test can mint
	// tokens without racing the nodes for it (they load the same file).
	key, err := auth.LoadOrCreateDevKey(c.DevDir)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = key
	if c.token, err = auth.MintToken(key, auth.TokenOptions{
		Subject:  "e2e-uss",
		Audience: auth.DefaultDevAudience,
		Scopes:   []string{auth.ScopeStrategicCoordination},
	}); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2*n)
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{
			Index:    i,
			ID:       uint64(i + 1),
			HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i])),
			RaftAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i+1])),
			DataDir:  filepath.Join(dir, fmt.Sprintf("node%d", i+1), "data"),
			LogPath:  filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)),
		})
	}
	if opts.DatastoreURL == "" && !opts.PlaintextPeers {
		c.makeCerts(c.Nodes...)
	}
	// Cleanups run last-in first-out: the processes are killed first, then
	// the logs (complete by then) are checked and printed.
	t.Cleanup(c.checkLogs)
	t.Cleanup(c.killAll)
	if opts.Prepare != nil {
		opts.Prepare(c)
	}
	for i := range c.Nodes {
		c.Start(i)
	}
	c.WaitAllReady()
	return c
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All listeners are held until every port is picked so none repeats; a
// port may still be taken by someone else before the node binds it, which
// shows as a node failing to start with "address already in use".
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// makeCerts creates the raft peer certificates of nodes in c.PKIDir (and
// the CA, the first time).
func (c *Cluster) makeCerts(nodes ...*Node) {
	c.t.Helper()
	ids := make([]uint64, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	if _, err := peercerts.Create(c.PKIDir, ids, time.Hour); err != nil {
		c.t.Fatal(err)
	}
}

// peersFlag is the --raft_peers value shared by every node.
func (c *Cluster) peersFlag() string {
	parts := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		parts[i] = fmt.Sprintf("%d=%s", n.ID, n.RaftAddr)
	}
	return strings.Join(parts, ",")
}

// args are node n's command-line flags: the same on every (re)start.
func (c *Cluster) args(n *Node) []string {
	args := []string{"--addr", n.HTTPAddr}
	if c.opts.Dev {
		args = append(args, "--dev", "--dev_dir", c.DevDir)
	} else {
		args = append(args,
			"--public_key_files", filepath.Join(c.DevDir, auth.DevPubKeyFile),
			"--accepted_jwt_audiences", auth.DefaultDevAudience)
	}
	if c.opts.DatastoreURL != "" {
		args = append(args,
			"--datastore_url", c.opts.DatastoreURL,
			"--migrate",
			"--server_timeout", serverTimeout.String(),
			"--log_level", "info",
		)
		args = append(args, c.opts.ExtraFlags...)
		return append(args, n.Flags...)
	}
	args = append(args,
		"--raftstore",
		"--raft_node_id", strconv.FormatUint(n.ID, 10),
		"--raft_peers", c.peersFlag(),
		"--raft_addr", n.RaftAddr,
		"--raft_data_dir", n.DataDir,
	)
	if c.opts.PlaintextPeers {
		args = append(args, "--raft_insecure_plaintext_peers")
	} else {
		args = append(args, peercerts.Flags(c.PKIDir, n.ID)...)
	}
	args = append(args,
		"--raft_tick_interval", tickInterval.String(),
		"--raft_election_ticks", strconv.Itoa(electionTicks),
		"--raft_heartbeat_ticks", strconv.Itoa(heartbeatTicks),
		"--raft_snapshot_entries", strconv.Itoa(snapshotEntries),
		"--raft_catchup_entries", strconv.Itoa(catchupEntries),
		"--server_timeout", serverTimeout.String(),
		// info: the consensus layer logs snapshot installation there.
		"--log_level", "info",
	)
	args = append(args, c.opts.ExtraFlags...)
	return append(args, n.Flags...)
}

// Start starts node i's process (the first start or a restart); it does
// not wait for readiness.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	if n.running() {
		c.t.Fatalf("node %d: start while running", n.ID)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	off, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== e2e: starting node %d at %s\n", n.ID, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(coreServiceBin, c.args(n)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so a kill reaches anything it spawns.
		Setpgid: true,
		// If the test binary dies without running cleanups (a -timeout
		// panic, a kill), the kernel kills the node too: nothing leaks on
		// the shared machine. Go only retires OS threads that locked
		// themselves, so the forking thread outlives the node in practice.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("node %d: starting %s: %v", n.ID, coreServiceBin, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.exitErr, n.logStart = cmd, done, nil, off
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
}

// RestartNode starts a stopped or killed node again with the same data
// directory and flags, and waits until it is ready.
func (c *Cluster) RestartNode(i int) {
	c.t.Helper()
	c.Start(i)
	c.WaitReady(i)
}

// signal sends sig to node i's process group and waits up to timeout for
// the process to exit; it returns the process's exit error.
func (c *Cluster) signal(i int, sig syscall.Signal, timeout time.Duration) error {
	c.t.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("node %d was never started", n.ID)
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		c.t.Fatalf("node %d did not exit within %v of %v; killed", n.ID, timeout, sig)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// StopNode stops node i gracefully (SIGTERM) and fails the test unless it
// exits with status 0 in time.
func (c *Cluster) StopNode(i int) {
	c.t.Helper()
	// The client's pool may hold connections it dialled but never used
	// (concurrent requests race a dial against a connection coming back);
	// the node's graceful shutdown waits up to 5 s for such a connection's
	// first request. Closing idle connections keeps the stop quick.
	c.HTTP.CloseIdleConnections()
	start := time.Now()
	if err := c.signal(i, syscall.SIGTERM, stopTimeout); err != nil {
		c.t.Fatalf("node %d: exit after SIGTERM: %v (want a clean exit 0)", c.Nodes[i].ID, err)
	}
	c.t.Logf("node %d stopped (SIGTERM) in %v", c.Nodes[i].ID, time.Since(start).Round(time.Millisecond))
}

// KillNode kills node i with SIGKILL (kill -9): no shutdown code runs.
func (c *Cluster) KillNode(i int) {
	c.t.Helper()
	_ = c.signal(i, syscall.SIGKILL, stopTimeout)
}

// killAll SIGKILLs every running node and waits for them (cleanup).
func (c *Cluster) killAll() {
	for _, n := range c.Nodes {
		n.mu.Lock()
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	c.HTTP.CloseIdleConnections()
}

// checkLogs fails the test if a node reported a data race (a -e2e.race
// build keeps running after one), a panic or a fatal runtime error, even
// one that a later kill hid; then, if the test failed, it prints the end of
// every node's log.
func (c *Cluster) checkLogs() {
	for _, n := range c.Nodes {
		data, err := os.ReadFile(n.LogPath)
		if err != nil {
			continue // never started
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "WARNING: DATA RACE") || strings.HasPrefix(line, "panic: ") ||
				strings.HasPrefix(line, "fatal error: ") {
				c.t.Errorf("node %d's log has %q (%s)", n.ID, line, n.LogPath)
				break
			}
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, n := range c.Nodes {
		c.t.Logf("---- last %d lines of node %d's log (%s):\n%s", logTailLines, n.ID, n.LogPath,
			tailLines(n.LogPath, logTailLines))
	}
}

// tailLines returns the last n lines of the file at path.
func tailLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogSinceStart returns what node i's current process wrote so far.
func (c *Cluster) LogSinceStart(i int) string {
	c.t.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	off := n.logStart
	n.mu.Unlock()
	data, err := os.ReadFile(n.LogPath)
	if err != nil {
		c.t.Fatal(err)
	}
	if off > int64(len(data)) {
		return ""
	}
	return string(data[off:])
}

// exitedErr reports, for a node that should be running, why it is not.
func (c *Cluster) exitedErr(i int) error {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return errors.New("never started")
	}
	select {
	case <-n.done:
		return fmt.Errorf("%w: process exited: %v", errPermanent, n.exitErr)
	default:
		return nil
	}
}

// Running lists the indexes of the nodes whose processes are alive.
func (c *Cluster) Running() []int {
	var out []int
	for i, n := range c.Nodes {
		if n.running() {
			out = append(out, i)
		}
	}
	return out
}

// get sends a GET with a short timeout (polling must not stall on one
// unresponsive node).
func (c *Cluster) get(ctx context.Context, i int, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Nodes[i].URL()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	// /status needs a token; the other endpoints ignore it.
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// Status fetches node i's /status.
func (c *Cluster) Status(i int) (Status, error) {
	code, body, err := c.get(context.Background(), i, "/status")
	if err != nil {
		return Status{}, err
	}
	if code != http.StatusOK {
		return Status{}, fmt.Errorf("/status: %d %s", code, body)
	}
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		return Status{}, fmt.Errorf("/status: %v: %s", err, body)
	}
	return s, nil
}

// errPermanent marks an error after which polling is pointless (a node
// process that exited will not become ready).
var errPermanent = errors.New("permanent")

// poll calls f every 20 ms until it returns true or timeout passes; the
// last error f reported is returned on timeout, or at once if it wraps
// errPermanent.
func poll(timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if errors.Is(err, errPermanent) {
			return err
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				last = errors.New("condition not met")
			}
			return fmt.Errorf("after %v: %w", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitReady waits until node i's /readyz answers 200: it knows a leader and
// has applied what it knows to be committed.
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	err := poll(readyTimeout, func() (bool, error) {
		if err := c.exitedErr(i); err != nil {
			return false, err
		}
		code, body, err := c.get(context.Background(), i, "/readyz")
		if err != nil {
			return false, err
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("/readyz: %d %s", code, bytes.TrimSpace(body))
		}
		return true, nil
	})
	if err != nil {
		c.t.Fatalf("node %d not ready: %v", c.Nodes[i].ID, err)
	}
}

// WaitAllReady waits for every running node.
func (c *Cluster) WaitAllReady() {
	c.t.Helper()
	for _, i := range c.Running() {
		c.WaitReady(i)
	}
}

// Leader returns the index of the leader: a running node that says it
// leads, with a majority of the running nodes (itself included) agreeing.
func (c *Cluster) Leader() int {
	c.t.Helper()
	leader := -1
	err := poll(readyTimeout, func() (bool, error) {
		votes := map[uint64]int{}
		self := map[uint64]bool{}
		running := c.Running()
		for _, i := range running {
			s, err := c.Status(i)
			if err != nil {
				continue
			}
			if s.NodeID != c.Nodes[i].ID {
				return false, fmt.Errorf("node at index %d reports node_id %d, want %d", i, s.NodeID, c.Nodes[i].ID)
			}
			if s.LeaderID != 0 {
				votes[s.LeaderID]++
			}
			if s.LeaderID == s.NodeID {
				self[s.NodeID] = true
			}
		}
		for id := range self {
			if id > uint64(len(c.Nodes)) {
				return false, fmt.Errorf("a node claims leadership with unknown raft ID %d", id)
			}
			if 2*votes[id] > len(running) && c.Nodes[id-1].running() {
				leader = int(id - 1)
				return true, nil
			}
		}
		return false, fmt.Errorf("no agreed leader among running nodes %v (votes %v)", running, votes)
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return leader
}

// Follower returns the index of a running node that is not the leader.
func (c *Cluster) Follower() int {
	c.t.Helper()
	l := c.Leader()
	for _, i := range c.Running() {
		if i != l {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// WaitEqualHashes waits until every running node reports the same non-zero
// applied index and the same state hash, i.e. the replicas converged to one
// state. Call it when no writes are in flight.
func (c *Cluster) WaitEqualHashes() Status {
	c.t.Helper()
	var agreed Status
	var last []string
	err := poll(20*time.Second, func() (bool, error) {
		last = last[:0]
		var first *Status
		same := true
		for _, i := range c.Running() {
			s, err := c.Status(i)
			if err != nil {
				return false, fmt.Errorf("node %d: %w", c.Nodes[i].ID, err)
			}
			last = append(last, s.String())
			if first == nil {
				first = &s
				continue
			}
			if s.AppliedIndex != first.AppliedIndex || !bytes.Equal(s.StateHash, first.StateHash) {
				same = false
			}
		}
		if first == nil {
			return false, errors.New("no running node")
		}
		if first.AppliedIndex == 0 || len(first.StateHash) == 0 || string(first.StateHash) == `""` {
			return false, fmt.Errorf("empty applied index or hash: %v", last)
		}
		if !same {
			return false, fmt.Errorf("nodes differ: %v", last)
		}
		agreed = *first
		return true, nil
	})
	if err != nil {
		c.t.Fatalf("state hashes never converged: %v", err)
	}
	c.t.Logf("nodes %v converged: applied index %d, state hash %s", nodeIDs(c.Running()), agreed.AppliedIndex, agreed.StateHash)
	return agreed
}

// logContains reports whether any line of log contains all of words.
func logContains(log string, words ...string) bool {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
next:
	for sc.Scan() {
		for _, w := range words {
			if !strings.Contains(sc.Text(), w) {
				continue next
			}
		}
		return true
	}
	return false
}
