package scd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// The scenario tests run operations through memstore, whose Transact runs
// Execute all-or-nothing, exactly as every backend does.

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	ussA = "uss-a"
	ussB = "uss-b"
	urlA = "https://a.example"
	urlB = "https://b.example"
)

// env is one store plus a clock that the test advances by hand: every write
// gets a later Now, as the stores guarantee.
type env struct {
	t   *testing.T
	st  scd.Store
	now time.Time
}

func newEnv(t *testing.T) *env {
	return &env{t: t, st: memstore.New(), now: t0}
}

// tick advances the clock and returns the new request time.
func (e *env) tick() time.Time {
	e.now = e.now.Add(time.Second)
	return e.now
}

func run[T any](e *env, op scd.Operation) (T, error) {
	e.t.Helper()
	res, err := e.st.Transact(context.Background(), op)
	if err != nil {
		var zero T
		return zero, err
	}
	v, ok := res.(T)
	if !ok {
		e.t.Fatalf("%T returned %T", op, res)
	}
	return v, nil
}

func must[T any](e *env, op scd.Operation) T {
	e.t.Helper()
	v, err := run[T](e, op)
	if err != nil {
		e.t.Fatalf("%T: %v", op, err)
	}
	return v
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code models.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", code)
	}
	if got := models.CodeOf(err); got != code {
		t.Fatalf("got %v (%v), want %v", got, err, code)
	}
	var me *models.Error
	if errors.As(err, &me) && me.Message == "" {
		t.Errorf("error %v has no message", err)
	}
}

// id returns a valid UUIDv4 numbered n.
func id(n int) models.ID { return models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)) }

func at(minutes float64) *time.Time {
	v := t0.Add(time.Duration(minutes * float64(time.Minute)))
	return &v
}

func alt(v float32) *float32 { return &v }

// vol is a 4D volume over cells from t0+start to t0+end minutes between
// altitudes lo and hi.
func vol(cells []models.CellID, start, end float64, lo, hi float32) models.Volume4D {
	return models.Volume4D{Cells: cells, StartTime: at(start), EndTime: at(end), AltitudeLower: alt(lo), AltitudeUpper: alt(hi)}
}

func cells(cs ...models.CellID) []models.CellID { return cs }

// putOIR builds an accepted OIR create over cells 1..3, 0–60 min, 0–100 m.
func (e *env) putOIR(caller string, oid models.ID, mod func(*scd.PutOperationalIntent)) *scd.PutOperationalIntent {
	op := &scd.PutOperationalIntent{
		Caller:     caller,
		Now:        e.tick(),
		ID:         oid,
		State:      models.StateAccepted,
		Extents:    vol(cells(1, 2, 3), 0, 60, 0, 100),
		USSBaseURL: "https://" + caller + ".example/oir",
	}
	if mod != nil {
		mod(op)
	}
	return op
}

// createOIR creates an OIR and returns its stored view.
func (e *env) createOIR(caller string, oid models.ID, mod func(*scd.PutOperationalIntent)) scd.OperationalIntentResult {
	e.t.Helper()
	return must[scd.OperationalIntentResult](e, e.putOIR(caller, oid, mod))
}

// putSub builds an explicit subscription create over cells 1..3 for the next
// 60 minutes, notified for OIRs.
func (e *env) putSub(caller string, sid models.ID, mod func(*scd.PutSubscription)) *scd.PutSubscription {
	now := e.tick()
	end := now.Add(time.Hour)
	op := &scd.PutSubscription{
		Caller:                      caller,
		Now:                         now,
		ID:                          sid,
		Extents:                     models.Volume4D{Cells: cells(1, 2, 3), StartTime: &now, EndTime: &end},
		USSBaseURL:                  "https://" + caller + ".example/sub",
		NotifyForOperationalIntents: true,
	}
	if mod != nil {
		mod(op)
	}
	return op
}

func (e *env) getSub(caller string, sid models.ID) (scd.SubscriptionView, error) {
	return run[scd.SubscriptionView](e, &scd.GetSubscription{Caller: caller, ID: sid})
}

func (e *env) getOIR(oid models.ID) scd.OperationalIntentView {
	e.t.Helper()
	return must[scd.OperationalIntentView](e, &scd.GetOperationalIntent{Caller: ussA, ID: oid})
}

// indices flattens subscribers into subscription ID -> notification index,
// failing on a subscription listed twice.
func indices(t *testing.T, subs []scd.Subscriber) map[models.ID]int32 {
	t.Helper()
	out := map[models.ID]int32{}
	for _, s := range subs {
		for _, st := range s.Subscriptions {
			if _, dup := out[st.ID]; dup {
				t.Fatalf("subscription %s listed twice in %+v", st.ID, subs)
			}
			out[st.ID] = st.NotificationIndex
		}
	}
	return out
}
