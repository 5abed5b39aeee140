package geo

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// comb is the cell-amplification outline: teeth of widthM metres, lenKm
// long, northwards from latitude lat0, gapM apart, joined at their feet by
// a bar barM high. A hundred teeth of 0.1 m × 7 000 km have ~85 km² (under
// the area limit) but ~530 000 cells.
func comb(lat0, lng0 float64, teeth int, lenKm, widthM, gapM, barM float64) []models.LatLng {
	dLat := lenKm / 111.195
	mLng := func(m float64) float64 { return m / 1000 / 111.195 / math.Cos(lat0*math.Pi/180) }
	barLat := barM / 1000 / 111.195
	var out []models.LatLng
	x := lng0
	for range teeth {
		out = append(out, models.LatLng{Lat: lat0, Lng: x}, models.LatLng{Lat: lat0 + dLat, Lng: x},
			models.LatLng{Lat: lat0 + dLat, Lng: x + mLng(widthM)}, models.LatLng{Lat: lat0, Lng: x + mLng(widthM)})
		x += mLng(widthM + gapM)
	}
	last := out[len(out)-1]
	return append(out, models.LatLng{Lat: lat0 - barLat, Lng: last.Lng}, models.LatLng{Lat: lat0 - barLat, Lng: lng0})
}

// needle is one tooth alone: a 4-vertex rectangle of widthM × lenKm.
func needle(lat0, lng0, lenKm, widthM float64) []models.LatLng {
	return comb(lat0, lng0, 1, lenKm, widthM, 0, 0)[:4]
}

// attackShapes are outlines under the area limit whose coverings are far
// over the cell limit.
var attackShapes = []struct {
	name string
	poly []models.LatLng
}{
	{"comb of 100 teeth 0.1 m × 7000 km", comb(-30, 10, 100, 7000, 0.1, 1000, 10)},
	{"needle 0.1 m × 15000 km", needle(-70, 10, 15000, 0.1)},
	{"needle across the antimeridian", []models.LatLng{{Lat: -70, Lng: 179.9999995}, {Lat: 65, Lng: 179.9999995},
		{Lat: 65, Lng: -179.9999995}, {Lat: -70, Lng: -179.9999995}}},
	// Zero area: covered as a polyline, bounded the same way.
	{"collinear meridian of 17000 km", []models.LatLng{{Lat: -77, Lng: 20}, {Lat: 0, Lng: 20}, {Lat: 77, Lng: 20}}},
}

func isTooComplex(err error) bool {
	return models.CodeOf(err) == models.CodeBadRequest && strings.Contains(err.Error(), "area too complex")
}

