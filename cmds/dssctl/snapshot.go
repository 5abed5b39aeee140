package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/scd/store/raftstore"
)

// `dssctl snapshot save|status|restore`: online backups of a Raft cluster's
// state, taken through one running node's admin socket, and the data
// directories of a NEW cluster restored from one.

// snapshotSaveTimeout bounds `snapshot save` as a whole: the node's read
// barrier (30 s at most) and the transfer.
const snapshotSaveTimeout = 15 * time.Minute

func snapshotUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dssctl snapshot save    FILE (--raft_data_dir DIR | --admin_socket PATH)
       dssctl snapshot status  FILE
       dssctl snapshot restore FILE --raft_peers 1=host:port,... (--out_dirs 1=DIR,2=DIR,... | --raft_node_id N --raft_data_dir DIR)

Online backup and restore of a Raft cluster's state.

  save     writes a backup of the cluster's state to FILE through the admin socket of one running
           member (leader or follower, on that member's machine), while the cluster keeps serving:
           the state at an applied index that includes every write acknowledged before the command
           started, checksummed (SHA-256), written to a temporary file, fsynced and renamed
  status   checks FILE completely and prints its format version, cluster ID, index, term, state
           hash and entity counts
  restore  writes the data directories of a NEW cluster (a new cluster ID) whose state is FILE's;
           start each member on its directory with the same --raft_node_id and --raft_peers

A truncated, corrupt or foreign file, or one in a newer format, is refused with a non-zero exit
and nothing written. See docs/operations.md, "Backup and disaster recovery".

Run "dssctl snapshot SUBCOMMAND -h" for its flags.
`)
}

// runSnapshot implements `dssctl snapshot save|status|restore`.
func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "dssctl snapshot: a subcommand is required (save, status or restore)")
		fmt.Fprintln(stderr)
		snapshotUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		snapshotUsage(stdout)
		return 0
	case "save":
		return runSnapshotSave(args[1:], stdout, stderr)
	case "status":
		return runSnapshotStatus(args[1:], stdout, stderr)
	case "restore":
		return runSnapshotRestore(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "dssctl snapshot: unknown subcommand %q\n\n", args[0])
	snapshotUsage(stderr)
	return 2
}

func newSnapshotFlagSet(sub, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("snapshot "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dssctl snapshot %s\n\n%s\n\nflags:\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseWithFile parses args, which hold one FILE argument before, after or
// among the flags, and returns FILE.
func parseWithFile(fs *flag.FlagSet, args []string, stderr io.Writer) (file string, code int, done bool) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", 0, true
			}
			return "", 2, true
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usageErr := usageErrorf(fs, stderr, fs.Name())
	switch len(files) {
	case 0:
		return "", usageErr("FILE is required"), true
	case 1:
		if files[0] == "" {
			return "", usageErr("FILE must not be empty"), true
		}
		return files[0], 0, false
	}
	return "", usageErr("one FILE, not %d (%s)", len(files), strings.Join(files, ", ")), true
}

func runSnapshotSave(args []string, stdout, stderr io.Writer) int {
	fs := newSnapshotFlagSet("save", "save FILE (--raft_data_dir DIR | --admin_socket PATH)",
		"Writes a backup of the cluster's state to FILE through the admin socket of one running member\n"+
			"(DIR/admin.sock for its --raft_data_dir DIR, or its --admin_socket), on that member's machine.\n"+
			"The member first confirms the cluster's commit index with a quorum and applies up to it, so\n"+
			"the backup holds every write acknowledged before this command started; writes go on meanwhile.\n"+
			"FILE must not exist; it appears only once complete, verified and fsynced.",
		stderr)
	target := &adminTarget{}
	target.register(fs)
	file, code, done := parseWithFile(fs, args, stderr)
	if done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "snapshot save")
	path, err := target.path()
	if err != nil {
		return usageErr("%v", err)
	}
	if _, err := os.Lstat(file); err == nil {
		return fail(stderr, "snapshot save", fmt.Errorf("%s already exists: give a new file name (a backup never replaces a file)", file))
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail(stderr, "snapshot save", err)
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fail(stderr, "snapshot save", fmt.Errorf("the directory %s of %s does not exist", dir, file))
	}
	h, size, err := saveSnapshot(path, file)
	if err != nil {
		return fail(stderr, "snapshot save", err)
	}
	fmt.Fprintf(stdout, "saved %s (%d bytes)\n", file, size)
	printBackupHeader(stdout, h)
	return 0
}

// saveSnapshot downloads a backup from the admin socket at path into a
// temporary file beside file, checks it completely, fsyncs it and renames
// it to file.
func saveSnapshot(path, file string) (raftstore.BackupHeader, int64, error) {
	var h raftstore.BackupHeader
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, snapshotSaveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://admin/snapshot", nil)
	if err != nil {
		return h, 0, err
	}
	tr := adminTransport(path)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return h, 0, dialError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return h, 0, fmt.Errorf("the node took no backup: %s (HTTP %d)", adminMessage(data), resp.StatusCode)
	}

	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-")
	if err != nil {
		return h, 0, err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	size, err := io.Copy(tmp, resp.Body)
	if err != nil {
		return h, 0, fmt.Errorf("receiving the backup: %w", err)
	}
	if resp.ContentLength >= 0 && size != resp.ContentLength {
		return h, 0, fmt.Errorf("receiving the backup: %d of %d bytes", size, resp.ContentLength)
	}
	if err := tmp.Sync(); err != nil {
		return h, 0, err
	}
	// Check what is on disk, not what was received.
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return h, 0, err
	}
	if h, _, err = raftstore.DecodeBackup(b); err != nil {
		return h, 0, fmt.Errorf("the backup received is not valid: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return h, 0, err
	}
	// Link rather than rename: it fails if file appeared meanwhile. A file
	// system without hard links gets a rename, after checking again.
	if err := os.Link(tmp.Name(), file); err != nil {
		if _, serr := os.Lstat(file); !errors.Is(serr, os.ErrNotExist) {
			return h, 0, fmt.Errorf("moving the backup into place: %s appeared meanwhile (%v)", file, err)
		}
		if err := os.Rename(tmp.Name(), file); err != nil {
			return h, 0, fmt.Errorf("moving the backup into place: %w", err)
		}
	}
	_ = os.Remove(tmp.Name())
	done = true
	return h, size, syncParent(file)
}

func syncParent(file string) error {
	d, err := os.Open(filepath.Dir(file))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func printBackupHeader(w io.Writer, h raftstore.BackupHeader) {
	fmt.Fprintf(w, "format version: %d\n", h.Version)
	fmt.Fprintf(w, "cluster ID:     %016x\n", h.ClusterID)
	fmt.Fprintf(w, "index:          %d\n", h.Index)
	fmt.Fprintf(w, "term:           %d\n", h.Term)
	fmt.Fprintf(w, "state hash:     %s\n", hex.EncodeToString(h.StateHash[:]))
	fmt.Fprintf(w, "entities:       %d operational intents, %d subscriptions, %d constraints, %d availability records\n",
		h.Counts.OperationalIntents, h.Counts.Subscriptions, h.Counts.Constraints, h.Counts.UssAvailabilities)
	fmt.Fprintf(w, "state bytes:    %d\n", h.StateBytes)
}

// readBackup reads and checks a backup file completely.
func readBackup(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	return os.ReadFile(file)
}

func runSnapshotStatus(args []string, stdout, stderr io.Writer) int {
	fs := newSnapshotFlagSet("status", "status FILE",
		"Checks the backup FILE completely (magic, format version, lengths, SHA-256 checksum, the state's\n"+
			"encoding, hash and counts) and prints what it holds. Exit status 1 for a bad file.",
		stderr)
	file, code, done := parseWithFile(fs, args, stderr)
	if done {
		return code
	}
	b, err := readBackup(file)
	if err != nil {
		return fail(stderr, "snapshot status", err)
	}
	h, _, err := raftstore.DecodeBackup(b)
	if err != nil {
		return fail(stderr, "snapshot status", fmt.Errorf("%s: %w", file, err))
	}
	fmt.Fprintf(stdout, "%s: valid (%d bytes, SHA-256 checksum verified)\n", file, len(b))
	printBackupHeader(stdout, h)
	return 0
}

func runSnapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs := newSnapshotFlagSet("restore",
		"restore FILE --raft_peers 1=host:port,... (--out_dirs 1=DIR,2=DIR,... | --raft_node_id N --raft_data_dir DIR)",
		"Writes the initial data directories of a NEW Raft cluster whose voters are the --raft_peers and\n"+
			"whose state is the backup FILE's, under a new cluster ID (derived from the file and the voters,\n"+
			"so every member restored from the same file, in one run or one run per member, agrees; never\n"+
			"the backed-up cluster's). Start each member on its directory with the same --raft_node_id and\n"+
			"--raft_peers. The file is checked completely first; every directory must not exist or be\n"+
			"empty; on any error nothing is left written.",
		stderr)
	peersFlag := fs.String("raft_peers", "", "every member of the new cluster, as given to core-service: 1=host:port,2=host:port,... (required)")
	nodeID := fs.Uint64("raft_node_id", 0, "with --raft_data_dir: the member whose data directory to write")
	dataDir := fs.String("raft_data_dir", "", "with --raft_node_id: data directory to create (must not exist or be empty)")
	outDirs := fs.String("out_dirs", "", "instead: the data directories of several members, id=DIR,id=DIR,... (or DIR,DIR,... in --raft_peers order)")
	file, code, done := parseWithFile(fs, args, stderr)
	if done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "snapshot restore")
	if *peersFlag == "" {
		return usageErr("--raft_peers is required (every member of the new cluster)")
	}
	voters, err := parsePeerIDs(*peersFlag)
	if err != nil {
		return usageErr("--raft_peers: %v", err)
	}
	targets := map[uint64]string{}
	switch {
	case *outDirs != "" && (*dataDir != "" || *nodeID != 0):
		return usageErr("give either --out_dirs or --raft_node_id with --raft_data_dir, not both")
	case *outDirs != "":
		if targets, err = parseRestoreDirs(*outDirs, voters); err != nil {
			return usageErr("--out_dirs: %v", err)
		}
	case *dataDir != "" && *nodeID != 0:
		targets[*nodeID] = *dataDir
	case *dataDir != "":
		return usageErr("--raft_node_id is required with --raft_data_dir")
	case *nodeID != 0:
		return usageErr("--raft_data_dir is required with --raft_node_id")
	default:
		return usageErr("--out_dirs, or --raft_node_id with --raft_data_dir, is required")
	}
	for id := range targets {
		if !slices.Contains(voters, id) {
			return usageErr("node %d is not among the members %v of --raft_peers", id, voters)
		}
	}
	ids := slices.Sorted(maps.Keys(targets))
	// Everything is checked before anything is written.
	b, err := readBackup(file)
	if err != nil {
		return fail(stderr, "snapshot restore", err)
	}
	h, st, err := raftstore.DecodeBackup(b)
	if err != nil {
		return fail(stderr, "snapshot restore", fmt.Errorf("%s: %w", file, err))
	}
	existed := map[uint64]bool{}
	for _, id := range ids {
		if err := checkEmptyDir(targets[id]); err != nil {
			return fail(stderr, "snapshot restore", err)
		}
		_, err := os.Stat(targets[id])
		existed[id] = err == nil
	}
	cluster := raftstore.RestoredClusterID(h, voters)
	lg := cliLogger(stderr)
	var written []uint64
	for _, id := range ids {
		if err := raftstore.BootstrapRestored(targets[id], id, voters, cluster, st, lg); err != nil {
			// Undo the members already written: a half-restored cluster
			// must not be started.
			for _, w := range written {
				_ = os.RemoveAll(targets[w])
				if existed[w] {
					_ = os.Mkdir(targets[w], 0o700)
				}
			}
			return fail(stderr, "snapshot restore", fmt.Errorf("node %d: %w (nothing was restored)", id, err))
		}
		written = append(written, id)
	}
	fmt.Fprintf(stdout, "restored %s (index %d of cluster %016x, state hash %s: %d operational intents, %d subscriptions, "+
		"%d constraints, %d availability records)\n", file, h.Index, h.ClusterID, hex.EncodeToString(h.StateHash[:]),
		h.Counts.OperationalIntents, h.Counts.Subscriptions, h.Counts.Constraints, h.Counts.UssAvailabilities)
	fmt.Fprintf(stdout, "new cluster ID %016x, voters %v\n", cluster, voters)
	for _, id := range ids {
		fmt.Fprintf(stdout, "node %d: wrote %s\n", id, targets[id])
	}
	fmt.Fprintf(stdout, "Start each member on its directory with --raft_node_id ID --raft_peers %s; once they have a leader,\n"+
		"every node's /status state_hash is %s.\n", *peersFlag, hex.EncodeToString(h.StateHash[:]))
	return 0
}

// parseRestoreDirs parses --out_dirs: id=DIR,... as copy-sql-to-raft takes
// it, or DIR,DIR,... naming the members of voters in ascending ID order.
func parseRestoreDirs(s string, voters []uint64) (map[uint64]string, error) {
	if strings.Contains(s, "=") {
		return parseOutDirs(s)
	}
	var dirs []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			dirs = append(dirs, part)
		}
	}
	if len(dirs) != len(voters) {
		return nil, fmt.Errorf("%d directories for the %d members %v of --raft_peers: give one per member, or id=DIR pairs",
			len(dirs), len(voters), voters)
	}
	out := make(map[uint64]string, len(dirs))
	seen := map[string]bool{}
	for i, d := range dirs {
		c := filepath.Clean(d)
		if seen[c] {
			return nil, fmt.Errorf("directory %s given twice", d)
		}
		seen[c] = true
		out[voters[i]] = d
	}
	return out, nil
}
