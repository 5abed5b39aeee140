package geo

import (
	"math"
	"testing"

	"github.com/raftdss/dss/pkg/models"
)

// checkFuzzResult holds the contract for any input: a coded client error
// (bad request or area too large), or a non-empty, strictly ascending set of
// valid level-13 cells.
func checkFuzzResult(t *testing.T, cells []models.CellID, err error) {
	t.Helper()
	if err != nil {
		if c := models.CodeOf(err); c != models.CodeBadRequest && c != models.CodeAreaTooLarge {
			t.Fatalf("error with code %v: %v", c, err)
		}
		if cells != nil {
			t.Fatalf("error %v with %d cells", err, len(cells))
		}
		return
	}
	checkCellSet(t, cells)
}

// FuzzCoverPolygon builds outlines as a start point plus int8 steps times a
// scale, so that the fuzzer reaches tiny, huge, degenerate, self-crossing,
// out-of-range and non-finite polygons alike. At most 64 vertices keep each
// input fast.
func FuzzCoverPolygon(f *testing.F) {
	f.Add(34.0, -118.0, 0.01, []byte{0, 0, 0, 2, 2, 0})                               // triangle
	f.Add(34.0, -118.0, 0.01, []byte{0, 0, 0, 2, 2, 2, 2, 0})                         // square
	f.Add(34.0, -118.0, 0.01, []byte{0, 0, 2, 2, 0, 2, 2, 0})                         // bow-tie
	f.Add(34.0, -118.0, 0.01, []byte{0, 0, 0, 2, 2, 2, 2, 0, 0, 0})                   // closed ring
	f.Add(34.0, -118.0, 0.01, []byte{0, 0, 0, 0, 2, 0})                               // duplicate
	f.Add(0.0, 0.0, 0.01, []byte{0, 0, 0, 1, 0, 3})                                   // collinear
	f.Add(0.0, 0.0, 0.01, []byte{0, 0, 0, 2, 1, 2, 0, 1, 1, 0})                       // T-junction
	f.Add(34.0, -118.0, 1.0, []byte{0, 0, 0, 2, 2, 2, 2, 0})                          // too large
	f.Add(89.9, 179.9, 1e-9, []byte{0, 0, 0, 2, 2, 2})                                // tiny near the pole
	f.Add(0.0, 0.0, 90.0, []byte{0, 0, 0, 2, 255, 1})                                 // antipodal
	f.Add(math.NaN(), 0.0, 1.0, []byte{0, 0, 1, 1, 2, 0})                             // NaN
	f.Add(0.0, 179.99, 0.01, []byte{0, 0, 0, 2, 1, 2, 1, 0})                          // antimeridian
	f.Add(10.0, 10.0, 0.001, []byte{0, 0, 10, 0, 10, 10, 5, 5, 0, 10, 3, 4, 7, 7, 2}) // odd length
	f.Fuzz(func(t *testing.T, lat, lng, scale float64, steps []byte) {
		n := min(len(steps)/2, 64)
		poly := make([]models.LatLng, n)
		for k := range poly {
			poly[k] = models.LatLng{
				Lat: lat + float64(int8(steps[2*k]))*scale,
				Lng: lng + float64(int8(steps[2*k+1]))*scale,
			}
		}
		cells, err := CoverPolygon(poly)
		checkFuzzResult(t, cells, err)
		// AreaKm2 shares rules 1–4: it fails exactly when CoverPolygon fails
		// with a bad request.
		area, aerr := AreaKm2(poly)
		if (aerr != nil) != (models.CodeOf(err) == models.CodeBadRequest && err != nil) {
			t.Fatalf("AreaKm2 err %v, CoverPolygon err %v", aerr, err)
		}
		if aerr == nil && (area < 0 || math.IsNaN(area) || (area > MaxAreaKm2) != (err != nil)) {
			t.Fatalf("area %v km² with CoverPolygon err %v", area, err)
		}
	})
}

// FuzzCoverCircle tries arbitrary centres and radii, non-finite included.
func FuzzCoverCircle(f *testing.F) {
	f.Add(34.0, -118.0, 1000.0)
	f.Add(34.0, -118.0, 30000.0)
	f.Add(34.0, -118.0, 0.0)
	f.Add(34.0, -118.0, -1.0)
	f.Add(34.0, -118.0, math.NaN())
	f.Add(34.0, -118.0, math.Inf(1))
	f.Add(90.0, 180.0, 28000.0)
	f.Add(-90.0, -180.0, 1e-300)
	f.Add(0.0, 0.0, 1e7)
	f.Add(95.0, 0.0, 10.0)
	f.Fuzz(func(t *testing.T, lat, lng, radius float64) {
		cells, err := CoverCircle(models.LatLng{Lat: lat, Lng: lng}, radius)
		checkFuzzResult(t, cells, err)
		// A circle within the limit (area ≤ 2 500 km², radius ≲ 28.4 km)
		// touches at most a few thousand cells; a wildly larger result
		// would mean the wrong side of the loop was covered.
		if err == nil && len(cells) > 4000 {
			t.Fatalf("radius %v m: %d cells", radius, len(cells))
		}
	})
}

var sink []models.CellID

func BenchmarkCoverPolygon2km(b *testing.B) {
	poly := square(34, -118, 2, 4) // 16 vertices
	b.ReportAllocs()
	for b.Loop() {
		cells, err := CoverPolygon(poly)
		if err != nil {
			b.Fatal(err)
		}
		sink = cells
	}
}

func BenchmarkCoverPolygon40km(b *testing.B) {
	poly := square(34, -118, 40, 4)
	b.ReportAllocs()
	for b.Loop() {
		cells, err := CoverPolygon(poly)
		if err != nil {
			b.Fatal(err)
		}
		sink = cells
	}
}

func BenchmarkCoverCircle1km(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		cells, err := CoverCircle(models.LatLng{Lat: 34, Lng: -118}, 1000)
		if err != nil {
			b.Fatal(err)
		}
		sink = cells
	}
}