// TestAttackShapesRejectedFast: each is refused as too complex after the
// work of at most MaxCellsPerVolume cells: well under a second (on a noisy
// shared machine; BenchmarkRejectComb reports the real time), with the heap
// flat, where covering the comb in full takes ~1 s (and storing it ~210 MB
// per replica).
func TestAttackShapesRejectedFast(t *testing.T) {
	for _, s := range attackShapes {
		t.Run(s.name, func(t *testing.T) {
			if a, err := AreaKm2(s.poly); err != nil || a > MaxAreaKm2 {
				t.Fatalf("area %v km², %v: the shape must pass the area rules", a, err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			cells, err := CoverPolygon(s.poly)
			elapsed := time.Since(start)
			runtime.GC()
			runtime.ReadMemStats(&after)
			if cells != nil || !isTooComplex(err) {
				t.Fatalf("got %d cells, %v; want area too complex", len(cells), err)
			}
			if !strings.Contains(err.Error(), "exceeds 10000 level-13 cells") {
				t.Errorf("message %q does not name the cell limit", err)
			}
			if elapsed > time.Second {
				t.Errorf("rejected after %v; want milliseconds", elapsed)
			}
			// Nothing is kept, and the garbage made on the way is bounded
			// (S2's shape index allocates per cell test where a shape spans
			// cube faces).
			if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > 1<<20 {
				t.Errorf("heap grew by %d bytes", kept)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d bytes to reject it", alloc)
			}
			t.Logf("rejected in %v, %d bytes allocated", elapsed, after.TotalAlloc-before.TotalAlloc)
		})
	}
}

// TestAttackShapesWereAmplifiers pins that the shapes above are what they
// claim: unbounded, the comb covers hundreds of thousands of cells.
func TestAttackShapesWereAmplifiers(t *testing.T) {
	if testing.Short() {
		t.Skip("covers ~530 000 cells (about a second)")
	}
	cells, err := unlimited().CoverPolygon(attackShapes[0].poly)
	if err != nil || len(cells) < 100*MaxCellsPerVolume/2 {
		t.Fatalf("unbounded comb: %d cells, %v", len(cells), err)
	}
}

// TestHonestShapesWithinLimits: the largest allowed areas as squares and
// circles, wherever they lie, long corridors and requests of many volumes
// stay well within the limits.
func TestHonestShapesWithinLimits(t *testing.T) {
	worst := 0
	for _, lat := range []float64{0, 34, 35.26, 45, 60, 80, -45} {
		for _, lng := range []float64{0, 45, -118, 135} {
			sq, err := CoverPolygon(square(lat, lng, 49.9, 1))
			if err != nil {
				t.Fatalf("2500 km² square at %v,%v: %v", lat, lng, err)
			}
			ci, err := CoverCircle(models.LatLng{Lat: lat, Lng: lng}, 28000)
			if err != nil {
				t.Fatalf("28 km circle at %v,%v: %v", lat, lng, err)
			}
			worst = max(worst, len(sq), len(ci))
		}
	}
	if worst > MaxCellsPerVolume/2 {
		t.Errorf("an area at the limit has %d cells: not well within %d", worst, MaxCellsPerVolume)
	}

	// 100 m-wide corridors: 5 000 km along a meridian, 3 000 km diagonal.
	if cells, err := CoverPolygon(needle(-20, 10, 5000, 100)); err != nil || len(cells) > MaxCellsPerVolume*3/4 {
		t.Errorf("5000 km corridor: %d cells, %v", len(cells), err)
	}
	diag := []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 19, Lng: 19}, {Lat: 19, Lng: 19.001}, {Lat: 0, Lng: 0.001}}
	if cells, err := CoverPolygon(diag); err != nil || len(cells) > MaxCellsPerVolume*3/4 {
		t.Errorf("3000 km diagonal corridor: %d cells, %v", len(cells), err)
	}

	// A finely drawn outline at the area limit: 2 000 vertices (the
	// per-polygon limit) on a 28 km circle.
	fine := make([]models.LatLng, MaxVerticesPerPolygon)
	for k := range fine {
		a := 2 * math.Pi * float64(k) / float64(len(fine))
		fine[k] = models.LatLng{Lat: 34 + 0.25*math.Sin(a), Lng: -118 + 0.25/math.Cos(34*math.Pi/180)*math.Cos(a)}
	}
	b := NewBudget(context.Background())
	if _, err := b.CoverPolygon(fine); err != nil {
		t.Fatalf("2000-vertex circle: %v", err)
	}
	if used := MaxWorkPerRequest - b.work; used > MaxWorkPerRequest/2 {
		t.Errorf("2000-vertex circle at the area limit used %d of %d work units", used, MaxWorkPerRequest)
	}

	// One request of many volumes: 200 flight segments of 2 km and five
	// areas at the limit in the worst place measured above.
	b = NewBudget(context.Background())
	for i := range 200 {
		if _, err := b.CoverPolygon(square(34+float64(i)*0.02, -118, 2, 1)); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	for i := range 5 {
		if _, err := b.CoverPolygon(square(0, 45+float64(i)*0.5, 49.9, 1)); err != nil {
			t.Fatalf("area %d: %v", i, err)
		}
	}
}

// TestBudgetIsPerRequest: the cells and vertices of all volumes of a
// request count together, and the message says which limit was hit.
func TestBudgetIsPerRequest(t *testing.T) {
	big := square(0, 45, 49.9, 1) // ~3 400 cells
	b := NewBudget(context.Background())
	n := 0
	var err error
	for ; n < 10 && err == nil; n++ {
		_, err = b.CoverPolygon(big)
	}
	if !isTooComplex(err) || !strings.Contains(err.Error(), "the request's coverings exceed 20000") {
		t.Fatalf("after %d areas: %v, want the request's cell limit", n, err)
	}
	if n < 5 || n > 7 {
		t.Fatalf("the request's limit was hit at area %d", n)
	}

	b = NewBudget(context.Background())
	outline := square(34, -118, 2, 400) // 1 600 vertices
	for range 7 {
		if _, err = b.CoverPolygon(outline); err != nil {
			break
		}
	}
	if models.CodeOf(err) != models.CodeBadRequest || !strings.Contains(err.Error(), "more than 10000 vertices") {
		t.Fatalf("7 outlines of 1600 vertices: %v", err)
	}

	if _, err := CoverPolygon(make([]models.LatLng, MaxVerticesPerPolygon+1)); models.CodeOf(err) != models.CodeBadRequest ||
		!strings.Contains(err.Error(), "2001 vertices; at most 2000") {
		t.Fatalf("2001 vertices: %v", err)
	}
}

// TestWorkLimit: an outline whose edges all overlap on every axis (the
// crossing check tests n²/2 pairs) and many vertices times many cells are
// refused by the work limit, quickly.
func TestWorkLimit(t *testing.T) {
	// 499 teeth (1 998 vertices) of 50 km, 20 m apart: the comb is 10 km
	// wide, so the sweep runs along the teeth and every tooth's edges
	// overlap every other's.
	poly := comb(10, 10, 499, 50, 1, 20, 1)
	b := NewBudget(context.Background())
	b.work = 1_000_000 // the crossing check alone needs ~2 M pairs × 8
	start := time.Now()
	_, err := b.CoverPolygon(poly)
	if !isTooComplex(err) || !strings.Contains(err.Error(), "edge tests") {
		t.Fatalf("got %v, want the work limit", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

// TestCoverHonoursContext: a covering stops soon after its context ends,
// with CodeUnavailable wrapping the context's error, even where no other
// limit would stop it.
func TestCoverHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := unlimited()
	b.ctx = ctx
	if _, err := b.CoverPolygon(attackShapes[0].poly); models.CodeOf(err) != models.CodeUnavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	const deadline = 30 * time.Millisecond
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	b = unlimited()
	b.ctx = ctx
	start := time.Now()
	_, err := b.CoverPolygon(attackShapes[0].poly) // ~1 s unbounded
	if models.CodeOf(err) != models.CodeUnavailable || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "computing the covering") {
		t.Fatalf("deadline: %v", err)
	}
	if d := time.Since(start); d > deadline+500*time.Millisecond {
		t.Fatalf("stopped %v after a %v deadline", d, deadline)
	}
}

// BenchmarkRejectComb is the real time of refusing the comb (compare
// BenchmarkCoverPolygon40km, an honest 1 600 km² square).
func BenchmarkRejectComb(b *testing.B) {
	poly := attackShapes[0].poly
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CoverPolygon(poly); !isTooComplex(err) {
			b.Fatal(err)
		}
	}
}

func BenchmarkRejectNeedle(b *testing.B) {
	poly := attackShapes[1].poly
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CoverPolygon(poly); !isTooComplex(err) {
			b.Fatal(err)
		}
	}
}

