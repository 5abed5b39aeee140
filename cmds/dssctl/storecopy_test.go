package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/scd/store/sqlstore"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(args...)
	if code != 0 {
		t.Fatalf("dssctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func schemaVersionOf(t *testing.T, url string) int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	v, err := sqlstore.CurrentSchemaVersion(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateCommand(t *testing.T) {
	url := pgtest.NewDatabase(t)
	latest := sqlstore.SchemaVersion
	out := mustRun(t, "migrate", "--datastore_url", url)
	if want := fmt.Sprintf("schema version before: 0\nschema version after: %d\n", latest); out != want {
		t.Fatalf("migrate up printed %q, want %q", out, want)
	}
	if v := schemaVersionOf(t, url); v != latest {
		t.Fatalf("schema version %d after migrating up, want %d", v, latest)
	}
	out = mustRun(t, "migrate", "--datastore_url", url, "--to", "0")
	if want := fmt.Sprintf("schema version before: %d\nschema version after: 0\n", latest); out != want {
		t.Fatalf("migrate down printed %q, want %q", out, want)
	}
	if v := schemaVersionOf(t, url); v != 0 {
		t.Fatalf("schema version %d after migrating down, want 0", v)
	}
	mustRun(t, "migrate", "--datastore_url", url, "--to", fmt.Sprint(latest))
	if v := schemaVersionOf(t, url); v != latest {
		t.Fatalf("schema version %d after migrating up again, want %d", v, latest)
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"migrate"}, 2, "--datastore_url is required"},
		{[]string{"migrate", "--datastore_url", url, "--to", fmt.Sprint(latest + 1)}, 2, "--to must be between"},
		{[]string{"migrate", "--datastore_url", url, "--to", "-1"}, 2, "--to must be between"},
		{[]string{"migrate", "--datastore_url", "postgres://u:secret@[bad"}, 1, "cannot be parsed"},
	} {
		code, _, errOut := runCLI(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
		if strings.Contains(errOut, "secret") {
			t.Errorf("%v: the password leaked into stderr: %q", tt.args, errOut)
		}
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus d plus 123456789 ns, so every instant has nanoseconds below
// the microsecond, which PostgreSQL's timestamptz alone would lose.
func at(d time.Duration) time.Time { return t0.Add(d + 123456789) }

func uid(n int) models.ID { return models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)) }

func ptr[T any](v T) *T { return &v }

func vol(cells []models.CellID, start, end time.Duration, alt bool) models.Volume4D {
	v := models.Volume4D{Cells: cells, StartTime: ptr(at(start)), EndTime: ptr(at(end))}
	if alt {
		v.AltitudeLower, v.AltitudeUpper = ptr(float32(10.5)), ptr(float32(99.25))
	}
	return v
}

// fillSQL writes, through the SCD operations, data that exercises every
// column: notification indices, implicit and explicit subscriptions, past
// and requested OVNs, constraints with and without altitudes, availability.
func fillSQL(t *testing.T, s interface {
	Transact(context.Context, scd.Operation) (any, error)
}) {
	t.Helper()
	ctx := context.Background()
	do := func(op scd.Operation) any {
		t.Helper()
		res, err := s.Transact(ctx, op)
		if err != nil {
			t.Fatalf("%T: %v", op, err)
		}
		return res
	}
	do(&scd.PutUssAvailability{Now: at(time.Second), USS: "uss-a", Availability: models.AvailabilityNormal})
	do(&scd.PutSubscription{Caller: "uss-b", Now: at(2 * time.Second), ID: uid(1),
		Extents:    vol([]models.CellID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2*time.Second, 2*time.Hour, false),
		USSBaseURL: "https://b.example", NotifyForOperationalIntents: true, NotifyForConstraints: true})
	do(&scd.PutConstraint{Caller: "uss-c", Now: at(3 * time.Second), ID: uid(2),
		Extents: vol([]models.CellID{9}, 10*time.Minute, 50*time.Minute, true), USSBaseURL: "https://c.example"})
	do(&scd.PutConstraint{Caller: "uss-c", Now: at(4 * time.Second), ID: uid(3),
		Extents: vol([]models.CellID{30, 31}, 10*time.Minute, 50*time.Minute, false), USSBaseURL: "https://c.example"})
	res := do(&scd.PutOperationalIntent{Caller: "uss-a", Now: at(5 * time.Second), ID: uid(4), State: models.StateAccepted,
		Extents: vol([]models.CellID{1, 2}, 5*time.Minute, 35*time.Minute, true), USSBaseURL: "https://a.example",
		NewSubscription: &scd.NewSubscription{USSBaseURL: "https://a.example"}, NewSubscriptionID: uid(5)})
	for i := range 2 {
		ovn := res.(scd.OperationalIntentResult).OIR.OIR.OVN()
		res = do(&scd.PutOperationalIntent{Caller: "uss-a", Now: at(time.Duration(6+i) * time.Second), ID: uid(4), OVN: ovn,
			State: models.StateActivated, Extents: vol([]models.CellID{1, 2, 3}, 5*time.Minute, 40*time.Minute, true),
			USSBaseURL: "https://a.example", SubscriptionID: uid(5)})
	}
	do(&scd.PutOperationalIntent{Caller: "uss-b", Now: at(8 * time.Second), ID: uid(6), State: models.StateAccepted,
		Extents: vol([]models.CellID{5}, 5*time.Minute, 35*time.Minute, true), USSBaseURL: "https://b.example",
		SubscriptionID: uid(1), RequestedOVN: models.OVN(string(uid(6)) + "_requested-suffix-0001")})
	// A deleted entity must not come back.
	do(&scd.DeleteConstraint{Caller: "uss-c", ID: uid(3),
		OVN: models.OVN(models.DeriveVersion(string(uid(3)), at(4*time.Second)))})
	do(&scd.PutUssAvailability{Now: at(9 * time.Second), USS: "uss-b", Availability: models.AvailabilityDown})
}

