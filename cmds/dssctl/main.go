package main

import (
	"fmt"
	"io"
	"os"
)

// command is one dssctl subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is the command table; later subcommands (snapshot
// save/restore, ...) are added here.
func commands() []command {
	return []command{
		{"help", "list commands, or show one command's flags: help [COMMAND]", runHelp},
		{"token", "mint a signed access token for local testing", runToken},
		{"migrate", "apply the SQL store's schema migrations up or down", runMigrate},
		{"copy-sql-to-raft", "write a new Raft cluster's data directories from a PostgreSQL database", runCopySQLToRaft},
		{"copy-raft-to-sql", "copy a stopped Raft node's data into an empty PostgreSQL database", runCopyRaftToSQL},
		{"certs", "create the CA and raft-node-<ID> certificates of raft peer mutual TLS", runCerts},
		{"member", "list, add, promote or remove Raft cluster members: member list|add|promote|remove", runMember},
		{"leader", "move the Raft leadership to another voter: leader transfer --to ID", runLeader},
		{"status", "every member's raft ID, role, leader, term, indexes and state hash; DIVERGED when they disagree", runStatus},
		{"snapshot", "online backup of a Raft cluster and restore into a new one: snapshot save|status|restore", runSnapshot},
		{"evict", "show (--dry-run) or run (--now) the eviction of expired entities on a node", runEvict},
		{"health", "GET a node's /readyz (or any URL): exit code 0 on 200, else 1; for container health checks", runHealth},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args[0] to its command.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "dssctl: unknown command %q\n\n", name)
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: dssctl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-17s %s\n", c.name, c.summary)
	}
}

// runHelp lists the commands on stdout, or shows one command's usage.
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		printUsage(stdout)
		return 0
	case 1:
		for _, c := range commands() {
			if c.name == args[0] && c.name != "help" {
				return c.run([]string{"-h"}, stdout, stdout)
			}
		}
		fmt.Fprintf(stderr, "dssctl help: unknown command %q\n", args[0])
		return 2
	default:
		fmt.Fprintln(stderr, "usage: dssctl help [COMMAND]")
		return 2
	}
}
