package pool_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/pool"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/store"
)

var t0 = time.Date(2026, 12, 8, 3, 0, 0, 123456789, time.UTC)

func list(t *testing.T, s store.Store[repos.Repo]) []*models.DSSInstance {
	t.Helper()
	got, err := store.Do[[]*models.DSSInstance](context.Background(), s, &pool.ListDSSInstances{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPutHeartbeatIndexAndList checks aux.md H1–H3 on the memstore: the
// index counts an instance's heartbeats, the latest replaces the previous
// one, and the list is every instance in ID order.
func TestPutHeartbeatIndexAndList(t *testing.T) {
	s := memstore.New()
	ctx := context.Background()
	if got := list(t, s); got == nil || len(got) != 0 {
		t.Fatalf("empty pool lists %#v, want an empty non-nil list", got)
	}
	put := func(id, src string, ts time.Time) []*models.DSSInstance {
		t.Helper()
		got, err := store.Do[[]*models.DSSInstance](ctx, s, &pool.PutHeartbeat{InstanceID: id,
			PublicEndpoint: "https://" + id, Reporter: "op", Source: src, Timestamp: ts,
			NextExpectedBefore: ts.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	put("2", "startup", t0)
	put("1", "startup", t0)
	got := put("2", "cron", t0.Add(time.Second))
	want := []*models.DSSInstance{
		{ID: "1", PublicEndpoint: "https://1", Heartbeat: models.Heartbeat{Timestamp: t0, Reporter: "op",
			Source: "startup", Index: 1, NextExpectedBefore: t0.Add(time.Minute)}},
		{ID: "2", PublicEndpoint: "https://2", Heartbeat: models.Heartbeat{Timestamp: t0.Add(time.Second),
			Reporter: "op", Source: "cron", Index: 2, NextExpectedBefore: t0.Add(time.Second + time.Minute)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after heartbeats: %+v, want %+v", got, want)
	}
	if l := list(t, s); !reflect.DeepEqual(l, want) {
		t.Fatalf("list: %+v, want %+v", l, want)
	}
}

// TestPutHeartbeatRefusesEmptySource checks aux.md H4 in Execute itself
// (not only in the handler): the state is left as it was.
func TestPutHeartbeatRefusesEmptySource(t *testing.T) {
	s := memstore.New()
	before := s.Hash()
	for _, op := range []*pool.PutHeartbeat{
		{InstanceID: "1", Timestamp: t0},
		{InstanceID: "1", Source: string(bytes.Repeat([]byte("x"), pool.MaxFieldBytes+1)), Timestamp: t0},
		{InstanceID: "1", Source: "a\x00b", Timestamp: t0},
		{InstanceID: "1", Source: "\xff", Timestamp: t0},
		{InstanceID: "1", Source: "  ", Timestamp: t0},
	} {
		_, err := s.Transact(context.Background(), op)
		if models.CodeOf(err) != models.CodeBadRequest {
			t.Fatalf("%+v: %v, want BadRequest", op, err)
		}
	}
	if _, err := s.Transact(context.Background(), &pool.PutHeartbeat{Source: "s", Timestamp: t0}); models.CodeOf(err) != models.CodeInternal {
		t.Fatalf("no instance ID: %v, want Internal", err)
	}
	if s.Hash() != before {
		t.Fatal("a refused heartbeat changed the state")
	}
}

// TestHeartbeatsInSnapshot checks aux.md S1–S2: the instances are part of
// the snapshot and the state hash, and a state without any writes the
// version 1 snapshot that builds without the pool section read.
func TestHeartbeatsInSnapshot(t *testing.T) {
	s := memstore.NewState()
	var v1 bytes.Buffer
	if err := s.WriteSnapshot(&v1); err != nil {
		t.Fatal(err)
	}
	if v := v1.Bytes()[8:12]; !bytes.Equal(v, []byte{0, 0, 0, 1}) {
		t.Fatalf("empty state snapshot version %v, want 1", v)
	}
	empty := s.Hash()
	if _, err := s.Apply(context.Background(), &pool.PutHeartbeat{InstanceID: "n1", Source: "s", Timestamp: t0}); err != nil {
		t.Fatal(err)
	}
	if s.Hash() == empty {
		t.Fatal("a heartbeat did not change the state hash")
	}
	frozen := s.Freeze()
	var snap bytes.Buffer
	if err := s.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if frozen.Hash() != s.Hash() {
		t.Fatal("Freeze lost the DSS instances")
	}
	back, err := memstore.ReadSnapshot(bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != s.Hash() || back.LenDSSInstances() != 1 {
		t.Fatalf("restored state differs (%d instances)", back.LenDSSInstances())
	}
	old, err := memstore.ReadSnapshot(bytes.NewReader(v1.Bytes()))
	if err != nil || old.Hash() != empty {
		t.Fatalf("version 1 snapshot: %v", err)
	}
	// Every strict prefix is refused.
	for n := range snap.Len() {
		if _, err := memstore.ReadSnapshot(bytes.NewReader(snap.Bytes()[:n])); err == nil {
			t.Fatalf("prefix of %d bytes read", n)
		}
	}
}
