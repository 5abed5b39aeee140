package scd_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/geo"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// The performance targets, measured on the real operations: with
// 100,000 stored OIRs (2 km squares with 16 vertices scattered over
// 100 × 100 km), a PUT OIR Execute (key check + write + notifications) and a
// 2 km query each take ≤ 50 µs on the memstore.

const (
	benchOIRs   = 100_000
	benchLat0   = 34.0
	benchLng0   = -118.0
	kmPerDegLat = 111.2
)

// square2km returns the cells of a 2 km square with 16 vertices whose
// south-west corner is (x, y) km from the origin.
func square2km(b *testing.B, x, y float64) []models.CellID {
	b.Helper()
	kmPerDegLng := kmPerDegLat * 0.829 // cos(34°)
	var vs []models.LatLng
	for side := range 4 {
		for i := range 4 {
			f := float64(i) / 4 * 2
			var dx, dy float64
			switch side {
			case 0:
				dx, dy = f, 0
			case 1:
				dx, dy = 2, f
			case 2:
				dx, dy = 2-f, 2
			default:
				dx, dy = 0, 2-f
			}
			vs = append(vs, models.LatLng{Lat: benchLat0 + (y+dy)/kmPerDegLat, Lng: benchLng0 + (x+dx)/kmPerDegLng})
		}
	}
	cells, err := geo.CoverPolygon(vs)
	if err != nil {
		b.Fatal(err)
	}
	return cells
}

func benchID(i int) models.ID {
	return models.ID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
}

// tileCells covers tile (0–99) of the 10 × 10 grid of 10 km tiles over the
// 100 × 100 km area, as the union of 25 2 km squares.
func tileCells(b *testing.B, tile int) []models.CellID {
	b.Helper()
	x, y := float64(tile%10)*10, float64(tile/10)*10
	var cells []models.CellID
	for dx := 0.0; dx < 10; dx += 2 {
		for dy := 0.0; dy < 10; dy += 2 {
			cells = models.UnionCells(cells, square2km(b, x+dx, y+dy))
		}
	}
	return cells
}

// loadedState holds benchOIRs OIRs of four USSs and one explicit
// subscription per 10 × 10 km tile (as dssbench's W1 flights use), all
// written through the real operations.
func loadedState(b *testing.B) (*memstore.State, time.Time) {
	b.Helper()
	st := memstore.NewState()
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	start, end := t0.Add(time.Hour), t0.Add(2*time.Hour)
	for i := range 100 {
		now = now.Add(time.Millisecond)
		cells := tileCells(b, i)
		if _, err := st.Apply(context.Background(), &scd.PutSubscription{Caller: "watcher", Now: now, ID: benchID(4*benchOIRs + i),
			Extents: models.Volume4D{Cells: cells}, USSBaseURL: "https://watcher.example", NotifyForOperationalIntents: true}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchOIRs {
		now = now.Add(time.Millisecond)
		cells := square2km(b, rng.Float64()*98, rng.Float64()*98)
		op := &scd.PutOperationalIntent{
			Caller: fmt.Sprintf("uss%d", i%4), Now: now, ID: benchID(i), State: models.StateAccepted,
			// Spread over 24 h so a query with a 1 h window sees a realistic share.
			Extents: models.Volume4D{Cells: cells, StartTime: ptr(start.Add(time.Duration(i%24) * time.Hour)),
				EndTime: ptr(end.Add(time.Duration(i%24) * time.Hour)), AltitudeLower: ptr[float32](0), AltitudeUpper: ptr[float32](120)},
			USSBaseURL: "https://uss.example",
		}
		if _, err := st.Apply(context.Background(), op); err != nil {
			// A create that overlaps earlier OIRs fails the key check:
			// retry with their OVNs as a USS would.
			me, ok := err.(*models.Error)
			if !ok || me.Code != models.CodeMissingKey {
				b.Fatal(err)
			}
			for _, o := range me.MissingOIRs {
				op.Key = append(op.Key, o.OVN())
			}
			if _, err := st.Apply(context.Background(), op); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st, now
}

func ptr[T any](v T) *T { return &v }

func BenchmarkExecuteAt100kOIRs(b *testing.B) {
	if testing.Short() {
		b.Skip("loads 100,000 OIRs")
	}
	st, now := loadedState(b)
	rng := rand.New(rand.NewPCG(3, 4))
	created := 0

	b.Run("PutOperationalIntent", func(b *testing.B) {
		// Each iteration creates a new OIR somewhere in the area with a key
		// holding the OVNs of everything it overlaps, so the key check runs
		// in full and passes, then the write and the notifications. Building
		// the key (a query) is not timed.
		for range b.N {
			b.StopTimer()
			cells := square2km(b, rng.Float64()*98, rng.Float64()*98)
			vol := models.Volume4D{Cells: cells, StartTime: ptr(t0.Add(time.Hour)), EndTime: ptr(t0.Add(2 * time.Hour)),
				AltitudeLower: ptr[float32](0), AltitudeUpper: ptr[float32](120)}
			res, err := st.Apply(context.Background(), &scd.QueryOperationalIntents{Caller: "bench", Area: vol})
			if err != nil {
				b.Fatal(err)
			}
			var key []models.OVN
			for _, v := range res.([]scd.OperationalIntentView) {
				key = append(key, v.OIR.OVN())
			}
			now = now.Add(time.Millisecond)
			created++ // IDs continue across the benchmark's repeated runs
			op := &scd.PutOperationalIntent{Caller: "bench", Now: now, ID: benchID(2*benchOIRs + created),
				State: models.StateAccepted, Extents: vol, Key: key, USSBaseURL: "https://bench.example",
				NewSubscription: &scd.NewSubscription{USSBaseURL: "https://bench.example"}, NewSubscriptionID: benchID(3*benchOIRs + created)}
			b.StartTimer()
			res, err = st.Apply(context.Background(), op)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			// Delete the new OIR (and so its implicit subscription) again,
			// so every iteration, and the query benchmark after this one,
			// sees the loaded state of 100,000 OIRs at constant density:
			// left in place, the creates would pile up in one hour and
			// slow both benchmarks down as b.N grows.
			oir := res.(scd.OperationalIntentResult).OIR.OIR
			if _, err := st.Apply(context.Background(), &scd.DeleteOperationalIntent{Caller: "bench", ID: oir.ID, OVN: oir.OVN()}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})

	b.Run("Query2km", func(b *testing.B) {
		areas := make([]*scd.QueryOperationalIntents, 256)
		for i := range areas {
			areas[i] = &scd.QueryOperationalIntents{Caller: "bench", Area: models.Volume4D{
				Cells:     square2km(b, rng.Float64()*98, rng.Float64()*98),
				StartTime: ptr(t0.Add(time.Hour)), EndTime: ptr(t0.Add(2 * time.Hour))}}
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := st.Apply(context.Background(), areas[i%len(areas)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEvictBatchAt100kOIRs is one eviction batch of 500 OIRs among
// 100k, all expired: what a client write waits behind at most.
func BenchmarkEvictBatchAt100kOIRs(b *testing.B) {
	st, now := loadedState(b)
	op := &scd.EvictExpired{Before: now.Add(48 * time.Hour), Limit: 500}
	b.ResetTimer()
	for b.Loop() {
		res, err := st.Apply(context.Background(), op)
		if err != nil {
			b.Fatal(err)
		}
		if !res.(scd.EvictionResult).Full {
			b.Fatal("ran out of OIRs: lower -benchtime")
		}
	}
}
