package memstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// funcOp is a store.Operation backed by a function, standing in for the SCD
// operations of pkg/scd.
type funcOp struct {
	readOnly bool
	fn       func(ctx context.Context, r repos.Repo) (any, error)
}

func (o funcOp) Type() store.OpType { return 0xfff0 }
func (o funcOp) ReadOnly() bool     { return o.readOnly }
func (o funcOp) Execute(ctx context.Context, r repos.Repo) (any, error) {
	return o.fn(ctx, r)
}

func write(fn func(r repos.Repo) error) funcOp {
	return funcOp{fn: func(_ context.Context, r repos.Repo) (any, error) { return nil, fn(r) }}
}

func read(fn func(r repos.Repo) (any, error)) funcOp {
	return funcOp{readOnly: true, fn: func(_ context.Context, r repos.Repo) (any, error) { return fn(r) }}
}

// mustWrite applies a write op that must succeed.
func mustWrite(t testing.TB, s *State, fn func(r repos.Repo) error) {
	t.Helper()
	if _, err := s.Apply(context.Background(), write(fn)); err != nil {
		t.Fatal(err)
	}
}

// view runs fn in a read-only op and fails the test on error.
func view[T any](t testing.TB, s *State, fn func(r repos.Repo) (T, error)) T {
	t.Helper()
	res, err := s.Apply(context.Background(), read(func(r repos.Repo) (any, error) { return fn(r) }))
	if err != nil {
		t.Fatal(err)
	}
	return res.(T)
}

var ctx = context.Background()

// t0 is an arbitrary base instant; tests express times as offsets from it.
var t0 = time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func tp(tm time.Time) *time.Time { return &tm }

func fp(f float32) *float32 { return &f }

func uid(n int) models.ID { return models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)) }

func oir(n int, start, end int, lo, hi float32, cells ...models.CellID) *models.OperationalIntent {
	return &models.OperationalIntent{
		ID: uid(n), Manager: "uss1", Version: 1, State: models.StateAccepted,
		USSBaseURL: "https://uss1.example.com", StartTime: at(start), EndTime: at(end),
		AltitudeLower: lo, AltitudeUpper: hi, Cells: cells, UpdatedAt: at(0),
	}
}

func sub(n int, start, end int, notifyOIR, notifyCR bool, cells ...models.CellID) *models.Subscription {
	return &models.Subscription{
		ID: uid(n), Manager: "uss2", USSBaseURL: "https://uss2.example.com",
		NotifyForOperationalIntents: notifyOIR, NotifyForConstraints: notifyCR,
		StartTime: at(start), EndTime: at(end), Cells: cells, UpdatedAt: at(0),
	}
}

func constraint(n int, start, end int, cells ...models.CellID) *models.Constraint {
	return &models.Constraint{
		ID: uid(n), Manager: "uss3", Version: 1, USSBaseURL: "https://uss3.example.com",
		StartTime: at(start), EndTime: at(end), AltitudeLower: fp(0), AltitudeUpper: fp(100),
		Cells: cells, UpdatedAt: at(0),
	}
}

func vol(start, end *time.Time, lo, hi *float32, cells ...models.CellID) *models.Volume4D {
	return &models.Volume4D{Cells: cells, StartTime: start, EndTime: end, AltitudeLower: lo, AltitudeUpper: hi}
}

func oirIDs(xs []*models.OperationalIntent) []models.ID {
	ids := []models.ID{}
	for _, x := range xs {
		ids = append(ids, x.ID)
	}
	return ids
}

func subIDs(xs []*models.Subscription) []models.ID {
	ids := []models.ID{}
	for _, x := range xs {
		ids = append(ids, x.ID)
	}
	return ids
}

func crIDs(xs []*models.Constraint) []models.ID {
	ids := []models.ID{}
	for _, x := range xs {
		ids = append(ids, x.ID)
	}
	return ids
}
