package geo

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/models"
)

// square returns the axis-aligned (in degrees) square of side sideKm
// centred on (lat, lng), counter-clockwise, with perSide vertices per side.
func square(lat, lng, sideKm float64, perSide int) []models.LatLng {
	dLat := sideKm / 2 / 111.195
	dLng := dLat / math.Cos(lat*math.Pi/180)
	corners := [4]models.LatLng{
		{Lat: lat - dLat, Lng: lng - dLng}, {Lat: lat - dLat, Lng: lng + dLng},
		{Lat: lat + dLat, Lng: lng + dLng}, {Lat: lat + dLat, Lng: lng - dLng},
	}
	var out []models.LatLng
	for c := range 4 {
		a, b := corners[c], corners[(c+1)%4]
		for k := range perSide {
			f := float64(k) / float64(perSide)
			out = append(out, models.LatLng{Lat: a.Lat + f*(b.Lat-a.Lat), Lng: a.Lng + f*(b.Lng-a.Lng)})
		}
	}
	return out
}

func reversed(v []models.LatLng) []models.LatLng {
	out := slices.Clone(v)
	slices.Reverse(out)
	return out
}

func cellOf(lat, lng float64) models.CellID {
	return models.CellID(int64(s2.CellIDFromLatLng(s2.LatLngFromDegrees(lat, lng)).Parent(Level)))
}

// checkCellSet asserts the invariants every successful covering must meet.
func checkCellSet(t *testing.T, cells []models.CellID) {
	t.Helper()
	if len(cells) == 0 {
		t.Fatal("empty covering")
	}
	for i, c := range cells {
		id := s2.CellID(uint64(c))
		if !id.IsValid() || id.Level() != Level {
			t.Fatalf("cell %d (%v) is not a valid level-%d cell", i, id, Level)
		}
		if i > 0 && cells[i-1] >= c {
			t.Fatalf("cells not strictly ascending at %d: %d then %d", i, cells[i-1], c)
		}
	}
}

func TestCoverPolygonSquare2km(t *testing.T) {
	poly := square(34, -118, 2, 1)
	cells, err := CoverPolygon(poly)
	if err != nil {
		t.Fatal(err)
	}
	checkCellSet(t, cells)
	// A 4 km² square over ≈1.27 km² cells: a handful, never dozens.
	if len(cells) < 3 || len(cells) > 16 {
		t.Fatalf("got %d cells for a 2 km square", len(cells))
	}
	// Every cell must really intersect the square: its lat/lng bound must
	// overlap the square's bound (an S2-independent necessary condition).
	lo, hi := poly[0], poly[2]
	for _, c := range cells {
		r := s2.CellFromCellID(s2.CellID(uint64(c))).RectBound()
		lo2, hi2 := r.Lo(), r.Hi()
		if lo2.Lat.Degrees() > hi.Lat || hi2.Lat.Degrees() < lo.Lat ||
			lo2.Lng.Degrees() > hi.Lng || hi2.Lng.Degrees() < lo.Lng {
			t.Errorf("cell %v (%v) does not touch the square", s2.CellID(uint64(c)), r)
		}
	}
	// And the set must be complete: every point of a grid over the square
	// falls in a returned cell.
	for i := 0; i <= 20; i++ {
		for j := 0; j <= 20; j++ {
			lat := lo.Lat + (hi.Lat-lo.Lat)*float64(i)/20
			lng := lo.Lng + (hi.Lng-lo.Lng)*float64(j)/20
			if _, ok := slices.BinarySearch(cells, cellOf(lat, lng)); !ok {
				t.Fatalf("point (%v, %v) inside the square is not covered", lat, lng)
			}
		}
	}
	// More vertices on the same outline cannot change which cells it meets
	// by more than the tiny bulge of great-circle edges; here none.
	dense, err := CoverPolygon(square(34, -118, 2, 4))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dense, cells) {
		t.Fatalf("16-vertex square: %v, 4-vertex square: %v", dense, cells)
	}
}

