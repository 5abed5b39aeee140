package main

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
)

// testBackup is a backup file of the state fillSQL writes, and that state's
// hash.
func testBackup(t *testing.T) ([]byte, [32]byte) {
	t.Helper()
	ms := memstore.New()
	fillSQL(t, ms)
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	st, err := memstore.ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h := raftstore.BackupHeader{ClusterID: 0xabc, Index: 42, Term: 3, Counts: raftstore.EntityCounts{
		OperationalIntents: uint64(st.LenOperationalIntents()), Subscriptions: uint64(st.LenSubscriptions()),
		Constraints: uint64(st.LenConstraints()), UssAvailabilities: uint64(st.LenUssAvailabilities()),
	}}
	return raftstore.EncodeBackup(h, buf.Bytes()), ms.Hash()
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var backupHashLine = regexp.MustCompile(`state hash:\s+([0-9a-f]{64})`)

func TestSnapshotStatus(t *testing.T) {
	b, hash := testBackup(t)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.snap", b)
	code, out, errOut := runCLI("snapshot", "status", good)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	m := backupHashLine.FindStringSubmatch(out)
	if m == nil || m[1] != hex.EncodeToString(hash[:]) {
		t.Fatalf("status printed %q, want state hash %x", out, hash)
	}
	for _, want := range []string{"format version: 1", "index:          42", "2 operational intents", "valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	flipped := append([]byte(nil), b...)
	flipped[len(flipped)/2] ^= 1
	future := append([]byte(nil), b...)
	future[11] = 9
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", b[:len(b)-7], "truncated"},
		{"flipped", flipped, "checksum mismatch"},
		{"foreign", []byte("SQLite format 3\x00 and more bytes"), "not a raftdss snapshot file"},
		{"empty", nil, "not a raftdss snapshot file"},
		{"future", future, "newer than this program reads"},
	} {
		p := writeFile(t, dir, c.name, c.data)
		code, out, errOut := runCLI("snapshot", "status", p)
		if code != 1 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.name, code, out, errOut, c.want)
		}
	}
	if code, _, errOut := runCLI("snapshot", "status", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI("snapshot", "status", dir); code != 1 || !strings.Contains(errOut, "not a regular file") {
		t.Errorf("a directory: exit %d, %q", code, errOut)
	}
}

func TestSnapshotRestore(t *testing.T) {
	b, hash := testBackup(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "b.snap", b)
	peers := "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3"
	d := func(n string) string { return filepath.Join(dir, n) }
	if err := os.Mkdir(d("n2"), 0o700); err != nil { // an existing empty directory is fine
		t.Fatal(err)
	}
	code, out, errOut := runCLI("snapshot", "restore", file, "--raft_peers", peers, "--out_dirs", d("n1")+","+d("n2")+","+d("n3"))
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errOut)
	}
	t.Log(out)
	var clusterLine string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "new cluster ID") {
			clusterLine = line
		}
	}
	if clusterLine == "" || strings.Contains(clusterLine, "0000000000000abc") {
		t.Fatalf("no new cluster ID in %q", out)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		st, info, err := raftstore.ReadDataDir(d(n), nil)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if st.Hash() != hash {
			t.Fatalf("%s: restored state hash %x, want %x", n, st.Hash(), hash)
		}
		if want := map[string]uint64{"n1": 1, "n2": 2, "n3": 3}[n]; info.NodeID != want {
			t.Fatalf("%s: WAL of node %d, want %d", n, info.NodeID, want)
		}
	}

	// One member at a time gets the same cluster ID.
	code, out2, errOut := runCLI("snapshot", "restore", "--raft_peers", peers, "--raft_node_id", "2",
		"--raft_data_dir", d("m2"), file)
	if code != 0 {
		t.Fatalf("per-member restore: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out2, clusterLine) {
		t.Fatalf("per-member restore printed %q, want %q", out2, clusterLine)
	}
}