// checkRichData fails unless e holds the features the round trip must carry,
// so the comparison below cannot pass on trivial data.
func checkRichData(t *testing.T, e *memstore.Entities) {
	t.Helper()
	if len(e.OperationalIntents) != 2 || len(e.Subscriptions) != 2 || len(e.Constraints) != 1 || len(e.Availabilities) != 2 {
		t.Fatalf("unexpected content: %d OIRs, %d subscriptions, %d constraints, %d availabilities",
			len(e.OperationalIntents), len(e.Subscriptions), len(e.Constraints), len(e.Availabilities))
	}
	o, o2 := e.OperationalIntents[0], e.OperationalIntents[1]
	s1, implicit := e.Subscriptions[0], e.Subscriptions[1]
	switch {
	case len(o.PastOVNs) != 2 || o.SubscriptionID != uid(5):
		t.Fatalf("OIR %s: past OVNs %v, subscription %s", o.ID, o.PastOVNs, o.SubscriptionID)
	case o2.RequestedOVN == "" || o2.SubscriptionID != uid(1):
		t.Fatalf("OIR %s: requested OVN %q, subscription %s", o2.ID, o2.RequestedOVN, o2.SubscriptionID)
	case !implicit.Implicit || s1.Implicit || s1.NotificationIndex < 3:
		t.Fatalf("subscriptions: %+v, %+v", s1, implicit)
	case o.UpdatedAt.Nanosecond()%1000 == 0 || e.Constraints[0].AltitudeLower == nil:
		t.Fatalf("instants or altitudes lost: %+v, %+v", o, e.Constraints[0])
	}
}

// treeHashes maps every file under dir to the SHA-256 of its content.
func treeHashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	m := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var stateHashLine = regexp.MustCompile(`state hash: ([0-9a-f]{64})`)

func printedHash(t *testing.T, out string) string {
	t.Helper()
	m := stateHashLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no state hash in %q", out)
	}
	return m[1]
}

