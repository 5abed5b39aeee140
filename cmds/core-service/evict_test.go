package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

var evictT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func evictID(n int) models.ID { return models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n+1)) }

// expiredStore holds n constraints that ended at evictT0 + 1h.
func expiredStore(t *testing.T, n int) *memstore.Store {
	t.Helper()
	st := memstore.New()
	start, end := evictT0, evictT0.Add(time.Hour)
	for i := range n {
		_, err := st.Transact(context.Background(), &scd.PutConstraint{Caller: "uss1", Now: evictT0.Add(time.Duration(i+1) * time.Second),
			ID: evictID(i), Extents: models.Volume4D{Cells: []models.CellID{models.CellID(1 + i)}, StartTime: &start, EndTime: &end},
			USSBaseURL: "https://uss1.example"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func testEvictor(t *testing.T, st *memstore.Store, leader func() bool) (*evictor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := newEvictor(st, st, leader, 24*time.Hour, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	// Two days after the constraints ended: past the 24 h retention.
	e.now = func() time.Time { return evictT0.Add(49 * time.Hour) }
	return e, reg
}

func crCount(t *testing.T, st *memstore.Store) int {
	t.Helper()
	_, crs, _, err := st.EntityCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return crs
}

// The schedule runs only while leader() holds, loops batches until the
// backlog is gone, and stops, goroutine included, when told.
func TestEvictScheduleLeaderOnly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	st := expiredStore(t, 7)
	var leader atomic.Bool
	e, reg := testEvictor(t, st, leader.Load)
	e.batch = 3 // three batches: 3, 3, 1
	stop := e.start(5 * time.Millisecond)
	defer stop()

	time.Sleep(50 * time.Millisecond)
	if n := crCount(t, st); n != 7 {
		t.Fatalf("a follower evicted: %d constraints left", n)
	}
	leader.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for crCount(t, st) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not evict: %d constraints left", crCount(t, st))
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop() // idempotent
	for _, tc := range []struct {
		name, kind string
		want       float64
	}{
		{"dss_evicted_entities_total", "constraint", 7},
		{"dss_evicted_entities_total", "operational_intent", 0},
		{"dss_entities", "constraint", 0},
		{"dss_eviction_last_run_timestamp_seconds", "", float64(evictT0.Add(49 * time.Hour).Unix())},
	} {
		if got, ok := metricValue(t, reg, tc.name, tc.kind); !ok || got != tc.want {
			t.Errorf("%s{kind=%q} = %v (found %v), want %v", tc.name, tc.kind, got, ok, tc.want)
		}
	}
}

// metricValue reads the value of the series of name with label kind (""
// for a metric without labels).
func metricValue(t *testing.T, reg *prometheus.Registry, name, kind string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					label = l.GetValue()
				}
			}
			if label != kind {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// Stop ends a run in flight: the store blocks, the run's ctx ends it.
func TestEvictStopIsBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	st := expiredStore(t, 1)
	e, _ := testEvictor(t, st, func() bool { return true })
	blocked := make(chan struct{})
	e.store = blockingStore{entered: blocked}
	stop := e.start(time.Millisecond)
	<-blocked
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return while a batch was in flight")
	}
}

// blockingStore's Transact waits for its ctx.
type blockingStore struct{ entered chan struct{} }

func (b blockingStore) Transact(ctx context.Context, _ scd.Operation) (any, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, &models.Error{Code: models.CodeUnavailable, Message: "stopped", Cause: ctx.Err()}
}

func TestEvictAdminEndpoint(t *testing.T) {
	st := expiredStore(t, 4)
	e, _ := testEvictor(t, st, func() bool { return false })
	e.batch = 3
	srv := httptest.NewServer(evictHandler(e, 5*time.Second))
	defer srv.Close()
	call := func(method string) evictJSON {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/evict", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /evict: %s", method, resp.Status)
		}
		var out evictJSON
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := evictJSON{DryRun: true, Before: evictT0.Add(25 * time.Hour).Format(time.RFC3339Nano), Constraints: 4, Complete: true}
	if got := call(http.MethodGet); got != want {
		t.Fatalf("dry run = %+v, want %+v", got, want)
	}
	if n := crCount(t, st); n != 4 {
		t.Fatalf("the dry run evicted: %d left", n)
	}
	want.DryRun = false
	if got := call(http.MethodPost); got != want {
		t.Fatalf("evict now = %+v, want %+v", got, want)
	}
	if n := crCount(t, st); n != 0 {
		t.Fatalf("%d constraints left", n)
	}
	want.Constraints = 0
	if got := call(http.MethodPost); got != want {
		t.Fatalf("second run = %+v, want %+v", got, want)
	}
	resp, err := http.Post(srv.URL+"/evict/x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /evict/x: %s", resp.Status)
	}
}
