package geo

import (
	"github.com/golang/geo/r2"
	"github.com/golang/geo/s2"
)

// planarLoop answers s2.Loop.IntersectsCell exactly as the loop would, but
// for almost every cell without the loop's ShapeIndex, which s2 builds on
// the first IntersectsCell call and consults with an allocated iterator on
// every call: for a 2 km square that was two thirds of the cost of its
// covering.
//
// The idea: a cell's edges and a loop's edges are geodesics, and the
// gnomonic projection of a cube face (S2's (u,v) coordinates) maps every
// geodesic of that face's open hemisphere to a straight line. Projected onto
// the face of the cell being tested, the loop is a plane polygon and the
// cell an axis-aligned rectangle (Cell.BoundUV, exact), so the test is plane
// geometry. Each cell is put in one of three cases, with a margin eps far
// above the rounding of either computation (~1e-15 in u,v; a level-13 cell
// is ~2.4e-4 wide):
//
//   - a loop edge meets the rectangle shrunk by eps: the boundary crosses the
//     cell's interior, and s2 answers true (the ShapeIndex cell holding the
//     cell holds that edge, or the cell contains index cells);
//   - no loop edge comes within eps of the rectangle: the cell is entirely
//     inside or entirely outside, and s2 answers whether the loop contains
//     the cell's centre, which the crossing-number test decides reliably so
//     far from the boundary;
//   - otherwise (an edge within eps of the cell's boundary) the loop's own
//     IntersectsCell decides, so s2's approximate boundary test keeps the
//     last word where it could matter.
//
// The projection is used only when every vertex lies well inside the face's
// hemisphere (component along the face axis ≥ minAxis of a unit vector);
// then the loop's interior (the smaller region, as smallerRegion normalises)
// is the bounded plane polygon. Loops too large or too spread for that fall
// back to s2 on that face. TestCoverMatchesRegionCoverer checks the result
// against s2.RegionCoverer on thousands of random outlines, circles and
// places at cube edges, corners and poles.
type planarLoop struct {
	loop  *s2.Loop
	pts   []s2.Point
	faces [6]*facePolygon
	tried [6]bool
}

// facePolygon is a loop projected onto one face's (u,v) plane.
type facePolygon struct {
	uv    []r2.Point
	bound r2.Rect
}

const (
	// planarEps is the margin of the plane tests in (u,v) units: about 6 µm
	// on the ground, a thousand times the rounding of the projection.
	planarEps = 1e-9
	// minAxis keeps projected coordinates within ±10, where float64
	// rounding stays far below planarEps.
	minAxis = 0.1
)

func newPlanarLoop(loop *s2.Loop, pts []s2.Point) *planarLoop {
	return &planarLoop{loop: loop, pts: pts}
}

// CapBound and RectBound make planarLoop an s2.Region for FastCovering.
func (p *planarLoop) CapBound() s2.Cap   { return p.loop.CapBound() }
func (p *planarLoop) RectBound() s2.Rect { return p.loop.RectBound() }

// ContainsCell is part of s2.Region; the covering never calls it.
func (p *planarLoop) ContainsCell(c s2.Cell) bool   { return p.loop.ContainsCell(c) }
func (p *planarLoop) ContainsPoint(q s2.Point) bool { return p.loop.ContainsPoint(q) }
func (p *planarLoop) CellUnionBound() []s2.CellID   { return p.loop.CellUnionBound() }

// IntersectsCell reports what p.loop.IntersectsCell(c) reports.
func (p *planarLoop) IntersectsCell(c s2.Cell) bool {
	f := int(c.Face())
	if !p.tried[f] {
		p.faces[f], p.tried[f] = project(p.pts, f), true
	}
	poly := p.faces[f]
	if poly == nil {
		return p.loop.IntersectsCell(c)
	}
	switch poly.classify(c.BoundUV()) {
	case cellCrossed, cellInside:
		return true
	case cellOutside:
		return false
	}
	return p.loop.IntersectsCell(c)
}