func TestCoverPolygonValid(t *testing.T) {
	tests := []struct {
		name     string
		poly     []models.LatLng
		minCells int
		maxCells int
	}{
		{"tiny triangle", []models.LatLng{{Lat: 34, Lng: -118}, {Lat: 34, Lng: -117.999999}, {Lat: 34.000001, Lng: -118}}, 1, 4},
		{"40 km square", square(34, -118, 40, 1), 1200, 1500},
		{"antimeridian square", []models.LatLng{{Lat: 10, Lng: 179.99}, {Lat: 10, Lng: -179.99}, {Lat: 10.01, Lng: -179.99}, {Lat: 10.01, Lng: 179.99}}, 1, 8},
		{"around the north pole", []models.LatLng{{Lat: 89.9, Lng: 0}, {Lat: 89.9, Lng: 90}, {Lat: 89.9, Lng: 180}, {Lat: 89.9, Lng: -90}}, 100, 400},
		{"concave", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0.1}, {Lat: 0.05, Lng: 0.05}, {Lat: 0.1, Lng: 0.1}, {Lat: 0.1, Lng: 0}}, 20, 200},
		{"vertex close to but off a non-adjacent edge", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0.02}, {Lat: 0.01, Lng: 0.02}, {Lat: 0.0000001, Lng: 0.01}, {Lat: 0.01, Lng: 0}}, 1, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := CoverPolygon(tt.poly)
			if err != nil {
				t.Fatal(err)
			}
			checkCellSet(t, cells)
			if len(cells) < tt.minCells || len(cells) > tt.maxCells {
				t.Fatalf("got %d cells, want [%d, %d]", len(cells), tt.minCells, tt.maxCells)
			}
			for _, v := range tt.poly {
				if _, ok := slices.BinarySearch(cells, cellOf(v.Lat, v.Lng)); !ok {
					t.Fatalf("vertex %v not covered", v)
				}
			}
			rev, err := CoverPolygon(reversed(tt.poly))
			if err != nil {
				t.Fatalf("reversed winding: %v", err)
			}
			if !slices.Equal(rev, cells) {
				t.Fatalf("windings differ: %d vs %d cells", len(rev), len(cells))
			}
		})
	}
}

func TestCoverPolygonCollinear(t *testing.T) {
	for _, poly := range [][]models.LatLng{
		{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0.01}, {Lat: 0, Lng: 0.03}},    // along the equator
		{{Lat: 10, Lng: 5}, {Lat: 10.03, Lng: 5}, {Lat: 10.01, Lng: 5}}, // along a meridian, folded back
	} {
		area, err := AreaKm2(poly)
		if err != nil || area != 0 {
			t.Fatalf("%v: area %v, err %v; want exactly 0", poly, area, err)
		}
		cells, err := CoverPolygon(poly)
		if err != nil {
			t.Fatal(err)
		}
		checkCellSet(t, cells)
		// 0.03° ≈ 3.3 km of line through ≈1.1 km cells: a few cells, all
		// on the line, including the ones holding the vertices.
		if len(cells) < 2 || len(cells) > 12 {
			t.Fatalf("%v: %d cells", poly, len(cells))
		}
		for _, v := range poly {
			if _, ok := slices.BinarySearch(cells, cellOf(v.Lat, v.Lng)); !ok {
				t.Fatalf("vertex %v not covered", v)
			}
		}
	}
}

