package sqlstore

import (
	"context"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/pool"
	"github.com/raftdss/dss/pkg/store"
)

// TestPoolOperationsMatchMemstore runs the pool's operations (aux.md
// H1–H4) on PostgreSQL and the memstore in lockstep: same results, same
// errors, nanoseconds and absent times included.
func TestPoolOperationsMatchMemstore(t *testing.T) {
	l := newLockstep(t)
	ts := t0.Add(123456789 * time.Nanosecond)
	l.must(&pool.ListDSSInstances{})
	l.must(&pool.PutHeartbeat{InstanceID: "b", PublicEndpoint: "https://b", Reporter: "op", Source: "startup",
		Timestamp: ts, NextExpectedBefore: ts.Add(time.Minute + 7)})
	l.must(&pool.PutHeartbeat{InstanceID: "a", Source: "cron", Timestamp: ts})
	l.must(&pool.PutHeartbeat{InstanceID: "B", Source: "cron", Timestamp: ts})
	got := l.must(&pool.PutHeartbeat{InstanceID: "b", Reporter: "op2", Source: "manual", Timestamp: ts.Add(time.Hour)})
	insts := got.([]*models.DSSInstance)
	if len(insts) != 3 || insts[0].ID != "B" || insts[2].ID != "b" || insts[2].Heartbeat.Index != 2 {
		t.Fatalf("instances %+v", insts)
	}
	l.must(&pool.ListDSSInstances{})
	l.fails(&pool.PutHeartbeat{InstanceID: "a", Timestamp: ts}, models.CodeBadRequest)
	l.fails(&pool.PutHeartbeat{InstanceID: "a", Source: "a\x00", Timestamp: ts}, models.CodeBadRequest)
	l.must(&pool.ListDSSInstances{})
}

// TestDarIDIsTheDatabasesIdentity checks aux.md P2: the SQL store's dar_id
// is a UUID created by the migration, the same through every connection to
// one database and different for another database.
func TestDarIDIsTheDatabasesIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := openStore(t, nil), openStore(t, nil)
	idA, err := a.DarID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(idA) {
		t.Fatalf("dar_id %q is not a UUIDv4", idA)
	}
	again, err := a.DarID(ctx)
	if err != nil || again != idA {
		t.Fatalf("second read %q (%v), want %q", again, err, idA)
	}
	idB, err := b.DarID(ctx)
	if err != nil || idB == idA {
		t.Fatalf("another database: %q (%v), first %q", idB, err, idA)
	}
}

// TestExportImportKeepsDSSInstances: moving data between stores (dssctl
// copy) keeps the pool's instances, times to the nanosecond, and leaves
// each database its own dar_id (aux.md P2).
func TestExportImportKeepsDSSInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srcURL, dstURL := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	src := openStore(t, func(c *Config) { c.URL = srcURL })
	dst := openStore(t, func(c *Config) { c.URL = dstURL })
	ts := t0.Add(987654321 * time.Nanosecond)
	want, err := store.Do[[]*models.DSSInstance](ctx, src, &pool.PutHeartbeat{InstanceID: "n1", Source: "s",
		Reporter: "r", Timestamp: ts, NextExpectedBefore: ts.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Export(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	if st.LenDSSInstances() != 1 {
		t.Fatalf("exported %d instances", st.LenDSSInstances())
	}
	if err := Import(ctx, dstURL, st); err != nil {
		t.Fatal(err)
	}
	got, err := store.Do[[]*models.DSSInstance](ctx, dst, &pool.ListDSSInstances{})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("imported %+v (%v), want %+v", got, err, want)
	}
	a, errA := src.DarID(ctx)
	b, errB := dst.DarID(ctx)
	if errA != nil || errB != nil || a == b {
		t.Fatalf("dar_ids %q (%v) and %q (%v)", a, errA, b, errB)
	}
}
