package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// `dssctl member` changes a Raft cluster's membership through one running
// node's admin socket (core-service --admin_socket, by default
// <raft_data_dir>/admin.sock): it must run on that node's machine, as a
// user who may open the socket (mode 0600: the node's own user or root).

// adminSocketName is the admin socket's name in a node's data directory
// (core-service's default --admin_socket).
const adminSocketName = "admin.sock"

// memberRequestTimeout bounds one request; the node itself gives a change
// 10 s to be applied before answering 503.
const memberRequestTimeout = 30 * time.Second

// adminMembers is the node's answer to every admin request that succeeds.
type adminMembers struct {
	Members []struct {
		ID       uint64 `json:"id"`
		RaftAddr string `json:"raft_addr"`
		Learner  bool   `json:"learner"`
	} `json:"members"`
	Removed  []uint64 `json:"removed"`
	LeaderID uint64   `json:"leader_id"`
	NodeID   uint64   `json:"node_id"`
}

func memberUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dssctl member list    (--raft_data_dir DIR | --admin_socket PATH)
       dssctl member add     (--raft_data_dir DIR | --admin_socket PATH) --id N --raft_addr HOST:PORT [--learner]
       dssctl member promote (--raft_data_dir DIR | --admin_socket PATH) --id N
       dssctl member remove  (--raft_data_dir DIR | --admin_socket PATH) --id N

