package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
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
// decodes its JSON answer into out.
func adminCall(path, method, urlPath string, out any) error {
	return adminDo(path, method, urlPath, nil, out, evictRequestTimeout)
}
