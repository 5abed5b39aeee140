package scd_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// BenchmarkFlightAmongTileSubscriptions is dssbench's W1 flight as the state
// machine sees it: eight USSs each hold one explicit subscription per
// 10 × 10 km tile of the 100 × 100 km area; a flight (a 2 km square inside
// one tile, referencing its USS's tile subscription) is created, activated
// and deleted, and every one of those writes bumps the notification index of
// the eight subscriptions over its tile. Coverings are computed up front, as
// the HTTP layer does before an operation reaches the store.
func BenchmarkFlightAmongTileSubscriptions(b *testing.B) {
	st := memstore.NewState()
	now := t0
	subID := func(uss, tile int) models.ID { return benchID(4*benchOIRs + uss*100 + tile) }
	for uss := range 8 {
		for tile := range 100 {
			now = now.Add(time.Millisecond)
			cells := tileCells(b, tile)
			if _, err := st.Apply(context.Background(), &scd.PutSubscription{Caller: fmt.Sprintf("uss%d", uss), Now: now,
				ID: subID(uss, tile), Extents: models.Volume4D{Cells: cells, StartTime: ptr(t0), EndTime: ptr(t0.Add(23 * time.Hour))},
				USSBaseURL: "https://watcher.example", NotifyForOperationalIntents: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type flight struct {
		tile  int
		cells []models.CellID
	}
	flights := make([]flight, 64)
	for i := range flights {
		tile := rng.IntN(100)
		x, y := float64(tile%10)*10+rng.Float64()*8, float64(tile/10)*10+rng.Float64()*8
		flights[i] = flight{tile, square2km(b, x, y)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := flights[i%len(flights)]
		now = now.Add(time.Millisecond)
		start := t0.Add(time.Hour + time.Duration(rng.IntN(3600))*time.Second)
		op := &scd.PutOperationalIntent{Caller: "uss1", Now: now, ID: benchID(2*benchOIRs + i),
			State: models.StateAccepted, USSBaseURL: "https://bench.example", SubscriptionID: subID(1, f.tile),
			Extents: models.Volume4D{Cells: f.cells, StartTime: ptr(start), EndTime: ptr(start.Add(10 * time.Minute)),
				AltitudeLower: ptr[float32](0), AltitudeUpper: ptr[float32](120)}}
		res, err := st.Apply(context.Background(), op)
		if err != nil {
			b.Fatal(err)
		}
		op.Now, op.State = now.Add(time.Microsecond), models.StateActivated
		op.OVN = res.(scd.OperationalIntentResult).OIR.OIR.OVN()
		if res, err = st.Apply(context.Background(), op); err != nil {
			b.Fatal(err)
		}
		oir := res.(scd.OperationalIntentResult).OIR.OIR
		if _, err := st.Apply(context.Background(), &scd.DeleteOperationalIntent{Caller: "uss1", ID: oir.ID, OVN: oir.OVN()}); err != nil {
			b.Fatal(err)
		}
	}
}
