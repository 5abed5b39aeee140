package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// evictRequestTimeout bounds one evict request: the node bounds its own run
// (10 s) and answers with what it did by then.
const evictRequestTimeout = 30 * time.Second

// evictAnswer is the node's answer to GET and POST /evict (core-service's
// evictJSON).
type evictAnswer struct {
	DryRun                bool   `json:"dry_run"`
	Before                string `json:"before"`
	OperationalIntents    int    `json:"operational_intents"`
	Constraints           int    `json:"constraints"`
	Subscriptions         int    `json:"subscriptions"`
	ImplicitSubscriptions int    `json:"implicit_subscriptions"`
	Complete              bool   `json:"complete"`
}

func runEvict(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("evict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := &adminTarget{}
	target.register(fs)
	var dryRun, now bool
	fs.BoolVar(&dryRun, "dry-run", false, "count what would be evicted now, changing nothing")
	fs.BoolVar(&now, "now", false, "evict expired entities now, in batches, and print what went")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dssctl evict (--dry-run | --now) (--raft_data_dir DIR | --admin_socket PATH)\n\n%s\n\nflags:\n",
			"Eviction removes the OIRs, constraints and subscriptions whose end time is older than the node's\n"+
				"--evict_after, and the implicit subscriptions they leave unused, through the store like any write\n"+
				"(docs/operations.md). The node does it every --evict_interval; this command shows or runs it now.\n"+
				"On the SQL store, the node needs an --admin_socket.")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usage := usageErrorf(fs, stderr, "evict")
	if dryRun == now {
		return usage("give exactly one of --dry-run and --now")
	}
	path, err := target.path()
	if err != nil {
		return usage("%v", err)
	}
	method := http.MethodPost
	if dryRun {
		method = http.MethodGet
	}
	var ans evictAnswer
	if err := adminCall(path, method, "/evict", &ans); err != nil {
		return fail(stderr, "evict", err)
	}
	verb := "evicted"
	if ans.DryRun {
		verb = "would evict"
	}
	fmt.Fprintf(stdout, "%s entities that ended before %s:\n", verb, ans.Before)
	fmt.Fprintf(stdout, "  operational_intents  %d\n", ans.OperationalIntents)
	fmt.Fprintf(stdout, "  constraints          %d\n", ans.Constraints)
	fmt.Fprintf(stdout, "  subscriptions        %d (%d implicit, released with their last OIR)\n",
		ans.Subscriptions, ans.ImplicitSubscriptions)
	if !ans.Complete {
		fmt.Fprintln(stdout, "the run stopped at its deadline with more left: run it again")
	}
	return 0
}

// adminCall sends one body-less request to the admin socket at path and
// decodes its JSON answer into out; an error answer becomes an error with
// the node's message.
func adminCall(path, method, urlPath string, out any) error {
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, evictRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+urlPath, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
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
		return fmt.Errorf("the node at %s does not serve %s: it runs a build without eviction", path, urlPath)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%s (HTTP %d)", e.Message, resp.StatusCode)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the node's answer is not JSON of %s: %v", urlPath, err)
	}
	return nil
}
