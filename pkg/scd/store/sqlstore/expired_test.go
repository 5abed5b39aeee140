package sqlstore

import (
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// TestEvictionSameAsMemstore evicts in batches on both backends: the same
// entities go, batch by batch, with the same counts (sub-microsecond end
// times included), and what stays reads the same.
func TestEvictionSameAsMemstore(t *testing.T) {
	l := newLockstep(t)
	now := t0
	tick := func() time.Time { now = now.Add(time.Second + 7); return now }
	end := func(minutes int) *time.Time { return ptr(t0.Add(time.Duration(minutes)*time.Minute + 3)) }

	// Explicit subscription used by OIR 1; implicit subscription shared by
	// OIRs 2 and 3; constraints; a long-lived subscription.
	l.must(&scd.PutSubscription{Caller: "uss-a", Now: tick(), ID: uid(100),
		Extents:    models.Volume4D{Cells: cells(1, 2), StartTime: ptr(now), EndTime: end(90)},
		USSBaseURL: "https://a.example", NotifyForOperationalIntents: true})
	l.must(&scd.PutSubscription{Caller: "uss-b", Now: tick(), ID: uid(101),
		Extents:    models.Volume4D{Cells: cells(1, 2, 3), StartTime: ptr(now), EndTime: end(600)},
		USSBaseURL: "https://b.example", NotifyForOperationalIntents: true, NotifyForConstraints: true})
	oirVol := func(cs []models.CellID, endMin int) models.Volume4D {
		return models.Volume4D{Cells: cs, StartTime: ptr(now.Add(time.Minute)), EndTime: end(endMin),
			AltitudeLower: ptr(float32(0)), AltitudeUpper: ptr(float32(100))}
	}
	o1 := l.must(&scd.PutOperationalIntent{Caller: "uss-a", Now: tick(), ID: uid(1), State: models.StateAccepted,
		Extents: oirVol(cells(1), 30), USSBaseURL: "https://a.example/oir", SubscriptionID: uid(100)}).(scd.OperationalIntentResult).OIR.OIR
	o2 := l.must(&scd.PutOperationalIntent{Caller: "uss-a", Now: tick(), ID: uid(2), State: models.StateAccepted,
		Extents: oirVol(cells(2), 20), USSBaseURL: "https://a.example/oir",
		NewSubscription: &scd.NewSubscription{USSBaseURL: "https://a.example"}, NewSubscriptionID: uid(200)}).(scd.OperationalIntentResult).OIR.OIR
	l.must(&scd.PutOperationalIntent{Caller: "uss-a", Now: tick(), ID: uid(3), State: models.StateAccepted,
		Extents: oirVol(cells(3), 40), USSBaseURL: "https://a.example/oir", SubscriptionID: uid(200),
		Key: []models.OVN{o1.OVN(), o2.OVN()}})
	for n := range 4 {
		l.must(&scd.PutConstraint{Caller: "uss-c", Now: tick(), ID: uid(300 + n),
			Extents: models.Volume4D{Cells: cells(4), StartTime: ptr(now), EndTime: end(10 + n)}, USSBaseURL: "https://c.example"})
	}

	l.fails(&scd.EvictExpired{Before: t0, Limit: 0}, models.CodeBadRequest)
	// The exact boundary: constraint 300 ends at t0+10min+3ns.
	l.must(&scd.EvictExpired{Before: *end(10), Limit: 100})
	l.must(&scd.PreviewEviction{Before: *end(10)})
	l.must(&scd.GetConstraint{Caller: "uss-c", ID: uid(300)})
	l.must(&scd.PreviewEviction{Before: end(10).Add(time.Nanosecond)})
	l.must(&scd.EvictExpired{Before: end(10).Add(time.Nanosecond), Limit: 100})
	l.fails(&scd.GetConstraint{Caller: "uss-c", ID: uid(300)}, models.CodeNotFound)

	// At 45 minutes, in batches of 2: OIRs 1 to 3, the implicit
	// subscription with them, constraints 301 to 303; subscription 100
	// lives until 90 minutes.
	want := l.must(&scd.PreviewEviction{Before: *end(45)}).(scd.EvictionCounts)
	if want != (scd.EvictionCounts{OperationalIntents: 3, Constraints: 3, Subscriptions: 1, ImplicitReleased: 1}) {
		t.Fatalf("preview at 45 min = %+v", want)
	}
	var got scd.EvictionCounts
	for {
		res := l.must(&scd.EvictExpired{Before: *end(45), Limit: 2}).(scd.EvictionResult)
		got.Add(res.Evicted)
		if !res.Full {
			break
		}
	}
	if got != want {
		t.Fatalf("batches evicted %+v, preview said %+v", got, want)
	}
	l.fails(&scd.GetSubscription{Caller: "uss-a", ID: uid(200)}, models.CodeNotFound)
	l.must(&scd.GetSubscription{Caller: "uss-a", ID: uid(100)})
	l.must(&scd.EvictExpired{Before: *end(91), Limit: 100})
	l.fails(&scd.GetSubscription{Caller: "uss-a", ID: uid(100)}, models.CodeNotFound)
	l.must(&scd.GetSubscription{Caller: "uss-b", ID: uid(101)})
	l.must(&scd.QuerySubscriptions{Caller: "uss-b", Now: tick(), Area: models.Volume4D{Cells: cells(1, 2, 3, 4)}})
}
