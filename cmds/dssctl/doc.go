// Command dssctl is the raftdss operator CLI: `dssctl <command> [flags]`.
//
// Each subcommand is one entry of the table in commands(), a function of
// (args, stdout, stderr) returning the exit status, so it can be run and
// tested in-process. Results go to stdout, diagnostics and usage to stderr;
// exit status 2 means bad usage, 1 a failure while doing the work.
//
// It owns operator tooling only. It must never hold or print a production
// signing key, or bypass the service: `token` mints tokens for local testing
// only (see auth.MintToken); `member` (list, add, promote or remove Raft members)
// goes through a running node's admin socket, and later commands (snapshot
// save/restore) will go through the node's own interfaces too. The
// exceptions are the commands that work where no node is serving: `migrate` (the SQL
// schema, through sqlstore.Migrate), `copy-sql-to-raft` (writes the data
// directories of a cluster not yet started) and `copy-raft-to-sql` (reads a
// stopped node's directory, refusing one a running node holds), and `certs`
// (files only: raft peer certificates, through internal/peercerts). They reuse
// the stores' own code (sqlstore.Export/Import, raftstore.Bootstrap and
// ReadDataDir) so that what they write is exactly what a node would.
package main