func TestCoverPolygonErrors(t *testing.T) {
	// The midpoint of an edge, rounded through degrees: S2's exact predicates
	// see it as off the edge, the tolerance as touching it.
	a, b := s2.PointFromLatLng(s2.LatLngFromDegrees(34.1, -118.3)), s2.PointFromLatLng(s2.LatLngFromDegrees(34.13, -118.2))
	mid := s2.LatLngFromPoint(s2.Interpolate(0.37, a, b))
	nan, inf := math.NaN(), math.Inf(1)
	sq := square(34, -118, 2, 1)
	tests := []struct {
		name string
		poly []models.LatLng
		code models.Code
		msg  string // a substring the message must hold; "" for any
	}{
		{"no vertices", nil, models.CodeBadRequest, ""},
		{"two vertices", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 1, Lng: 1}}, models.CodeBadRequest, "at least 3"},
		{"latitude 91", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 91, Lng: 1}, {Lat: 1, Lng: 0}}, models.CodeBadRequest, "vertices[1]: latitude 91"},
		{"longitude -181", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 1, Lng: -181}, {Lat: 1, Lng: 0}}, models.CodeBadRequest, ""},
		{"NaN latitude", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: nan, Lng: 1}, {Lat: 1, Lng: 0}}, models.CodeBadRequest, ""},
		{"NaN longitude", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 1, Lng: nan}, {Lat: 1, Lng: 0}}, models.CodeBadRequest, ""},
		{"infinite longitude", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 1, Lng: inf}, {Lat: 1, Lng: 0}}, models.CodeBadRequest, ""},
		{"bow-tie", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0.01, Lng: 0.01}, {Lat: 0, Lng: 0.01}, {Lat: 0.01, Lng: 0}}, models.CodeBadRequest, "cross"},
		{"closed ring", append(slices.Clone(sq), sq[0]), models.CodeBadRequest, "repeats vertices[0]"},
		{"closed triangle", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0.01}, {Lat: 0.01, Lng: 0}, {Lat: 0, Lng: 0}}, models.CodeBadRequest, ""},
		{"closed degenerate triangle", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0.01}, {Lat: 0, Lng: 0}}, models.CodeBadRequest, ""},
		{"shared non-adjacent vertex", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0.01, Lng: 0.01}, {Lat: 0, Lng: 0.02}, {Lat: 0.02, Lng: 0.02}, {Lat: 0.01, Lng: 0.01}, {Lat: 0.02, Lng: 0}}, models.CodeBadRequest, "vertices[1] and vertices[4] are the same point"},
		{"T-junction on the equator", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0.02}, {Lat: 0.01, Lng: 0.02}, {Lat: 0, Lng: 0.01}, {Lat: 0.01, Lng: 0}}, models.CodeBadRequest, ""},
		{"T-junction on the equator, from below", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: -0.01, Lng: 0}, {Lat: 0, Lng: 0.01}, {Lat: -0.01, Lng: 0.02}, {Lat: 0, Lng: 0.02}}, models.CodeBadRequest, "lies on non-adjacent edge vertices[4]"},
		{"T-junction off-axis", []models.LatLng{{Lat: 34.1, Lng: -118.3}, {Lat: 34.13, Lng: -118.2}, {Lat: 34.2, Lng: -118.2}, {Lat: mid.Lat.Degrees(), Lng: mid.Lng.Degrees()}, {Lat: 34.2, Lng: -118.3}}, models.CodeBadRequest, ""},
		{"duplicate consecutive (triangle)", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 0}, {Lat: 0.01, Lng: 0}}, models.CodeBadRequest, "zero-length"},
		{"duplicate consecutive (square)", []models.LatLng{sq[0], sq[1], sq[1], sq[2], sq[3]}, models.CodeBadRequest, ""},
		{"pole written twice", []models.LatLng{{Lat: -90, Lng: -122}, {Lat: -90, Lng: 58}, {Lat: 0, Lng: -32}}, models.CodeBadRequest, "zero-length"},
		{"antipodal", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 180}, {Lat: 10, Lng: 10}}, models.CodeBadRequest, "antipodal"},
		{"antipodal poles", []models.LatLng{{Lat: 90, Lng: 0}, {Lat: -90, Lng: 0}, {Lat: 10, Lng: 10}}, models.CodeBadRequest, ""},
		{"60 km square", square(34, -118, 60, 1), models.CodeAreaTooLarge, "3600"},
		{"60 km square, clockwise", reversed(square(34, -118, 60, 1)), models.CodeAreaTooLarge, ""},
		{"hemisphere-sized triangle", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 0, Lng: 90}, {Lat: 60, Lng: 45}}, models.CodeAreaTooLarge, ""},
		// Rule order: a large bow-tie is a bad request, not too large.
		{"large bow-tie", []models.LatLng{{Lat: 0, Lng: 0}, {Lat: 1, Lng: 1}, {Lat: 0, Lng: 1}, {Lat: 1, Lng: 0}}, models.CodeBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := CoverPolygon(tt.poly)
			if err == nil {
				t.Fatalf("got %d cells, want %v error", len(cells), tt.code)
			}
			var me *models.Error
			if !errors.As(err, &me) || me.Code != tt.code {
				t.Fatalf("got %v, want code %v", err, tt.code)
			}
			if me.Message == "" {
				t.Fatal("empty message")
			}
			if !strings.Contains(me.Message, tt.msg) {
				t.Fatalf("message %q lacks %q", me.Message, tt.msg)
			}
			if _, err := AreaKm2(tt.poly); (err == nil) != (tt.code == models.CodeAreaTooLarge) {
				t.Fatalf("AreaKm2 error %v disagrees with CoverPolygon %v", err, me)
			}
		})
	}
}

