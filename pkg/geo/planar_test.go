package geo

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golang/geo/r2"
	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/models"
)

// TestPlanarLoopMatchesS2OnCellBoundaries covers outlines built from the
// corners of level-13 (and nearby-level) cells, so that loop edges run
// along cell edges and vertices sit on cell corners: exactly the cases
// planarLoop leaves to s2 (cellAmbiguous). Coverings must still equal
// s2.RegionCoverer's, and IntersectsCell must equal the loop's on every
// cell the covering visits and on the neighbours of the corner cells.
func TestPlanarLoopMatchesS2OnCellBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	runs := 400
	if testing.Short() {
		runs = 60
	}
	ambiguous := 0
	for i := range runs {
		lat, lng := randomCentre(rng)
		base := s2.CellIDFromLatLng(s2.LatLngFromDegrees(lat, lng)).Parent(Level + rng.IntN(3) - 1)
		// A quadrilateral over the corners of up to four cells around base:
		// each vertex is a corner of some cell near base.
		cells := []s2.CellID{base}
		for _, n := range base.EdgeNeighbors() {
			cells = append(cells, n)
		}
		var pts []s2.Point
		for k := 0; k < 4; k++ {
			c := s2.CellFromCellID(cells[rng.IntN(len(cells))])
			pts = append(pts, c.Vertex(k))
		}
		pts = dedupe(pts)
		if len(pts) < 3 {
			continue
		}
		verts := make([]models.LatLng, len(pts))
		for k, p := range pts {
			ll := s2.LatLngFromPoint(p)
			verts[k] = models.LatLng{Lat: ll.Lat.Degrees(), Lng: ll.Lng.Degrees()}
		}
		for _, vs := range [][]s2.Point{pts, exact(verts)} {
			if _, err := validOutline(pointsToLatLng(vs), unlimited()); err != nil || s2.LoopFromPoints(slices.Clone(vs)).Validate() != nil {
				continue
			}
			loop, area := smallerRegionOf(s2.LoopFromPoints(slices.Clone(vs)))
			if area == 0 {
				continue
			}
			got := mustCover(t)(coverLoop(loop, vs, unlimited()))
			want := refToCells(refCoverer.Covering(loop), vs)
			if !slices.Equal(got, want) {
				t.Fatalf("run %d: %v: got %v, want %v", i, vs, got, want)
			}
			pl := newPlanarLoop(loop, vs)
			for _, id := range append(cells, base.Parent(Level-2), base.Parent(Level-1)) {
				c := s2.CellFromCellID(id)
				if g, w := pl.IntersectsCell(c), loop.IntersectsCell(c); g != w {
					t.Fatalf("run %d: cell %v: planar %v, s2 %v", i, id, g, w)
				}
				if poly := pl.faces[c.Face()]; poly != nil && poly.classify(c.BoundUV()) == cellAmbiguous {
					ambiguous++
				}
			}
		}
	}
	// The outlines follow cell edges, so the s2 fallback must have been
	// exercised; if it never is, this test no longer tests it.
	if ambiguous == 0 {
		t.Fatal("no cell was ambiguous: the fallback to s2 went untested")
	}
}

func dedupe(pts []s2.Point) []s2.Point {
	var out []s2.Point
	for _, p := range pts {
		if !slices.ContainsFunc(out, func(q s2.Point) bool { return q.ApproxEqual(p) }) {
			out = append(out, p)
		}
	}
	return out
}

// exact returns the points as the API would build them from lat/lng.
func exact(verts []models.LatLng) []s2.Point {
	out := make([]s2.Point, len(verts))
	for i, v := range verts {
		out[i] = s2.PointFromLatLng(s2.LatLngFromDegrees(v.Lat, v.Lng))
	}
	return out
}

func pointsToLatLng(pts []s2.Point) []models.LatLng {
	out := make([]models.LatLng, len(pts))
	for i, p := range pts {
		ll := s2.LatLngFromPoint(p)
		out[i] = models.LatLng{Lat: ll.Lat.Degrees(), Lng: ll.Lng.Degrees()}
	}
	return out
}

func TestFacePolygonClassify(t *testing.T) {
	square := &facePolygon{uv: []r2.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}}
	square.bound = r2.RectFromPoints(square.uv...)
	rect := func(x0, y0, x1, y1 float64) r2.Rect {
		return r2.RectFromPoints(r2.Point{X: x0, Y: y0}, r2.Point{X: x1, Y: y1})
	}
	for _, tc := range []struct {
		name string
		r    r2.Rect
		want cellRelation
	}{
		{"inside", rect(0.2, 0.2, 0.4, 0.4), cellInside},
		{"outside, beside", rect(1.2, 0.2, 1.4, 0.4), cellOutside},
		{"outside, far", rect(5, 5, 6, 6), cellOutside},
		{"crossed by an edge", rect(0.9, 0.2, 1.1, 0.4), cellCrossed},
		{"contains the polygon", rect(-1, -1, 2, 2), cellCrossed},
		{"touching an edge from outside", rect(1, 0.2, 1.2, 0.4), cellAmbiguous},
		{"touching an edge from inside", rect(0.8, 0.2, 1, 0.4), cellAmbiguous},
		{"within eps outside", rect(1+planarEps/2, 0.2, 1.2, 0.4), cellAmbiguous},
		{"just beyond eps outside", rect(1+3*planarEps, 0.2, 1.2, 0.4), cellOutside},
		{"touching a corner", rect(1, 1, 1.2, 1.2), cellAmbiguous},
	} {
		if got := square.classify(tc.r); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}

	// A diagonal edge passing near but not through a rectangle's corner.
	tri := &facePolygon{uv: []r2.Point{{X: 0, Y: 0}, {X: 2, Y: 0}, {X: 0, Y: 2}}}
	tri.bound = r2.RectFromPoints(tri.uv...)
	if got := tri.classify(rect(1.1, 1.1, 1.5, 1.5)); got != cellOutside {
		t.Errorf("rect beyond the hypotenuse: got %v, want outside", got)
	}
	if got := tri.classify(rect(0.9, 0.9, 1.5, 1.5)); got != cellCrossed {
		t.Errorf("rect across the hypotenuse: got %v, want crossed", got)
	}
}

func TestProjectRejectsFarVertices(t *testing.T) {
	// A vertex on the far side of face 0's hemisphere (x < 0) or too close
	// to its rim.
	pts := []s2.Point{
		s2.PointFromLatLng(s2.LatLngFromDegrees(0, 0)),
		s2.PointFromLatLng(s2.LatLngFromDegrees(0, 80)),
		s2.PointFromLatLng(s2.LatLngFromDegrees(1, 0)),
	}
	if project(pts, 0) == nil {
		t.Fatal("vertices within 80° of face 0's centre were rejected")
	}
	pts[1] = s2.PointFromLatLng(s2.LatLngFromDegrees(0, 85)) // cos 85° < minAxis
	if project(pts, 0) != nil {
		t.Fatal("a vertex 85° from face 0's centre was accepted")
	}
	if project(pts, 3) != nil {
		t.Fatal("vertices on face 0 were projected onto the opposite face")
	}
}
