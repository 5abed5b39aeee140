package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memApp records applied entries.
type memApp struct {
	mu      sync.Mutex
	entries []string
}

func (a *memApp) Apply(_ uint64, data []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, string(data))
	return nil
}

func (a *memApp) Snapshot() (SnapshotWriter, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	captured := slices.Clone(a.entries)
	return func(dst []byte) ([]byte, error) { return append(dst, strings.Join(captured, "\n")...), nil }, nil
}

func (a *memApp) Restore(b []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = nil
	if len(b) > 0 {
		a.entries = strings.Split(string(b), "\n")
	}
	return nil
}

func (a *memApp) snapshotOf() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.entries...)
}

func startSingle(t *testing.T, dir string, app Application, tune func(*Config)) (*Node, error) {
	t.Helper()
	net := memnet.New(1)
	t.Cleanup(net.Close)
	cfg := Config{
		ID:            1,
		Peers:         map[uint64]string{1: "self"},
		DataDir:       dir,
		TickInterval:  10 * time.Millisecond,
		ElectionTicks: 10,
		Logger:        zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
	if tune != nil {
		tune(&cfg)
	}
	return New(cfg, app, func(h transport.Handler) (transport.Transport, error) {
		return net.Transport(1, h), nil
	})
}

// write proposes payloads one by one and waits for each to apply.
func write(t *testing.T, n *Node, app *memApp, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		before := len(app.snapshotOf())
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := n.Propose(ctx, []byte(p))
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("propose %q: %v", p, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for len(app.snapshotOf()) == before {
			if time.Now().After(deadline) {
				t.Fatalf("%q never applied", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func payloads(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%03d-%s", prefix, i, strings.Repeat("x", 512)))
	}
	return out
}

func lastWALFile(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no WAL files: %v", err)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

// usedLength is the length of the file up to its last non-zero byte (WAL
// segments are preallocated with zeros).
func usedLength(b []byte) int {
	i := len(b)
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return i
}

func TestRestartReplaysWAL(t *testing.T) {
	dir := t.TempDir()
	app := &memApp{}
	n, err := startSingle(t, dir, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("a", 20)
	write(t, n, app, want...)
	n.Stop()
	n.Stop() // idempotent

	app2 := &memApp{}
	n2, err := startSingle(t, dir, app2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := app2.snapshotOf(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after restart got %d entries, want %d", len(got), len(want))
	}
	st := n2.Status()
	if st.Leader != 1 || !st.IsLeader || st.Applied < uint64(len(want)) || st.Commit < st.Applied || st.Term == 0 {
		t.Fatalf("unexpected status %+v", st)
	}
}

func TestSnapshotsCompactAndPurge(t *testing.T) {
	// Small WAL segments so that purging has segments to delete.
	saved := wal.SegmentSizeBytes
	wal.SegmentSizeBytes = 16 << 10
	defer func() { wal.SegmentSizeBytes = saved }()
	dir := t.TempDir()
	app := &memApp{}
	tune := func(c *Config) { c.SnapshotEntries = 10; c.CatchUpEntries = 3 }
	n, err := startSingle(t, dir, app, tune)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("s", 200) // ~110 KiB of entries: 7 segments unpurged
	write(t, n, app, want...)
	n.Stop()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	t.Logf("%d WAL segments after purge", len(segs))
	if len(segs) > 3 {
		t.Fatalf("%d WAL segments kept after snapshots, want ≤ 3", len(segs))
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	if len(snaps) == 0 || len(snaps) > keepSnapFiles {
		t.Fatalf("%d snapshot files, want 1..%d", len(snaps), keepSnapFiles)
	}
	app2 := &memApp{}
	n2, err := startSingle(t, dir, app2, tune)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := app2.snapshotOf(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after restart from snapshot got %d entries, want %d", len(got), len(want))
	}
}

// A torn final record (a write cut short by power loss) is repaired: the
// node starts with everything before it.
func TestTornWALTailIsRepaired(t *testing.T) {
	dir := t.TempDir()
	app := &memApp{}
	n, err := startSingle(t, dir, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("t", 10)
	write(t, n, app, want...)
	n.Stop()

	f := lastWALFile(t, dir)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the last record short.
	if err := os.Truncate(f, int64(usedLength(b)-5)); err != nil {
		t.Fatal(err)
	}

	app2 := &memApp{}
	n2, err := startSingle(t, dir, app2, nil)
	if err != nil {
		t.Fatalf("restart after torn tail: %v", err)
	}
	defer n2.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	got := app2.snapshotOf()
	// The torn record is the last write's entry or the hard state after it.
	if len(got) < len(want)-1 || strings.Join(got, ",") != strings.Join(want[:len(got)], ",") {
		t.Fatalf("after repair got %d entries, want a prefix of at least %d", len(got), len(want)-1)
	}
	write(t, n2, app2, "after-repair")
}

// A CRC mismatch in the middle of the WAL is corruption, not a torn write:
// the node refuses to start.
func TestCorruptWALMiddleRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	app := &memApp{}
	n, err := startSingle(t, dir, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, n, app, payloads("c", 10)...)
	n.Stop()

	f := lastWALFile(t, dir)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the payload of an early entry.
	at := bytes.Index(b, []byte("c-002-xxxx"))
	if at < 0 {
		t.Fatal("entry c-002 not found in WAL")
	}
	b[at+8] ^= 0xff
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = startSingle(t, dir, &memApp{}, nil)
	if !errors.Is(err, ErrCorruptWAL) {
		t.Fatalf("start on corrupt WAL: got %v, want ErrCorruptWAL", err)
	}
	t.Logf("refused: %v", err)
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"zero id", Config{DataDir: "x"}},
		{"no data dir", Config{ID: 1}},
		{"self not in peers", Config{ID: 1, DataDir: "x", Peers: map[uint64]string{2: "a"}}},
		{"election not above heartbeat", Config{ID: 1, DataDir: "x", ElectionTicks: 2, HeartbeatTicks: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.withDefaults(); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	c, err := Config{ID: 1, DataDir: "x"}.withDefaults()
	if err != nil || c.TickInterval != defaultTickInterval || c.ElectionTicks != defaultElectionTicks ||
		c.SnapshotEntries != defaultSnapshotEntries || c.CatchUpEntries != defaultCatchUpEntries {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

// TestStatsCountWALSaves checks the group-commit counters: every entry a
// node writes is counted once, and sequential writes need a fsync each.
func TestStatsCountWALSaves(t *testing.T) {
	app := &memApp{}
	n, err := startSingle(t, t.TempDir(), app, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	write(t, n, app, "warm")
	before := n.Stats()
	write(t, n, app, payloads("s", 10)...)
	d := n.Stats().Sub(before)
	if d.EntriesSaved != 10 || d.WALSyncs < 10 || d.WALSaves < d.WALSyncs {
		t.Fatalf("10 sequential writes: %+v", d)
	}
	if d.EntriesApplied < 10 || d.ApplyBatches == 0 || d.WALSaveTime <= 0 || d.Readys < d.WALSaves {
		t.Fatalf("10 sequential writes: %+v", d)
	}
	if got := d.EntriesPerSync(); got <= 0 || got > 1 {
		t.Fatalf("EntriesPerSync of sequential writes = %v, want (0, 1]", got)
	}
	if (Stats{}).EntriesPerSync() != 0 {
		t.Fatal("EntriesPerSync of no syncs is not 0")
	}
}

// TestTransportMayCallBackDuringNew: a transport reports and delivers from
// its own goroutines as soon as it exists, before New returns (a peer that
// cannot be dialled yet, or one that sends first). The node must already
// be able to take those calls.
func TestTransportMayCallBackDuringNew(t *testing.T) {
	net := memnet.New(1)
	t.Cleanup(net.Close)
	n, err := New(Config{
		ID:           1,
		Peers:        map[uint64]string{1: "self"},
		DataDir:      t.TempDir(),
		TickInterval: 10 * time.Millisecond,
		Logger:       zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}, &memApp{}, func(h transport.Handler) (transport.Transport, error) {
		h.ReportUnreachable(2)
		// A stray response: stepped, then ignored by a follower.
		if err := h.Process(context.Background(), &raftpb.Message{
			Type: raftpb.MessageType_MsgHeartbeatResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(1),
		}); err != nil {
			t.Errorf("Process during New: %v", err)
		}
		return net.Transport(1, h), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()
}

// TestEmptyWALBootstrapsAgain: a node stopped after creating its WAL but
// before its first save has promised nothing; restarting must bootstrap it
// as a new member rather than leave it with no configuration.
func TestEmptyWALBootstrapsAgain(t *testing.T) {
	dir := t.TempDir()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	w, err := wal.Create(lg, walDir(dir), []byte("raftdss node 1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	app := &memApp{}
	n, err := startSingle(t, dir, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	write(t, n, app, "after-empty-wal")
}

// TestBootstrapPeersAreCanonical: every member must append identical
// bootstrap entries whatever its map order or its view of addresses.
func TestBootstrapPeersAreCanonical(t *testing.T) {
	a := bootstrapPeers(Config{ID: 2, Peers: map[uint64]string{3: "10.0.0.3:1", 1: "a:1", 2: "b:2"}})
	b := bootstrapPeers(Config{ID: 1, Peers: map[uint64]string{1: "proxy:9", 2: "proxy:8", 3: "proxy:7"}})
	if !reflect.DeepEqual(a, b) || len(a) != 3 || a[0].ID != 1 || a[2].ID != 3 {
		t.Fatalf("bootstrap peers differ: %+v vs %+v", a, b)
	}
	// The context names the cluster, never an address.
	if c, ok := parseClusterContext(a[0].Context); !ok || c != clusterIDOf([]uint64{3, 2, 1}) {
		t.Fatalf("bootstrap context %v: want the cluster ID of members 1-3", a[0].Context)
	}
	if other := bootstrapPeers(Config{ID: 1, Peers: map[uint64]string{1: "a", 2: "b", 4: "c"}}); bytes.Equal(other[0].Context, a[0].Context) {
		t.Fatal("clusters of different initial members have the same ID")
	}
	if got := bootstrapPeers(Config{ID: 7}); len(got) != 1 || got[0].ID != 7 {
		t.Fatalf("single node bootstrap = %+v", got)
	}
}

// TestReadBarrierStats checks the read-batching counters: every barrier is
// counted once, and concurrent barriers share rounds.
func TestReadBarrierStats(t *testing.T) {
	app := &memApp{}
	n, err := startSingle(t, t.TempDir(), app, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.ReadBarrier(ctx); err != nil { // waits for the leader
		t.Fatal(err)
	}
	before := n.Stats()
	const readers = 64
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() { errs <- n.ReadBarrier(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d := n.Stats().Sub(before)
	if d.ReadBarriers != readers {
		t.Fatalf("ReadBarriers = %d, want %d", d.ReadBarriers, readers)
	}
	if d.ReadRounds < 1 || d.ReadRounds > readers {
		t.Fatalf("ReadRounds = %d for %d barriers", d.ReadRounds, readers)
	}
	t.Logf("%d barriers in %d rounds", d.ReadBarriers, d.ReadRounds)
}

// A proposal forwarded to a node that knows no leader must not block its
// caller: transports deliver a peer's messages in order, and the votes
// queued behind a blocked proposal could be the ones that elect a leader.
func TestForwardedProposalWithoutLeaderDoesNotBlock(t *testing.T) {
	net := memnet.New(1)
	t.Cleanup(net.Close)
	// Two members, only one running: it can never elect a leader.
	n, err := New(Config{
		ID: 1, Peers: map[uint64]string{1: "a", 2: "b"}, DataDir: t.TempDir(),
		TickInterval: 10 * time.Millisecond, ElectionTicks: 10,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}, &memApp{}, func(h transport.Handler) (transport.Transport, error) { return net.Transport(1, h), nil })
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	prop := &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1),
		Entries: []*raftpb.Entry{{Data: []byte("forwarded")}}}
	done := make(chan error, 1)
	go func() { done <- n.Process(context.Background(), prop) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Process: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Process of a forwarded proposal blocked while no leader is known")
	}
}
