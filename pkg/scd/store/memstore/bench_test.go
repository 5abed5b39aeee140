package memstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// The load model of the targets: OIRs of ~2 km squares (9 level-13 cells:
// the cell of a point and its 8 neighbours) scattered over 100 × 100 km,
// each lasting an hour somewhere in one day, written by 20 USSs.
const (
	benchOIRs   = 100_000
	benchSubs   = 2_000
	benchUSSs   = 20
	areaLat0    = 46.5
	areaLng0    = 7.0
	areaDegLat  = 0.9   // ≈ 100 km
	areaDegLng  = 1.3   // ≈ 100 km at 46.5°
	maxBytesOIR = 1200. // live heap target per stored OIR
)

type loadGen struct {
	rng *rand.Rand
}

func newLoadGen() *loadGen { return &loadGen{rng: rand.New(rand.NewPCG(42, 7))} }

func (g *loadGen) id() models.ID {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return models.ID(fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
		a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff))
}

// cells returns the 9 level-13 cells around a random point of the area.
func (g *loadGen) cells() []models.CellID {
	ll := s2.LatLngFromDegrees(areaLat0+g.rng.Float64()*areaDegLat, areaLng0+g.rng.Float64()*areaDegLng)
	c := s2.CellIDFromLatLng(ll).Parent(13)
	out := []models.CellID{models.CellID(int64(c))}
	for _, n := range c.AllNeighbors(13) {
		out = append(out, models.CellID(int64(n)))
	}
	return models.NormalizeCells(out)
}

func (g *loadGen) oir(id models.ID) *models.OperationalIntent {
	uss := g.rng.IntN(benchUSSs)
	start := t0.Add(time.Duration(g.rng.Int64N(int64(24 * time.Hour))))
	lo := float32(g.rng.IntN(100))
	return &models.OperationalIntent{
		ID: id, Manager: fmt.Sprintf("uss%d", uss), Version: 1, State: models.StateAccepted,
		USSBaseURL: fmt.Sprintf("https://uss%d.example.com/utm", uss),
		StartTime:  start, EndTime: start.Add(time.Hour),
		AltitudeLower: lo, AltitudeUpper: lo + 120, Cells: g.cells(), UpdatedAt: t0,
	}
}

// query is a 2 km search: 9 cells, a one-hour window and an altitude band.
func (g *loadGen) query() *models.Volume4D {
	start := t0.Add(time.Duration(g.rng.Int64N(int64(24 * time.Hour))))
	return &models.Volume4D{Cells: g.cells(), StartTime: tp(start), EndTime: tp(start.Add(time.Hour)),
		AltitudeLower: fp(0), AltitudeUpper: fp(150)}
}

// loadState stores n OIRs (and benchSubs subscriptions) and returns their IDs.
func loadState(tb testing.TB, g *loadGen, n int) (*State, []models.ID) {
	s := NewState()
	ids := make([]models.ID, n)
	const batch = 1000
	for i := 0; i < n; i += batch {
		mustWrite(tb, s, func(r repos.Repo) error {
			for j := i; j < min(i+batch, n); j++ {
				ids[j] = g.id()
				if err := r.UpsertOperationalIntent(ctx, g.oir(ids[j])); err != nil {
					return err
				}
			}
			return nil
		})
	}
	mustWrite(tb, s, func(r repos.Repo) error {
		for range benchSubs {
			start := t0.Add(time.Duration(g.rng.Int64N(int64(24 * time.Hour))))
			sb := &models.Subscription{ID: g.id(), Manager: "uss0", USSBaseURL: "https://uss0.example.com/utm",
				NotifyForOperationalIntents: true, StartTime: start, EndTime: start.Add(4 * time.Hour),
				Cells: g.cells(), UpdatedAt: t0}
			if err := r.UpsertSubscription(ctx, sb); err != nil {
				return err
			}
		}
		return nil
	})
	return s, ids
}

// heapPerOIR measures the live heap held by a state of n OIRs.
func heapPerOIR(tb testing.TB, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, _ := loadState(tb, newLoadGen(), n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

func TestMemoryPerOIR(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("stores 100,000 OIRs; skipped in -short and -race runs")
	}
	per := heapPerOIR(t, benchOIRs)
	t.Logf("live heap: %.0f B per stored OIR (%d OIRs, %d subscriptions)", per, benchOIRs, benchSubs)
	if per > maxBytesOIR {
		t.Fatalf("live heap %.0f B per OIR, target ≤ %.0f", per, maxBytesOIR)
	}
}

func BenchmarkMemoryPerOIR(b *testing.B) {
	for range b.N {
		b.ReportMetric(heapPerOIR(b, benchOIRs), "B/OIR")
	}
}

// putOIR is what a PUT OIR update does to the store: read the OIR, key-check
// search, notification increments over the union volume, upsert.
func putOIR(id models.ID, next *models.OperationalIntent) funcOp {
	return write(func(r repos.Repo) error {
		old, err := r.GetOperationalIntent(ctx, id)
		if err != nil || old == nil {
			return fmt.Errorf("get %s: %v", id, err)
		}
		area := &models.Volume4D{Cells: next.Cells, StartTime: &next.StartTime, EndTime: &next.EndTime,
			AltitudeLower: &next.AltitudeLower, AltitudeUpper: &next.AltitudeUpper}
		if _, err := r.SearchOperationalIntents(ctx, area); err != nil {
			return err
		}
		union := &models.Volume4D{Cells: models.UnionCells(old.Cells, next.Cells), StartTime: &old.StartTime, EndTime: &next.EndTime}
		if _, err := r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents, union); err != nil {
			return err
		}
		next.Version = old.Version + 1
		return r.UpsertOperationalIntent(ctx, next)
	})
}

func BenchmarkPutOIR(b *testing.B) {
	g := newLoadGen()
	s, ids := loadState(b, g, benchOIRs)
	ops := make([]funcOp, 4096)
	for i := range ops {
		id := ids[g.rng.IntN(len(ids))]
		ops[i] = putOIR(id, g.oir(id))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Apply(ctx, ops[i%len(ops)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearch2km(b *testing.B) {
	g := newLoadGen()
	s, _ := loadState(b, g, benchOIRs)
	for _, bounded := range []bool{true, false} {
		name := "1h-window"
		if !bounded {
			name = "no-bounds"
		}
		b.Run(name, func(b *testing.B) {
			qs := make([]*models.Volume4D, 1024)
			for i := range qs {
				qs[i] = g.query()
				if !bounded {
					qs[i].StartTime, qs[i].EndTime, qs[i].AltitudeLower, qs[i].AltitudeUpper = nil, nil, nil, nil
				}
			}
			results := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				q := qs[i%len(qs)]
				res, err := s.Apply(ctx, read(func(r repos.Repo) (any, error) { return r.SearchOperationalIntents(ctx, q) }))
				if err != nil {
					b.Fatal(err)
				}
				results += len(res.([]*models.OperationalIntent))
			}
			b.ReportMetric(float64(results)/float64(b.N), "results/op")
		})
	}
}

func BenchmarkSnapshot(b *testing.B) {
	s, _ := loadState(b, newLoadGen(), benchOIRs)
	b.ResetTimer()
	for range b.N {
		_ = s.Hash()
	}
}

// BenchmarkReadSnapshot decodes the snapshot of benchOIRs OIRs, rebuilding
// the state and its indexes: most of what a restarting node spends before
// it serves (with reading the file and replaying the WAL tail).
func BenchmarkReadSnapshot(b *testing.B) {
	s, _ := loadState(b, newLoadGen(), benchOIRs)
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for range b.N {
		if _, err := ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