func TestAreaKm2(t *testing.T) {
	for _, side := range []float64{1, 2, 40, 60} {
		got, err := AreaKm2(square(34, -118, side, 3))
		if err != nil {
			t.Fatal(err)
		}
		// The square is built from degrees with a mid-latitude cosine, so
		// allow 1% for the shape, not for the area formula.
		if want := side * side; math.Abs(got-want) > want/100 {
			t.Errorf("%v km square: area %v km², want ≈%v", side, got, want)
		}
	}
}

func TestCoverCircle(t *testing.T) {
	center := models.LatLng{Lat: 34, Lng: -118}
	cells, err := CoverCircle(center, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkCellSet(t, cells)
	// π km² over ≈1.1 km² cells near 34°N.
	if len(cells) < 3 || len(cells) > 16 {
		t.Fatalf("1 km circle: %d cells", len(cells))
	}
	if _, ok := slices.BinarySearch(cells, cellOf(center.Lat, center.Lng)); !ok {
		t.Fatal("centre cell missing")
	}
	// Every cell lies within radius + one cell diagonal of the centre.
	c := s2.PointFromLatLng(s2.LatLngFromDegrees(center.Lat, center.Lng))
	for _, id := range cells {
		d := s2.CellFromCellID(s2.CellID(uint64(id))).Distance(c).Angle().Radians() * EarthRadiusMeters
		if d > 1000 {
			t.Fatalf("cell %v is %v m from the centre of a 1000 m circle", s2.CellID(uint64(id)), d)
		}
	}
	for _, r := range []float64{1e-9, 1, 10} {
		tiny, err := CoverCircle(center, r)
		if err != nil {
			t.Fatalf("radius %v: %v", r, err)
		}
		checkCellSet(t, tiny)
		if len(tiny) > 4 {
			t.Fatalf("radius %v: %d cells", r, len(tiny))
		}
	}
	big, err := CoverCircle(models.LatLng{Lat: 89.99, Lng: 179.99}, 25000)
	if err != nil {
		t.Fatal(err)
	}
	checkCellSet(t, big)
}

func TestCoverCircleErrors(t *testing.T) {
	ok := models.LatLng{Lat: 34, Lng: -118}
	tests := []struct {
		name   string
		center models.LatLng
		radius float64
		code   models.Code
	}{
		{"zero radius", ok, 0, models.CodeBadRequest},
		{"negative radius", ok, -5, models.CodeBadRequest},
		{"NaN radius", ok, math.NaN(), models.CodeBadRequest},
		{"infinite radius", ok, math.Inf(1), models.CodeBadRequest},
		{"negative infinite radius", ok, math.Inf(-1), models.CodeBadRequest},
		{"latitude 90.5", models.LatLng{Lat: 90.5, Lng: 0}, 100, models.CodeBadRequest},
		{"longitude 180.5", models.LatLng{Lat: 0, Lng: 180.5}, 100, models.CodeBadRequest},
		{"NaN centre", models.LatLng{Lat: math.NaN(), Lng: 0}, 100, models.CodeBadRequest},
		{"30 km radius (2 827 km²)", ok, 30000, models.CodeAreaTooLarge},
		{"continent-sized", ok, 3e6, models.CodeAreaTooLarge},
		{"larger than the Earth", ok, 1e12, models.CodeAreaTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := CoverCircle(tt.center, tt.radius)
			if err == nil {
				t.Fatalf("got %d cells, want %v error", len(cells), tt.code)
			}
			if got := models.CodeOf(err); got != tt.code {
				t.Fatalf("got %v, want code %v", err, tt.code)
			}
		})
	}
}