// TestSnapshotRestoreRefused: every misuse and every bad file exits
// non-zero with a message and leaves every directory as it was.
func TestSnapshotRestoreRefused(t *testing.T) {
	b, _ := testBackup(t)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.snap", b)
	bad := writeFile(t, dir, "bad.snap", b[:len(b)-40])
	flipped := append([]byte(nil), b...)
	flipped[200] ^= 0x10
	corrupt := writeFile(t, dir, "corrupt.snap", flipped)
	d := func(n string) string { return filepath.Join(dir, n) }
	// n1 is empty, n2 holds a file (a node's data, say).
	if err := os.Mkdir(d("n1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d("n2/wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, d("n2/wal"), "0000000000000000-0000000000000000.wal", []byte("a node's WAL"))
	before := treeHashes(t, dir)
	peers := "1=h:1,2=h:2,3=h:3"
	three := d("n1") + "," + d("n3") + "," + d("n4")
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"--raft_peers", peers, "--out_dirs", three}, 2, "FILE is required"},
		{"two files", []string{good, good, "--raft_peers", peers, "--out_dirs", three}, 2, "one FILE"},
		{"no peers", []string{good, "--out_dirs", three}, 2, "--raft_peers is required"},
		{"bad peers", []string{good, "--raft_peers", "1=h", "--out_dirs", three}, 2, "want id=host:port"},
		{"no dirs", []string{good, "--raft_peers", peers}, 2, "--out_dirs, or --raft_node_id"},
		{"both", []string{good, "--raft_peers", peers, "--out_dirs", three, "--raft_node_id", "1", "--raft_data_dir", d("x")}, 2, "not both"},
		{"id without dir", []string{good, "--raft_peers", peers, "--raft_node_id", "1"}, 2, "--raft_data_dir is required"},
		{"dir without id", []string{good, "--raft_peers", peers, "--raft_data_dir", d("x")}, 2, "--raft_node_id is required"},
		{"too few dirs", []string{good, "--raft_peers", peers, "--out_dirs", d("n3") + "," + d("n4")}, 2, "2 directories for the 3 members"},
		{"not a member", []string{good, "--raft_peers", peers, "--out_dirs", "4=" + d("n4")}, 2, "not among the members"},
		{"unknown flag", []string{good, "--raft_peer", peers}, 2, "flag provided but not defined"},
		{"truncated file", []string{bad, "--raft_peers", peers, "--out_dirs", three}, 1, "truncated"},
		{"corrupt file", []string{corrupt, "--raft_peers", peers, "--out_dirs", three}, 1, "checksum mismatch"},
		{"missing file", []string{d("nope.snap"), "--raft_peers", peers, "--out_dirs", three}, 1, "no such file"},
		// n2 is not empty: refused before n1 (listed first) is written.
		{"non-empty dir", []string{good, "--raft_peers", peers, "--out_dirs", d("n1") + "," + d("n2") + "," + d("n3")}, 1, "not empty"},
	} {
		code, out, errOut := runCLI(append([]string{"snapshot", "restore"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, code, errOut, c.code, c.want)
		}
		if strings.Contains(out, "wrote") {
			t.Errorf("%s: %q", c.name, out)
		}
		if after := treeHashes(t, dir); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: the refused command changed the directory tree", c.name)
		}
		for _, n := range []string{"n3", "n4", "x"} {
			if _, err := os.Stat(d(n)); err == nil {
				t.Fatalf("%s: %s was created", c.name, n)
			}
		}
	}
}

// TestSnapshotRestoreRollsBack: a member that cannot be written after
// another was undoes that one: nothing is left half-restored.
func TestSnapshotRestoreRollsBack(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc, where no directory can be created")
	}
	b, _ := testBackup(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "b.snap", b)
	d1 := filepath.Join(dir, "n1")
	if err := os.Mkdir(d1, 0o700); err != nil { // existed empty: stays so
		t.Fatal(err)
	}
	d3 := filepath.Join(dir, "n3")
	code, out, errOut := runCLI("snapshot", "restore", file, "--raft_peers", "1=h:1,2=h:2,3=h:3",
		"--out_dirs", "1="+d1+",2=/proc/dss-restore-test,3="+d3)
	if code != 1 || !strings.Contains(errOut, "node 2") || !strings.Contains(errOut, "nothing was restored") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if entries, err := os.ReadDir(d1); err != nil || len(entries) != 0 {
		t.Fatalf("node 1's directory after the rollback: %v, %v (want it empty)", entries, err)
	}
	if _, err := os.Stat(d3); err == nil {
		t.Fatal("node 3's directory was written")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("left %d entries in %s, want the file and n1", len(entries), dir)
	}
}