Lists or changes the members (voters and learners) of a Raft cluster through the admin socket
of one running node, on that node's machine: DIR/admin.sock for the node's --raft_data_dir DIR,
or the node's --admin_socket. Changes go through the cluster's log: any current member may
take them, and each answers once applied on that node, with the new membership.

  list     the members and their roles, the removed IDs (never reused) and the leader
  add      add a voter, or with --learner a learner (it receives the log but does not vote or
           count in the quorum), with a NEW raft ID; then start that node on an empty data
           directory with --raft_node_id N --raft_join and --raft_peers naming the members and itself
  promote  make a learner a voter, once it has caught up (its /readyz answers 200 and its
           /status applied_index is near the others')
  remove   remove a voter or a learner; stop its node: its data directory and ID must not be
           used again

To grow the cluster: add the new node with --learner, start it, wait until it has caught up,
then promote it. The quorum is raised only by the promotion, once the new node can take part.
To replace a lost node in a cluster of three: remove it first, then add the new node under a
new ID (the quorum stays 2 of the 3 members while the new node catches up).

Run "dssctl member SUBCOMMAND -h" for its flags.
`)
}

// runMember implements `dssctl member list|add|remove`.
func runMember(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "dssctl member: a subcommand is required (list, add, promote or remove)")
		fmt.Fprintln(stderr)
		memberUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		memberUsage(stdout)
		return 0
	case "list":
		return runMemberList(args[1:], stdout, stderr)
	case "add":
		return runMemberAdd(args[1:], stdout, stderr)
	case "promote":
		return runMemberPromote(args[1:], stdout, stderr)
	case "remove":
		return runMemberRemove(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "dssctl member: unknown subcommand %q\n\n", args[0])
	memberUsage(stderr)
	return 2
}

// adminTarget is the node a member subcommand talks to.
type adminTarget struct {
	dataDir, socket string
}

func (a *adminTarget) register(fs *flag.FlagSet) {
	fs.StringVar(&a.dataDir, "raft_data_dir", "", "the node's --raft_data_dir: its admin socket is `DIR`/"+adminSocketName)
	fs.StringVar(&a.socket, "admin_socket", "", "the node's --admin_socket `PATH` (when it was set)")
}

// flag is the flag that names the socket, for hints about the next command.
func (a *adminTarget) flag() string {
	if a.socket != "" {
		return "--admin_socket " + a.socket
	}
	return "--raft_data_dir " + a.dataDir
}

// path returns the socket path, or a usage error.
func (a *adminTarget) path() (string, error) {
	switch {
	case a.dataDir != "" && a.socket != "":
		return "", errors.New("give either --raft_data_dir or --admin_socket, not both")
	case a.socket != "":
		return a.socket, nil
	case a.dataDir != "":
		return filepath.Join(a.dataDir, adminSocketName), nil
	}
	return "", errors.New("--raft_data_dir or --admin_socket is required (the node's admin socket)")
}

func newMemberFlagSet(sub, synopsis, about string, stderr io.Writer) (*flag.FlagSet, *adminTarget) {
	fs := flag.NewFlagSet("member "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	t := &adminTarget{}
	t.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dssctl member %s\n\n%s\n\nflags:\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs, t
}

func runMemberList(args []string, stdout, stderr io.Writer) int {
	fs, target := newMemberFlagSet("list", "list (--raft_data_dir DIR | --admin_socket PATH)",
		"Prints the cluster's members as the node knows them (as of its applied index), each a voter or a\n"+
			"learner, the IDs removed from the cluster, and the leader.",
		stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	path, err := target.path()
	if err != nil {
		return usageErrorf(fs, stderr, "member list")("%v", err)
	}
	ms, err := adminRequest(path, http.MethodGet, "/members", nil)
	if err != nil {
		return fail(stderr, "member list", err)
	}
	printMembers(stdout, ms)
	return 0
}

func runMemberAdd(args []string, stdout, stderr io.Writer) int {
	fs, target := newMemberFlagSet("add", "add (--raft_data_dir DIR | --admin_socket PATH) --id N --raft_addr HOST:PORT [--learner]",
		"Adds a voter, or with --learner a learner, with raft ID N that the other members dial at\n"+
			"HOST:PORT. N must be new: an ID is never reused, even after its member was removed. Once added,\n"+
			"start the new node on an empty data directory with --raft_node_id N --raft_join, and --raft_peers\n"+
			"naming the current members and itself.\n\n"+
			"A voter counts in the quorum at once, before it has caught up: add one only while the others have\n"+
			"a quorum without it. A learner receives the log but does not vote or count in the quorum: to grow\n"+
			"the cluster, add the node as a learner and promote it (dssctl member promote) once it has caught up.",
		stderr)
	id := fs.Uint64("id", 0, "raft ID of the new member (required; never used before in this cluster)")
	raftAddr := fs.String("raft_addr", "", "`host:port` the other members dial the new member's raft transport at (required)")
	learner := fs.Bool("learner", false, "add a learner (non-voting; promote it once it has caught up) rather than a voter")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "member add")
	path, err := target.path()
	if err != nil {
		return usageErr("%v", err)
	}
	if *id == 0 {
		return usageErr("--id is required (a positive raft ID)")
	}
	if *raftAddr == "" {
		return usageErr("--raft_addr is required")
	}
	if host, port, err := net.SplitHostPort(*raftAddr); err != nil || host == "" || port == "" {
		return usageErr("--raft_addr %q: want host:port", *raftAddr)
	}
	body := map[string]any{"id": *id, "raft_addr": *raftAddr}
	if *learner {
		body["learner"] = true
	}
	ms, err := adminRequest(path, http.MethodPost, "/members", body)
	if err != nil {
		return fail(stderr, "member add", err)
	}
	role := "member"
	if *learner {
		role = "learner"
	}
	fmt.Fprintf(stdout, "added %s %d (raft address %s).\n", role, *id, *raftAddr)
	fmt.Fprintf(stdout, "Now start it on an empty data directory with --raft_node_id %d --raft_join and --raft_peers %s\n",
		*id, peersFlagHint(ms, *id, *raftAddr))
	fmt.Fprintf(stdout, "and its own raft peer certificate, signed by the cluster's CA: 'dssctl certs --dir CA_DIR --nodes %d' "+
		"makes it and prints its --raft_tls_cert, --raft_tls_key and --raft_tls_ca.\n", *id)
	if *learner {
		fmt.Fprintf(stdout, "Once it has caught up (its /readyz answers 200 and its /status applied_index is near the "+
			"others'), make it a voter:\n  dssctl member promote %s --id %d\n", target.flag(), *id)
	}
	fmt.Fprintln(stdout)
	printMembers(stdout, ms)
	return 0
}

func runMemberPromote(args []string, stdout, stderr io.Writer) int {
	return runMemberChange(args, stdout, stderr, "promote",
		"Makes the learner with raft ID N a voter. From then on it counts in the quorum: promote it only\n"+
			"once it has caught up, when its /readyz answers 200 and its /status applied_index is near the\n"+
			"others'.",
		"raft ID of the learner to promote (required)", http.MethodPost, "/members/%d/promote",
		"promoted member %d: it is a voter and counts in the quorum.")
}

func runMemberRemove(args []string, stdout, stderr io.Writer) int {
	return runMemberChange(args, stdout, stderr, "remove",
		"Removes the voter or learner with raft ID N. Stop that node afterwards (a removed node cannot serve); its\n"+
			"data directory and its ID must never be used again.",
		"raft ID of the member to remove (required)", http.MethodDelete, "/members/%d",
		"removed member %d: stop its node now; its data directory and raft ID must not be used again.")
}

// runMemberChange runs a subcommand that changes the member --id with one
// admin request (method, pathFormat with the ID) and prints done (with the
// ID) and the new membership.
func runMemberChange(args []string, stdout, stderr io.Writer, sub, about, idUsage, method, pathFormat, done string) int {
	fs, target := newMemberFlagSet(sub, sub+" (--raft_data_dir DIR | --admin_socket PATH) --id N", about, stderr)
	id := fs.Uint64("id", 0, idUsage)
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "member "+sub)
	path, err := target.path()
	if err != nil {
		return usageErr("%v", err)
	}
	if *id == 0 {
		return usageErr("--id is required (a positive raft ID)")
	}
	ms, err := adminRequest(path, method, fmt.Sprintf(pathFormat, *id), nil)
	if err != nil {
		return fail(stderr, "member "+sub, err)
	}
	fmt.Fprintf(stdout, done+"\n\n", *id)
	printMembers(stdout, ms)
	return 0
}

// peersFlagHint is the --raft_peers value for a new member: every member
// with the address this node knows for it ("?" where it knows none).
func peersFlagHint(ms adminMembers, id uint64, addr string) string {
	var parts []string
	for _, m := range ms.Members {
		a := m.RaftAddr
		if m.ID == id {
			a = addr
		}
		if a == "" {
			a = "?"
		}
		parts = append(parts, fmt.Sprintf("%d=%s", m.ID, a))
	}
	return strings.Join(parts, ",")
}

// printMembers writes the membership as a table.
func printMembers(w io.Writer, ms adminMembers) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tRAFT ADDRESS\tNOTES")
	for _, m := range ms.Members {
		addr := m.RaftAddr
		if addr == "" {
			addr = "(not known to this node)"
		}
		var notes []string
		if m.ID == ms.LeaderID {
			notes = append(notes, "leader")
		}
		if m.ID == ms.NodeID {
			notes = append(notes, "this node")
		}
		role := "voter"
		if m.Learner {
			role = "learner"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.ID, role, addr, strings.Join(notes, ", "))
	}
	_ = tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	removed := "none"
	if len(ms.Removed) > 0 {
		ids := make([]string, len(ms.Removed))
		for i, id := range ms.Removed {
			ids[i] = fmt.Sprint(id)
		}
		removed = strings.Join(ids, ", ")
	}
	fmt.Fprintf(w, "removed IDs (never reused): %s\n", removed)
	if ms.LeaderID == 0 {
		fmt.Fprintf(w, "node %d knows no leader now\n", ms.NodeID)
	}
}

// adminRequest sends one request to the admin socket at path and decodes
// the membership it answers with; an error answer becomes an error with the
// node's message.
func adminRequest(path, method, urlPath string, body any) (adminMembers, error) {
	var out adminMembers
	err := adminDo(path, method, urlPath, body, &out, memberRequestTimeout)
	return out, err
}

// adminTransport connects every request to the admin socket at path.
func adminTransport(path string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
}

// adminDo sends one request to the admin socket at path, with body (when
// not nil) as JSON, within timeout (and until SIGINT/SIGTERM), and decodes
// the JSON answer into out; an error answer becomes an error with the
// node's message.
func adminDo(path, method, urlPath string, body, out any, timeout time.Duration) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+urlPath, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tr := adminTransport(path)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return dialError(path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the node's answer: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound && !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return fmt.Errorf("the node at %s does not serve %s %s: it runs an older build", path, method, urlPath)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s (HTTP %d)", adminMessage(data), resp.StatusCode)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the node's answer to %s %s is not what this dssctl expects: %v", method, urlPath, err)
	}
	return nil
}

// adminMessage is the message of an admin socket's (or the API's) error
// answer: its JSON "message", else the body's text.
func adminMessage(data []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		return strings.TrimSpace(string(data))
	}
	return e.Message
}

// dialError explains why the admin socket could not be reached.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no admin socket at %s: is the node running, and is this its --raft_data_dir "+
			"(or --admin_socket)? (%w)", path, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing answers on the admin socket %s: the node is not running (%w)", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("no permission to open the admin socket %s: run as the node's user (%w)", path, err)
	case errors.Is(err, syscall.EINVAL) && len(path) > 100:
		return fmt.Errorf("the admin socket path %s is too long for a Unix socket: give the node, and this "+
			"command, a shorter --admin_socket (%w)", path, err)
	}
	return fmt.Errorf("admin socket %s: %w", path, err)
}