// TestCopySQLToRaftAndBack moves a database written through the SCD
// operations into a new 3-node Raft cluster and back into a new database,
// and checks that nothing changes on the way, to the nanosecond.
func TestCopySQLToRaftAndBack(t *testing.T) {
	ctx := context.Background()
	srcURL := pgtest.NewDatabase(t)
	mustRun(t, "migrate", "--datastore_url", srcURL)
	src, err := sqlstore.Open(ctx, sqlstore.Config{URL: srcURL, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fillSQL(t, src)
	want, err := sqlstore.Export(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	checkRichData(t, want.Entities())

	// SQL → Raft: nodes 1 and 2 with --out_dirs, node 3 on its own.
	base := t.TempDir()
	dirs := map[uint64]string{}
	peers := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		dirs[id] = filepath.Join(base, fmt.Sprintf("node%d", id))
		peers[id] = fmt.Sprintf("127.0.0.1:%d", 26000+id)
	}
	peersFlag := "1=127.0.0.1:26001,2=127.0.0.1:26002,3=127.0.0.1:26003"
	out12 := mustRun(t, "copy-sql-to-raft", "--datastore_url", srcURL, "--raft_peers", peersFlag,
		"--out_dirs", fmt.Sprintf("1=%s,2=%s", dirs[1], dirs[2]))
	out3 := mustRun(t, "copy-sql-to-raft", "--datastore_url", srcURL, "--raft_peers", peersFlag,
		"--raft_node_id", "3", "--raft_data_dir", dirs[3])
	wantHash := fmt.Sprintf("%x", want.Hash())
	if h12, h3 := printedHash(t, out12), printedHash(t, out3); h12 != wantHash || h3 != wantHash {
		t.Fatalf("copy-sql-to-raft printed state hashes %s and %s, want %s", h12, h3, wantHash)
	}

	// A non-empty target is refused before anything is read or written.
	code, _, errOut := runCLI("copy-sql-to-raft", "--datastore_url", srcURL, "--raft_peers", peersFlag,
		"--out_dirs", fmt.Sprintf("1=%s,2=%s", filepath.Join(base, "fresh"), dirs[2]))
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("copy-sql-to-raft into a used directory: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(base, "fresh")); !os.IsNotExist(err) {
		t.Fatalf("a member was written although another was refused: %v", err)
	}

	// Start the cluster on the copied directories.
	net := memnet.New(7)
	defer net.Close()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	stores := map[uint64]*raftstore.Store{}
	stopAll := func() {
		for id, s := range stores {
			s.Stop()
			delete(stores, id)
		}
	}
	defer stopAll()
	for id := uint64(1); id <= 3; id++ {
		s, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{ID: id, Peers: peers, DataDir: dirs[id],
				TickInterval: 20 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1, Logger: lg},
			NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(id, h), nil },
		})
		if err != nil {
			t.Fatalf("starting node %d: %v", id, err)
		}
		stores[id] = s
	}
	waitFor(t, "a leader known to every node", func() bool {
		for _, s := range stores {
			if s.Status().Leader == 0 {
				return false
			}
		}
		return true
	})
	for id, s := range stores {
		if _, h := s.StateHash(); h != want.Hash() {
			t.Fatalf("node %d starts with state hash %x, want %x (the state read from SQL)", id, h, want.Hash())
		}
	}

	// Reads answer exactly what the SQL store answers.
	area := models.Volume4D{Cells: []models.CellID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	reads := []scd.Operation{
		&scd.GetOperationalIntent{Caller: "uss-a", ID: uid(4)},
		&scd.GetOperationalIntent{Caller: "uss-b", ID: uid(6)},
		&scd.GetSubscription{Caller: "uss-b", ID: uid(1)},
		&scd.GetSubscription{Caller: "uss-a", ID: uid(5)},
		&scd.GetConstraint{Caller: "uss-a", ID: uid(2)},
		&scd.GetUssAvailability{USS: "uss-b"},
		&scd.QueryOperationalIntents{Caller: "uss-a", Area: area},
		&scd.QueryConstraints{Caller: "uss-a", Area: area},
		&scd.QuerySubscriptions{Caller: "uss-b", Now: at(time.Minute), Area: area},
	}
	for _, op := range reads {
		sqlRes, sqlErr := src.Transact(ctx, op)
		for id, s := range stores {
			res, err := s.Transact(ctx, op)
			if err != nil || sqlErr != nil || !reflect.DeepEqual(res, sqlRes) {
				t.Fatalf("%T on node %d: %+v (%v); the SQL store answered %+v (%v)", op, id, res, err, sqlRes, sqlErr)
			}
		}
	}

	// A new write works on the cluster; the same write on the source
	// database keeps the two comparable.
	newWrite := func() scd.Operation {
		return &scd.PutConstraint{Caller: "uss-c", Now: at(time.Minute), ID: uid(7),
			Extents: vol([]models.CellID{9, 40}, 20*time.Minute, 30*time.Minute, false), USSBaseURL: "https://c.example"}
	}
	res, err := stores[3].Transact(ctx, newWrite())
	if err != nil {
		t.Fatalf("write on the new cluster: %v", err)
	}
	sqlRes, err := src.Transact(ctx, newWrite())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, sqlRes) {
		t.Fatalf("the new write answered %+v on the cluster, %+v on SQL", res, sqlRes)
	}
	var applied uint64
	var clusterHash [32]byte
	waitFor(t, "every node to apply the write", func() bool {
		first := true
		for _, s := range stores {
			i, h := s.StateHash()
			if h == want.Hash() {
				return false
			}
			if first {
				applied, clusterHash, first = i, h, false
			} else if i != applied || h != clusterHash {
				return false
			}
		}
		return true
	})

	// copy-raft-to-sql refuses a running node's directory.
	dstURL := pgtest.NewDatabase(t)
	mustRun(t, "migrate", "--datastore_url", dstURL)
	code, _, errOut = runCLI("copy-raft-to-sql", "--raft_data_dir", dirs[1], "--datastore_url", dstURL)
	if code != 1 || !strings.Contains(errOut, "in use") {
		t.Fatalf("copy-raft-to-sql on a running node: exit %d, stderr %q", code, errOut)
	}
	stopAll()

	// Raft → SQL, into a non-empty database: refused; into an empty one:
	// the exact entities of the source, and the node's directory untouched.
	before := treeHashes(t, dirs[2])
	code, _, errOut = runCLI("copy-raft-to-sql", "--raft_data_dir", dirs[2], "--datastore_url", srcURL)
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("copy-raft-to-sql into a non-empty database: exit %d, stderr %q", code, errOut)
	}
	out := mustRun(t, "copy-raft-to-sql", "--raft_data_dir", dirs[2], "--datastore_url", dstURL)
	if got := printedHash(t, out); got != fmt.Sprintf("%x", clusterHash) {
		t.Fatalf("copy-raft-to-sql read state hash %s, the cluster had %x", got, clusterHash)
	}
	if after := treeHashes(t, dirs[2]); !reflect.DeepEqual(before, after) {
		t.Fatalf("copy-raft-to-sql changed the data directory:\nbefore %v\nafter  %v", before, after)
	}
	wantAfter, err := sqlstore.Export(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sqlstore.Export(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	ge, we := got.Entities(), wantAfter.Entities()
	if len(we.Constraints) != 2 {
		t.Fatalf("the source should hold the new constraint too: %d constraints", len(we.Constraints))
	}
	if !reflect.DeepEqual(ge, we) {
		t.Fatalf("the database written from Raft differs from the source:\ngot  %s\nwant %s", dumpEntities(ge), dumpEntities(we))
	}
}

func dumpEntities(e *memstore.Entities) string {
	var b strings.Builder
	fmt.Fprintf(&b, "last write %s\n", e.LastWrite.Format(time.RFC3339Nano))
	for _, a := range e.Availabilities {
		fmt.Fprintf(&b, "  %+v\n", *a)
	}
	for _, s := range e.Subscriptions {
		fmt.Fprintf(&b, "  %+v\n", *s)
	}
	for _, c := range e.Constraints {
		fmt.Fprintf(&b, "  %+v lower %v upper %v\n", *c, c.AltitudeLower, c.AltitudeUpper)
	}
	for _, o := range e.OperationalIntents {
		fmt.Fprintf(&b, "  %+v\n", *o)
	}
	return b.String()
}

func TestCopyCommandsUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"copy-sql-to-raft", "--raft_data_dir", dir}, "--datastore_url is required"},
		{[]string{"copy-sql-to-raft", "--datastore_url", "postgres://x"}, "--raft_data_dir (with --raft_node_id) or --out_dirs is required"},
		{[]string{"copy-sql-to-raft", "--datastore_url", "postgres://x", "--raft_data_dir", dir, "--out_dirs", "1=" + dir}, "not both"},
		{[]string{"copy-sql-to-raft", "--datastore_url", "postgres://x", "--raft_peers", "1=a:1,1=b:1", "--raft_data_dir", dir}, "given twice"},
		{[]string{"copy-sql-to-raft", "--datastore_url", "postgres://x", "--raft_peers", "1=a:1,2=b:1", "--raft_node_id", "3", "--raft_data_dir", dir}, "not among the members"},
		{[]string{"copy-sql-to-raft", "--datastore_url", "postgres://x", "--raft_peers", "1=a:1,2=b:1", "--out_dirs", "1=" + dir + ",2=" + dir}, "share the directory"},
		{[]string{"copy-raft-to-sql", "--datastore_url", "postgres://x"}, "--raft_data_dir is required"},
		{[]string{"copy-raft-to-sql", "--raft_data_dir", dir}, "--datastore_url is required"},
	} {
		code, out, errOut := runCLI(tt.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "usage: dssctl "+tt.args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
	// Not a node's data directory: a failure, not a usage error.
	code, _, errOut := runCLI("copy-raft-to-sql", "--raft_data_dir", dir, "--datastore_url", "postgres://x")
	if code != 1 || !strings.Contains(errOut, "holds no WAL") {
		t.Errorf("copy-raft-to-sql on an empty directory: exit %d, stderr %q", code, errOut)
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
