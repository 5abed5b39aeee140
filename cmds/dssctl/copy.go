package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/scd/store/sqlstore"
)

// runCopySQLToRaft implements `dssctl copy-sql-to-raft`: it reads the whole
// SCD state of a PostgreSQL database in one consistent read and writes the
// initial data directories of a NEW Raft cluster holding exactly that state.
func runCopySQLToRaft(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("copy-sql-to-raft", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("datastore_url", "", "PostgreSQL URL of the source SCD database (at the current schema version)")
	peersFlag := fs.String("raft_peers", "", "every member of the new cluster, as given to core-service: 1=host:port,2=host:port,...; empty: a single-node cluster of --raft_node_id")
	nodeID := fs.Uint64("raft_node_id", 1, "the member whose data directory --raft_data_dir is")
	dataDir := fs.String("raft_data_dir", "", "data directory to create for --raft_node_id (must not exist or be empty)")
	outDirs := fs.String("out_dirs", "", "instead of --raft_node_id/--raft_data_dir: data directories of several members, id=dir,id=dir,... (all from one read)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: dssctl copy-sql-to-raft --datastore_url URL --raft_peers 1=host:port,... (--raft_node_id N --raft_data_dir DIR | --out_dirs 1=DIR,2=DIR,...)`)
		fmt.Fprintln(fs.Output(), `
Reads every SCD entity from PostgreSQL in one consistent read-only transaction and writes the
initial data directory of each listed member of a NEW Raft cluster whose voters are the
--raft_peers. Start each node on its directory with the same --raft_node_id and --raft_peers
(and the raft TLS flags that 'dssctl certs' prints).
Every member must be written from the same read: use --out_dirs for all members at once, or,
running once per member, stop writes to the database first and check that every run prints
the same state hash.

flags:`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "copy-sql-to-raft")
	if *url == "" {
		return usageErr("--datastore_url is required")
	}
	voters := []uint64{*nodeID}
	if *peersFlag != "" {
		peers, err := parsePeerIDs(*peersFlag)
		if err != nil {
			return usageErr("--raft_peers: %v", err)
		}
		voters = peers
	}
	targets := map[uint64]string{}
	switch {
	case *outDirs != "" && *dataDir != "":
		return usageErr("give either --raft_data_dir or --out_dirs, not both")
	case *outDirs != "":
		var err error
		if targets, err = parseOutDirs(*outDirs); err != nil {
			return usageErr("--out_dirs: %v", err)
		}
	case *dataDir != "":
		targets[*nodeID] = *dataDir
	default:
		return usageErr("--raft_data_dir (with --raft_node_id) or --out_dirs is required")
	}
	for id := range targets {
		if !slices.Contains(voters, id) {
			return usageErr("node %d is not among the members %v of --raft_peers", id, voters)
		}
	}
	ids := slices.Sorted(maps.Keys(targets))
	// Refuse before reading anything, so a typo costs no database read and
	// leaves no member written while another is refused.
	for _, id := range ids {
		if err := checkEmptyDir(targets[id]); err != nil {
			return fail(stderr, "copy-sql-to-raft", err)
		}
	}

	ctx, stop := signalContext()
	defer stop()
	st, err := sqlstore.Export(ctx, *url)
	if err != nil {
		return fail(stderr, "copy-sql-to-raft", fmt.Errorf("reading PostgreSQL: %w", err))
	}
	fmt.Fprintf(stdout, "read from PostgreSQL: %s\n", describe(st))
	fmt.Fprintf(stdout, "state hash: %x\n", st.Hash())
	lg := cliLogger(stderr)
	for _, id := range ids {
		if err := raftstore.Bootstrap(targets[id], id, voters, st, lg); err != nil {
			return fail(stderr, "copy-sql-to-raft", fmt.Errorf("node %d: %w", id, err))
		}
		fmt.Fprintf(stdout, "node %d: wrote %s (voters %v)\n", id, targets[id], voters)
	}
	return 0
}

// runCopyRaftToSQL implements `dssctl copy-raft-to-sql`: it reads a stopped
// node's data directory offline and writes its state into an empty
// PostgreSQL database.
func runCopyRaftToSQL(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("copy-raft-to-sql", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("raft_data_dir", "", "data directory of a STOPPED node; only read")
	url := fs.String("datastore_url", "", "PostgreSQL URL of the target database: migrated (dssctl migrate) and without SCD data")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dssctl copy-raft-to-sql --raft_data_dir DIR --datastore_url URL")
		fmt.Fprintln(fs.Output(), `
Rebuilds a stopped node's state from its data directory (newest snapshot plus the committed
WAL entries after it, applied as the node would, without starting raft or writing into DIR)
and writes every entity into an empty, migrated PostgreSQL database in one transaction. Use
the data directory of a node that had applied every acknowledged write (stop the cluster
after the last write; every node then reports the same /status state_hash).

flags:`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "copy-raft-to-sql")
	switch {
	case *dataDir == "":
		return usageErr("--raft_data_dir is required")
	case *url == "":
		return usageErr("--datastore_url is required")
	}
	st, info, err := raftstore.ReadDataDir(*dataDir, cliLogger(stderr))
	if err != nil {
		return fail(stderr, "copy-raft-to-sql", fmt.Errorf("reading %s: %w", *dataDir, err))
	}
	fmt.Fprintf(stdout, "read node %d from %s: snapshot at index %d, %d entries replayed up to committed index %d\n",
		info.NodeID, *dataDir, info.SnapshotIndex, info.Entries, info.Applied)
	fmt.Fprintf(stdout, "state: %s\n", describe(st))
	fmt.Fprintf(stdout, "state hash: %x\n", st.Hash())
	ctx, stop := signalContext()
	defer stop()
	if err := sqlstore.Import(ctx, *url, st); err != nil {
		return fail(stderr, "copy-raft-to-sql", fmt.Errorf("writing PostgreSQL: %w", err))
	}
	fmt.Fprintln(stdout, "wrote every entity to PostgreSQL")
	return 0
}

func describe(st *memstore.State) string {
	return fmt.Sprintf("%d operational intents, %d subscriptions, %d constraints, %d availability records",
		st.LenOperationalIntents(), st.LenSubscriptions(), st.LenConstraints(), st.LenUssAvailabilities())
}

// parsePeerIDs returns the sorted raft IDs of a --raft_peers value, checked
// like core-service checks it (id=host:port, IDs positive and distinct), so
// that the value given to both means the same members.
func parsePeerIDs(s string) ([]uint64, error) {
	var ids []uint64
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" || !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("%q: want id=host:port", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q: the raft ID must be a positive integer", part)
		}
		if slices.Contains(ids, id) {
			return nil, fmt.Errorf("raft ID %d given twice", id)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no member given")
	}
	slices.Sort(ids)
	return ids, nil
}

// parseOutDirs parses id=dir,id=dir,...
func parseOutDirs(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	seen := map[string]uint64{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		idStr, dir, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || dir == "" || err != nil || id == 0 {
			return nil, fmt.Errorf("%q: want id=directory with a positive raft ID", part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("raft ID %d given twice", id)
		}
		clean := filepath.Clean(dir)
		if other, dup := seen[clean]; dup {
			return nil, fmt.Errorf("raft IDs %d and %d share the directory %s", other, id, dir)
		}
		out[id], seen[clean] = dir, id
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no directory given")
	}
	return out, nil
}

// checkEmptyDir is consensus.BootstrapFromSnapshot's precondition, checked
// up front for every member.
func checkEmptyDir(dir string) error {
	entries, err := readDirIfExists(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: %s", consensus.ErrDataDirNotEmpty, dir)
	}
	return nil
}

// cliLogger logs warnings and errors of the WAL and snapshot code (e.g. a
// skipped unreadable snapshot file) to stderr.
func cliLogger(stderr io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zap.WarnLevel))
}

func readDirIfExists(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}
