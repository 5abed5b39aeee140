package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
)

// runLeader implements `dssctl leader transfer`.
func runLeader(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "transfer" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			return runLeaderTransfer([]string{"-h"}, stdout, stdout)
		}
		fmt.Fprintln(stderr, "usage: dssctl leader transfer (--raft_data_dir DIR | --admin_socket PATH) --to N")
		return 2
	}
	return runLeaderTransfer(args[1:], stdout, stderr)
}

func runLeaderTransfer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("leader transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := &adminTarget{}
	target.register(fs)
	to := fs.Uint64("to", 0, "raft ID of the voter to make the leader (required)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: dssctl leader transfer (--raft_data_dir DIR | --admin_socket PATH) --to N

Makes the voter with raft ID N the leader, e.g. before maintenance of the leader's machine. Run it
on the LEADER's machine (its admin socket); on another member it fails naming the leader. It
returns once that node sees N lead. Raft first brings N's log up to date, then N campaigns at once
and the others vote for it; writes pause for about an election timeout at most, and a write in
flight then may be answered 503 (its outcome is then unknown, as for any 503).

flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "leader transfer")
	path, err := target.path()
	if err != nil {
		return usageErr("%v", err)
	}
	if *to == 0 {
		return usageErr("--to is required (a positive raft ID)")
	}
	ms, err := adminRequest(path, http.MethodPost, "/leader", map[string]uint64{"to": *to})
	if err != nil {
		return fail(stderr, "leader transfer", err)
	}
	fmt.Fprintf(stdout, "node %d leads now.\n\n", ms.LeaderID)
	printMembers(stdout, ms)
	return 0
}
