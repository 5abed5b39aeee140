package geo

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/models"
)

// refCoverer and refToCells are the implementation cover and toCells
// replaced: s2.RegionCoverer pinned to Level, plus the vertex cells, sorted
// as int64. The optimised path must return exactly the same cell sets.
var refCoverer = &s2.RegionCoverer{MinLevel: Level, MaxLevel: Level, LevelMod: 1, MaxCells: math.MaxInt32}

func refToCells(cu s2.CellUnion, pts []s2.Point) []models.CellID {
	out := make([]models.CellID, 0, len(cu)+len(pts))
	for _, id := range cu {
		out = append(out, models.CellID(int64(id)))
	}
	for _, p := range pts {
		out = append(out, models.CellID(int64(s2.CellFromPoint(p).ID().Parent(Level))))
	}
	return models.NormalizeCells(out)
}

// randomOutline returns n vertices around (lat, lng) at radii up to rKm,
// at increasing angles (a star-shaped, possibly very concave outline).
func randomOutline(rng *rand.Rand, lat, lng, rKm float64, n int) []models.LatLng {
	c := s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lng))
	angles := make([]float64, n)
	for i := range angles {
		angles[i] = rng.Float64() * 2 * math.Pi
	}
	slices.Sort(angles)
	out := make([]models.LatLng, n)
	for i, a := range angles {
		r := rKm * (0.05 + 0.95*rng.Float64()) * 1000 / EarthRadiusMeters
		// Walk from c along bearing a by angle r.
		ll := s2.LatLngFromPoint(c)
		lat1, lng1 := ll.Lat.Radians(), ll.Lng.Radians()
		lat2 := math.Asin(math.Sin(lat1)*math.Cos(r) + math.Cos(lat1)*math.Sin(r)*math.Cos(a))
		lng2 := lng1 + math.Atan2(math.Sin(a)*math.Sin(r)*math.Cos(lat1), math.Cos(r)-math.Sin(lat1)*math.Sin(lat2))
		out[i] = models.LatLng{Lat: lat2 * 180 / math.Pi, Lng: math.Remainder(lng2*180/math.Pi, 360)}
	}
	return out
}

// randomCentre favours the places where coverings are delicate: cube face
// edges and corners, the poles, the antimeridian; and anywhere else.
func randomCentre(rng *rand.Rand) (float64, float64) {
	jitter := func(d float64) float64 { return (rng.Float64()*2 - 1) * d }
	switch rng.IntN(6) {
	case 0: // a cube corner: lat ±35.26°, lng ±45°/±135°
		return (35.26438968 + jitter(0.05)) * float64(1-2*rng.IntN(2)), 45 + 90*float64(rng.IntN(4)) - 180 + jitter(0.05)
	case 1: // a face edge along a meridian
		return jitter(60), 45 + 90*float64(rng.IntN(4)) - 180 + jitter(0.02)
	case 2: // near a pole
		return (89.9 + jitter(0.09)) * float64(1-2*rng.IntN(2)), jitter(180)
	case 3: // the antimeridian
		return jitter(70), 180 - math.Abs(jitter(0.02))
	default:
		return jitter(85), jitter(180)
	}
}

func TestCoverMatchesRegionCoverer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	checked := 0
	for i := range runs {
		lat, lng := randomCentre(rng)
		// Mostly small footprints as requests carry, sometimes up to the
		// area limit.
		rKm := []float64{0.01, 0.3, 1, 2, 5, 15, 28}[rng.IntN(7)] * (0.5 + rng.Float64())
		verts := randomOutline(rng, lat, lng, rKm, 3+rng.IntN(20))
		pts, err := validOutline(verts, unlimited())
		if err != nil {
			continue // self-crossing or degenerate random outline
		}
		loop, area := smallerRegion(pts)
		if area*earthAreaKm2/(4*math.Pi) > MaxAreaKm2 {
			continue
		}
		var got, want []models.CellID
		if area == 0 {
			got = mustCover(t)(coverPolyline(pts, unlimited()))
			line := s2.Polyline(pts)
			want = refToCells(refCoverer.Covering(&line), pts)
		} else {
			got = mustCover(t)(coverLoop(loop, pts, unlimited()))
			want = refToCells(refCoverer.Covering(loop), pts)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("run %d: outline %v: got %d cells %v, want %d cells %v", i, verts, len(got), got, len(want), want)
		}
		checked++
	}
	if checked < runs/3 {
		t.Fatalf("only %d of %d random outlines were valid", checked, runs)
	}

	// Circles (the 20-gon path) and collinear outlines (the polyline path).
	for i := range runs / 3 {
		lat, lng := randomCentre(rng)
		radius := []float64{1, 50, 300, 1000, 5000, 25000}[rng.IntN(6)] * (0.5 + rng.Float64())
		c := s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lng))
		loop := s2.RegularLoop(c, s1.Angle(radius/EarthRadiusMeters), circleVertices)
		pts := loop.Vertices()
		loop, area := smallerRegionOf(loop)
		if area*earthAreaKm2/(4*math.Pi) > MaxAreaKm2 || area == 0 {
			continue
		}
		got, want := mustCover(t)(coverLoop(loop, pts, unlimited())), refToCells(refCoverer.Covering(loop), pts)
		if !slices.Equal(got, want) {
			t.Fatalf("circle %d at %v,%v r=%v: got %v, want %v", i, lat, lng, radius, got, want)
		}

		n := 3 + rng.IntN(5)
		line := make([]s2.Point, n)
		for k := range line {
			f := float64(k) / float64(n-1) * (rKmToAngle(radius / 1000))
			line[k] = s2.InterpolateAtDistance(s1.Angle(f), c, s2.PointFromLatLng(s2.LatLngFromDegrees(lat+1, lng+0.5)))
		}
		pl := s2.Polyline(line)
		if got, want := mustCover(t)(coverPolyline(line, unlimited())), refToCells(refCoverer.Covering(&pl), line); !slices.Equal(got, want) {
			t.Fatalf("polyline %d: got %v, want %v", i, got, want)
		}
	}
}

func rKmToAngle(km float64) float64 { return km * 1000 / EarthRadiusMeters }

// TestCoverPolygonMatchesReferenceEndToEnd checks the public function on
// the fixed shapes of the other tests.
func TestCoverPolygonMatchesReferenceEndToEnd(t *testing.T) {
	for _, poly := range [][]models.LatLng{
		square(34, -118, 2, 4), square(34, -118, 40, 4), square(46.97, 7.47, 0.5, 1),
		square(-33.9, 151.2, 10, 3), square(0, 45, 3, 2), square(89.95, 10, 1, 2),
	} {
		got, err := CoverPolygon(poly)
		if err != nil {
			t.Fatal(err)
		}
		pts, err := validOutline(poly, unlimited())
		if err != nil {
			t.Fatal(err)
		}
		loop, _ := smallerRegion(pts)
		if want := refToCells(refCoverer.Covering(loop), pts); !slices.Equal(got, want) {
			t.Fatalf("%v: got %v, want %v", poly[0], got, want)
		}
	}
}

// mustCover unwraps a covering that cannot fail (an unlimited budget).
func mustCover(t *testing.T) func([]models.CellID, error) []models.CellID {
	return func(cells []models.CellID, err error) []models.CellID {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return cells
	}
}