// project returns pts on face f's (u,v) plane, or nil when some vertex is
// not well inside the face's hemisphere.
func project(pts []s2.Point, f int) *facePolygon {
	uv := make([]r2.Point, len(pts))
	for i, q := range pts {
		var axis, a, b float64
		switch f {
		case 0:
			axis, a, b = q.X, q.Y, q.Z
		case 1:
			axis, a, b = q.Y, -q.X, q.Z
		case 2:
			axis, a, b = q.Z, -q.X, -q.Y
		case 3:
			axis, a, b = -q.X, -q.Z, -q.Y
		case 4:
			axis, a, b = -q.Y, -q.Z, q.X
		default:
			axis, a, b = -q.Z, q.Y, q.X
		}
		// The points are unit vectors (s2.PointFromLatLng), so axis is the
		// cosine of the angle to the face centre.
		if !(axis >= minAxis) {
			return nil
		}
		uv[i] = r2.Point{X: a / axis, Y: b / axis}
	}
	return &facePolygon{uv: uv, bound: r2.RectFromPoints(uv...)}
}

type cellRelation int

const (
	cellAmbiguous cellRelation = iota // an edge within planarEps of the cell's boundary
	cellCrossed                       // the boundary passes through the cell's interior
	cellInside                        // the cell lies inside the polygon, away from its boundary
	cellOutside                       // the cell lies outside the polygon, away from its boundary
)

// classify relates the closed rectangle r to the polygon (see planarLoop).
func (poly *facePolygon) classify(r r2.Rect) cellRelation {
	outer := r.ExpandedByMargin(planarEps)
	if !poly.bound.Intersects(outer) {
		return cellOutside
	}
	inner := r.ExpandedByMargin(-planarEps)
	near := false
	uv := poly.uv
	a := uv[len(uv)-1]
	for _, b := range uv {
		if segmentMeetsRect(a, b, inner) {
			return cellCrossed
		}
		if !near && segmentMeetsRect(a, b, outer) {
			near = true
		}
		a = b
	}
	if near {
		return cellAmbiguous
	}
	if poly.contains(r.Center()) {
		return cellInside
	}
	return cellOutside
}

// segmentMeetsRect reports whether the closed segment ab meets the closed
// rectangle r: their boxes overlap and the rectangle's corners are not all
// strictly on one side of the segment's line (separating axis test).
func segmentMeetsRect(a, b r2.Point, r r2.Rect) bool {
	if max(a.X, b.X) < r.X.Lo || min(a.X, b.X) > r.X.Hi ||
		max(a.Y, b.Y) < r.Y.Lo || min(a.Y, b.Y) > r.Y.Hi {
		return false
	}
	dx, dy := b.X-a.X, b.Y-a.Y
	side := func(x, y float64) float64 { return dx*(y-a.Y) - dy*(x-a.X) }
	s0 := side(r.X.Lo, r.Y.Lo)
	s1 := side(r.X.Hi, r.Y.Lo)
	s2 := side(r.X.Hi, r.Y.Hi)
	s3 := side(r.X.Lo, r.Y.Hi)
	pos := s0 >= 0 || s1 >= 0 || s2 >= 0 || s3 >= 0
	neg := s0 <= 0 || s1 <= 0 || s2 <= 0 || s3 <= 0
	return pos && neg
}

// contains is the crossing-number test of q against the polygon; q must be
// away from the boundary (classify guarantees planarEps).
func (poly *facePolygon) contains(q r2.Point) bool {
	inside := false
	uv := poly.uv
	a := uv[len(uv)-1]
	for _, b := range uv {
		if (a.Y > q.Y) != (b.Y > q.Y) {
			if x := a.X + (q.Y-a.Y)*(b.X-a.X)/(b.Y-a.Y); q.X < x {
				inside = !inside
			}
		}
		a = b
	}
	return inside
}
