package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// statusRequestTimeout bounds the whole of `dssctl status`: a member that
// does not answer within it is reported unreachable.
const statusRequestTimeout = 10 * time.Second

// Exit codes of `dssctl status` beyond 0 (every member answered, nothing
// diverged) and 2 (usage).
const (
	statusUnreachable = 1 // a member did not answer, or answered an error
	statusDiverged    = 3 // two members at the same applied index report different state hashes
)

// memberStatus is a node's /status body (core-service endpoints.go).
type memberStatus struct {
	Store        string `json:"store"`
	NodeID       uint64 `json:"node_id"`
	LeaderID     uint64 `json:"leader_id"`
	IsLeader     bool   `json:"is_leader"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	StateHash    string `json:"state_hash"`
	Removed      bool   `json:"removed"`
	HaltedIndex  uint64 `json:"halted_index"`
	HaltedReason string `json:"halted_reason"`
}

// statusTarget is one member to ask: an API base URL (with a token) or an
// admin socket on this machine (no token).
type statusTarget struct {
	name   string
	socket string // "" for a URL
	url    string
}

// statusRow is one member's answer, or why there is none.
type statusRow struct {
	target statusTarget
	st     memberStatus
	err    error
}

func statusUsage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: dssctl status --endpoints URL,... [--token TOKEN] [--cacert FILE]")
		fmt.Fprintln(w, "       dssctl status --admin_sockets PATH,...")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Asks every member for its /status at once and prints one line per member: raft ID, role,")
		fmt.Fprintln(w, "leader, term, applied and commit index, state hash. Two members at the same applied index")
		fmt.Fprintln(w, "must report the same state hash; when they do not, it prints a DIVERGED line and exits 3.")
		fmt.Fprintln(w, "A member that does not answer makes it exit 1. /status on the API needs an access token")
		fmt.Fprintln(w, "with any DSS scope (--token, or $DSS_TOKEN); an admin socket needs none, only the node's user.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = statusUsage(fs)
	endpoints := fs.String("endpoints", "", "comma-separated API base `URLs` of the members (http://host:port or https://...)")
	sockets := fs.String("admin_sockets", "", "comma-separated admin socket `PATHS` of members on this machine")
	token := fs.String("token", "", "access token for /status on the API (default $DSS_TOKEN)")
	caFile := fs.String("cacert", "", "PEM `FILE` of the CA that signed the API's certificates (default: the system's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dssctl status: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	targets, err := statusTargets(*endpoints, *sockets)
	if err != nil {
		return usage("%v", err)
	}
	if *token == "" {
		*token = os.Getenv("DSS_TOKEN")
	}
	if *endpoints != "" && *token == "" {
		return usage("--endpoints needs an access token: --token or $DSS_TOKEN (or use --admin_sockets on the members' machine)")
	}
	client, err := apiClient(*caFile)
	if err != nil {
		return usage("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, statusRequestTimeout)
	defer cancel()
	rows := fetchStatuses(ctx, targets, client, *token)
	return printStatuses(stdout, rows)
}

// statusTargets parses the two lists; names must not repeat.
func statusTargets(endpoints, sockets string) ([]statusTarget, error) {
	var out []statusTarget
	seen := map[string]bool{}
	add := func(t statusTarget) error {
		if seen[t.name] {
			return fmt.Errorf("%s is given twice", t.name)
		}
		seen[t.name] = true
		out = append(out, t)
		return nil
	}
	for e := range strings.SplitSeq(endpoints, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		e = strings.TrimRight(e, "/")
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			return nil, fmt.Errorf("endpoint %q: want http://host:port or https://host:port", e)
		}
		if err := add(statusTarget{name: e, url: e + "/status"}); err != nil {
			return nil, err
		}
	}
	for s := range strings.SplitSeq(sockets, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if err := add(statusTarget{name: s, socket: s, url: "http://admin/status"}); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("name the members: --endpoints and/or --admin_sockets")
	}
	return out, nil
}

// apiClient trusts caFile's CA when given.
func apiClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// fetchStatuses asks every target at once.
func fetchStatuses(ctx context.Context, targets []statusTarget, api *http.Client, token string) []statusRow {
	rows := make([]statusRow, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			rows[i] = statusRow{target: t}
			rows[i].st, rows[i].err = fetchStatus(ctx, t, api, token)
		})
	}
	wg.Wait()
	return rows
}

func fetchStatus(ctx context.Context, t statusTarget, api *http.Client, token string) (memberStatus, error) {
	var st memberStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return st, err
	}
	client := api
	if t.socket != "" {
		tr := adminTransport(t.socket)
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if t.socket != "" {
			return st, dialError(t.socket, err)
		}
		return st, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s (HTTP %d)", adminMessage(data), resp.StatusCode)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("the answer is not a node status: %v", err)
	}
	if st.Store != "raft" {
		return st, fmt.Errorf("the node runs the %q store, not a Raft cluster member", st.Store)
	}
	return st, nil
}

// printStatuses writes the table and the verdict lines, and returns the
// exit code.
func printStatuses(w io.Writer, rows []statusRow) int {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tID\tROLE\tLEADER\tTERM\tAPPLIED\tCOMMIT\tSTATE HASH")
	code := 0
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t-\tUNREACHABLE\t-\t-\t-\t-\t%v\n", r.target.name, r.err)
			code = statusUnreachable
			continue
		}
		s := r.st
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", r.target.name, s.NodeID, role(s), s.LeaderID, s.Term,
			s.AppliedIndex, s.CommitIndex, s.StateHash)
	}
	_ = tw.Flush()
	for _, d := range divergences(rows) {
		fmt.Fprintln(w, d)
		code = statusDiverged
	}
	return code
}

func role(s memberStatus) string {
	switch {
	case s.HaltedIndex != 0:
		return fmt.Sprintf("HALTED@%d", s.HaltedIndex)
	case s.Removed:
		return "removed"
	case s.IsLeader:
		return "leader"
	case s.LeaderID == 0:
		return "no-leader"
	}
	return "follower"
}

// divergences names every applied index at which the members that answered
// report more than one state hash.
func divergences(rows []statusRow) []string {
	byIndex := map[uint64]map[string][]uint64{} // applied index → hash → node IDs
	for _, r := range rows {
		if r.err != nil {
			continue
		}
		h := byIndex[r.st.AppliedIndex]
		if h == nil {
			h = map[string][]uint64{}
			byIndex[r.st.AppliedIndex] = h
		}
		h[r.st.StateHash] = append(h[r.st.StateHash], r.st.NodeID)
	}
	var out []string
	for _, idx := range slices.Sorted(maps.Keys(byIndex)) {
		hashes := byIndex[idx]
		if len(hashes) < 2 {
			continue
		}
		var parts []string
		for _, h := range slices.Sorted(maps.Keys(hashes)) {
			parts = append(parts, fmt.Sprintf("nodes %v report %s", hashes[h], h))
		}
		out = append(out, fmt.Sprintf("DIVERGED at applied index %d: %s. A replica's state differs from the "+
			"others' (a bug): stop the node(s) in the minority and rebuild them from a healthy member "+
			"(docs/operations.md).", idx, strings.Join(parts, "; ")))
	}
	return out
}