// bruteForceCrossing is the O(n²) reading of spec §4 rule 2 that the sweep
// in checkNonAdjacentEdges must agree with.
func bruteForceCrossing(pts []s2.Point) bool {
	n := len(pts)
	if n < 4 {
		return false
	}
	for i := range n {
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue
			}
			if checkEdgePair(pts, i, j) != nil {
				return true
			}
		}
	}
	return false
}

func TestSweepMatchesBruteForce(t *testing.T) {
	// A deterministic pseudo-random walk (xorshift) yields many
	// self-intersecting and many simple outlines of 4..80 vertices.
	state := uint64(88172645463325252)
	next := func() float64 {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		return float64(state%2001)/1000 - 1 // [-1, 1]
	}
	var crossing, simple int
	for iter := range 1000 {
		n := 4 + iter%77
		pts := make([]s2.Point, n)
		lat, lng := 40.0, 10.0
		for k := range pts {
			if iter%2 == 0 {
				// Star-shaped around the centre: often simple.
				ang := 2 * math.Pi * float64(k) / float64(n)
				r := 0.01 * (1.2 + next())
				lat, lng = 40+r*math.Sin(ang), 10+r*math.Cos(ang)
			} else {
				lat, lng = lat+0.001*next(), lng+0.001*next()
			}
			pts[k] = s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lng))
		}
		want := bruteForceCrossing(pts)
		got := checkNonAdjacentEdges(pts, unlimited()) != nil
		if got != want {
			t.Fatalf("iteration %d (n=%d): sweep says %v, brute force %v", iter, n, got, want)
		}
		if want {
			crossing++
		} else {
			simple++
		}
	}
	if crossing < 50 || simple < 50 {
		t.Fatalf("unbalanced sample: %d crossing, %d simple", crossing, simple)
	}
}

func TestLargeOutlineIsFast(t *testing.T) {
	// 5 000 vertices on a 20 km circle: the sweep keeps rule 2 near-linear
	// (brute force would test 12.5 M pairs).
	const n = 5000
	poly := make([]models.LatLng, n)
	for k := range poly {
		ang := 2 * math.Pi * float64(k) / n
		poly[k] = models.LatLng{Lat: 34 + 0.18*math.Sin(ang), Lng: -118 + 0.217*math.Cos(ang)}
	}
	pts := make([]s2.Point, n)
	for k, v := range poly {
		pts[k] = s2.PointFromLatLng(s2.LatLngFromDegrees(v.Lat, v.Lng))
	}
	if err := checkNonAdjacentEdges(pts, unlimited()); err != nil {
		t.Fatal(err)
	}
	cells, err := unlimited().CoverPolygon(poly)
	if err != nil {
		t.Fatal(err)
	}
	checkCellSet(t, cells)
	// A request may not send that many: the limit answers before any work.
	if _, err := CoverPolygon(poly); models.CodeOf(err) != models.CodeBadRequest ||
		!strings.Contains(err.Error(), "at most 2000 are allowed") {
		t.Fatalf("5000 vertices under the default limits: got %v, want the vertex limit", err)
	}
	poly[n/2] = poly[10] // now two non-adjacent edges share a vertex
	if _, err := unlimited().CoverPolygon(poly); models.CodeOf(err) != models.CodeBadRequest {
		t.Fatalf("got %v, want bad request", err)
	}
}
