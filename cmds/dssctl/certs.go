package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/raftdss/dss/internal/peercerts"
)

// maxCertNodes bounds --nodes: a raft cluster has a handful of members, and
// every ID costs a key generation.
const maxCertNodes = 100

// runCerts implements `dssctl certs`: the certificates of raft peer mutual
// TLS (peercerts.Create), and the core-service flags of each node.
func runCerts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the CA and the node certificates (created with mode 0700 if missing)")
	nodes := fs.String("nodes", "", "raft node IDs to make a certificate for, comma-separated: 1,2,3")
	validity := fs.Duration("validity", peercerts.DefaultValidity, "lifetime of the node certificates (cut to the CA's)")
	skipExisting := fs.Bool("skip_existing", false,
		"keep (and skip) each node whose certificate and key both exist, instead of refusing the run; for one-shot setup jobs run at every start")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: dssctl certs --dir DIR --nodes 1,2,3 [--validity 8760h] [--skip_existing]`)
		fmt.Fprintln(fs.Output(), `
Creates the certificates with which raft peers authenticate each other (mutual TLS):
in DIR, a CA (ca.pem, and its private key ca-key.pem) unless DIR already has one, and for
each node ID a certificate naming raft-node-<ID> (raft-node-<ID>.pem) with its private
key (raft-node-<ID>-key.pem), signed by the CA. Nothing is ever overwritten: an ID whose
files exist is refused (with --skip_existing, kept and skipped). To add a node later, run it again on the same DIR with the new ID.
Prints the core-service flags each node needs. Give each node only its own two files and
ca.pem; keep ca-key.pem away from the nodes (it is needed only to add nodes).

flags:`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "certs")
	if *dir == "" {
		return usageErr("--dir is required")
	}
	if *nodes == "" {
		return usageErr("--nodes is required")
	}
	ids, err := parseNodeIDs(*nodes)
	if err != nil {
		return usageErr("--nodes: %v", err)
	}
	if *validity <= 0 {
		return usageErr("--validity must be positive, got %v", *validity)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "dssctl certs: %v\n", err)
		return 1
	}
	toMake := ids
	if *skipExisting {
		toMake = nil
		for _, id := range ids {
			if fileExists(filepath.Join(abs, peercerts.CertFile(id))) && fileExists(filepath.Join(abs, peercerts.KeyFile(id))) {
				fmt.Fprintf(stdout, "kept the existing certificate of node %d\n", id)
				continue
			}
			toMake = append(toMake, id)
		}
	}
	if len(toMake) == 0 {
		printNodeFlags(stdout, abs, ids)
		return 0
	}
	res, err := peercerts.Create(abs, toMake, *validity)
	if res != nil {
		for _, p := range res.Written {
			fmt.Fprintf(stdout, "wrote %s\n", p)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "dssctl certs: %v\n", err)
		return 1
	}
	if res.CACreated {
		fmt.Fprintf(stdout, "\nNew CA %s; its key %s signs new node certificates: keep it off the nodes.\n",
			filepath.Join(abs, peercerts.CAFile), filepath.Join(abs, peercerts.CAKeyFile))
	} else {
		fmt.Fprintf(stdout, "\nSigned by the existing CA %s.\n", filepath.Join(abs, peercerts.CAFile))
	}
	printNodeFlags(stdout, abs, ids)
	return 0
}

// printNodeFlags prints the raft TLS flags of each node.
func printNodeFlags(stdout io.Writer, dir string, ids []uint64) {
	fmt.Fprintln(stdout, "\ncore-service flags of each node (with its --raft_node_id):")
	for _, id := range ids {
		fmt.Fprintf(stdout, "  node %d: %s\n", id, strings.Join(peercerts.Flags(dir, id), " "))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// parseNodeIDs parses --nodes: distinct non-zero raft IDs, comma-separated.
func parseNodeIDs(s string) ([]uint64, error) {
	var ids []uint64
	seen := map[uint64]bool{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		id, err := strconv.ParseUint(f, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q is not a raft node ID (a positive integer)", f)
		}
		if seen[id] {
			return nil, fmt.Errorf("node ID %d given twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
		if len(ids) > maxCertNodes {
			return nil, fmt.Errorf("more than %d node IDs", maxCertNodes)
		}
	}
	return ids, nil
}