// FuzzCoverUnderBudget: under any cell budget, a covering never panics;
// within the budget it is exactly the unbounded covering; over it, it
// fails with "area too complex" and no cells. Outlines are built as in
// FuzzCoverPolygon; with fewer than three vertices the input is a circle of
// radius scale km instead.
func FuzzCoverUnderBudget(f *testing.F) {
	f.Add(34.0, -118.0, 0.01, uint16(50), []byte{0, 0, 0, 2, 2, 2, 2, 0})
	f.Add(34.0, -118.0, 0.1, uint16(10), []byte{0, 0, 0, 2, 2, 2, 2, 0})
	f.Add(34.0, -118.0, 0.5, uint16(2000), []byte{0, 0, 0, 2, 2, 2, 2, 0})
	f.Add(-30.0, 10.0, 0.001, uint16(100), []byte{0, 0, 100, 0, 100, 1, 0, 1})    // needle
	f.Add(0.0, 0.0, 0.01, uint16(3), []byte{0, 0, 0, 1, 0, 3})                    // collinear
	f.Add(89.9, 179.9, 1e-3, uint16(1), []byte{0, 0, 0, 2, 2, 2})                 // pole
	f.Add(0.0, 179.99, 0.01, uint16(4), []byte{0, 0, 0, 2, 1, 2, 1, 0})           // antimeridian
	f.Add(34.0, -118.0, 20.0, uint16(500), []byte{})                              // circle
	f.Add(34.0, -118.0, 0.001, uint16(0), []byte{0, 0, 0, 2, 2, 2, 2, 0})         // zero budget
	f.Add(math.NaN(), 0.0, 1.0, uint16(5), []byte{0, 0, 1, 1, 2, 0})              // NaN
	f.Add(10.0, 10.0, 0.01, uint16(30), []byte{0, 0, 10, 0, 10, 10, 5, 5, 0, 10}) // concave
	f.Add(10.0, 10.0, 0.01, uint16(30), []byte{0, 0, 10, 10, 10, 0, 0, 10, 1, 1}) // bow-tie
	f.Fuzz(func(t *testing.T, lat, lng, scale float64, maxCells uint16, steps []byte) {
		n := min(len(steps)/2, 64)
		limit := int(maxCells) % 5000
		budget, ref := unlimited(), unlimited()
		budget.cellsPerVolume = limit
		// The reference is bounded too, far above the budget, so that a
		// needle cannot make one input run for seconds.
		ref.cellsPerVolume = 100_000
		var got, want []models.CellID
		var err, rerr error
		if n < 3 {
			c := models.LatLng{Lat: lat, Lng: lng}
			got, err = budget.CoverCircle(c, scale*1000)
			want, rerr = ref.CoverCircle(c, scale*1000)
		} else {
			poly := make([]models.LatLng, n)
			for k := range poly {
				poly[k] = models.LatLng{
					Lat: lat + float64(int8(steps[2*k]))*scale,
					Lng: lng + float64(int8(steps[2*k+1]))*scale,
				}
			}
			got, err = budget.CoverPolygon(poly)
			want, rerr = ref.CoverPolygon(poly)
		}
		switch {
		case rerr != nil && !isTooComplex(rerr):
			// Invalid geometry: the same error whatever the budget.
			if err == nil || err.Error() != rerr.Error() {
				t.Fatalf("budgeted %v, unbounded %v", err, rerr)
			}
		case rerr != nil || len(want) > limit:
			if got != nil || !isTooComplex(err) {
				t.Fatalf("%d cells over a budget of %d: got %d cells, %v", len(want), limit, len(got), err)
			}
		default:
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("within a budget of %d: got %d cells %v, want %d", limit, len(got), err, len(want))
			}
			checkCellSet(t, got)
			if budget.cells != math.MaxInt-len(got) {
				t.Fatalf("charged %d cells for %d", math.MaxInt-budget.cells, len(got))
			}
		}
	})
}