// serveSnapshot serves GET /snapshot on a Unix socket DIR/admin.sock with
// the given answer and returns DIR.
func serveSnapshot(t *testing.T, code int, body []byte) string {
	t.Helper()
	dir := shortDir(t)
	ln, err := net.Listen("unix", filepath.Join(dir, adminSocketName))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/snapshot" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		_, _ = w.Write(body)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return dir
}

func TestSnapshotSave(t *testing.T) {
	b, hash := testBackup(t)
	node := serveSnapshot(t, http.StatusOK, b)
	out := t.TempDir()
	file := filepath.Join(out, "backup.snap")
	code, stdout, errOut := runCLI("snapshot", "save", file, "--raft_data_dir", node)
	if code != 0 {
		t.Fatalf("save: exit %d: %s", code, errOut)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("saved file differs from the node's answer (%v)", err)
	}
	if m := backupHashLine.FindStringSubmatch(stdout); m == nil || m[1] != hex.EncodeToString(hash[:]) {
		t.Fatalf("save printed %q", stdout)
	}
	// Never over an existing file.
	if code, _, errOut := runCLI("snapshot", "save", "--raft_data_dir", node, file); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("save over an existing file: exit %d, %q", code, errOut)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Fatalf("%d files in the output directory, want 1 (no temporary file left)", len(entries))
	}
}

func TestSnapshotSaveRefused(t *testing.T) {
	b, _ := testBackup(t)
	out := t.TempDir()
	file := filepath.Join(out, "backup.snap")
	for _, c := range []struct {
		name string
		node string
		args []string
		code int
		want string
	}{
		{"a truncated transfer", serveSnapshot(t, http.StatusOK, b[:len(b)/2]), nil, 1, "truncated"},
		{"a corrupt transfer", serveSnapshot(t, http.StatusOK, append(append([]byte(nil), b[:300]...), b[301:]...)), nil, 1, "not valid"},
		{"the node refuses", serveSnapshot(t, http.StatusServiceUnavailable, []byte(`{"message":"no backup taken: no quorum"}`)), nil, 1, "no quorum (HTTP 503)"},
		{"no node", shortDir(t), nil, 1, "no admin socket"},
		{"no socket flag", "", nil, 2, "--raft_data_dir or --admin_socket is required"},
		{"no file", "", []string{"--admin_socket", "/x"}, 2, "FILE is required"},
		{"no such directory", "", []string{filepath.Join(out, "no", "f"), "--admin_socket", "/x"}, 1, "does not exist"},
	} {
		args := []string{"snapshot", "save"}
		if c.args != nil {
			args = append(args, c.args...)
		} else {
			args = append(args, file)
			if c.node != "" {
				args = append(args, "--raft_data_dir", c.node)
			}
		}
		code, _, errOut := runCLI(args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, code, errOut, c.code, c.want)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Fatalf("%s: left %v in the output directory", c.name, entries[0].Name())
		}
	}
}

func TestSnapshotUsage(t *testing.T) {
	if code, out, _ := runCLI("snapshot", "-h"); code != 0 || !strings.Contains(out, "dssctl snapshot save") {
		t.Fatalf("snapshot -h: %d %q", code, out)
	}
	if code, _, errOut := runCLI("snapshot"); code != 2 || !strings.Contains(errOut, "a subcommand is required") {
		t.Fatalf("snapshot: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI("snapshot", "load"); code != 2 || !strings.Contains(errOut, `unknown subcommand "load"`) {
		t.Fatalf("snapshot load: %d %q", code, errOut)
	}
	if code, out, _ := runCLI("help", "snapshot"); code != 0 || !strings.Contains(out, "restore") {
		t.Fatalf("help snapshot: %d %q", code, out)
	}
}
