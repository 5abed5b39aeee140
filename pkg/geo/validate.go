package geo

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/models"
)

// touchTolerance is how close (as an angle) a vertex may come to a
// non-adjacent edge before the two count as touching (spec §4 rule 2).
// S2's exact predicates see a vertex lying "on" an edge as slightly to one
// side, so without a tolerance a T-junction would pass. 1e-12 rad (≈6 µm on
// the ground) is far above float rounding (~1e-15 rad) and far below any
// coordinate precision a client uses (1e-7° ≈ 1 cm).
const touchTolerance = s1.Angle(1e-12)

var touchChord = s1.ChordAngleFromAngle(touchTolerance)

// antipodalChord: vertices whose sum is shorter than this are antipodal to
// within float resolution, and the great-circle edge between them is
// undefined (spec §4 rule 3).
const antipodalChord = 2e-12

// checkNonAdjacentEdges applies spec §4 rule 2: no two non-adjacent edges
// (edge i joins vertices i and i+1; the last edge closes the ring and is
// adjacent to the first) may cross, share a vertex or touch. A triangle has
// no non-adjacent edges.
//
// Rather than testing all n²/2 pairs (a large outline in a request body
// would make that a cheap denial of service), edges are sorted by a
// conservative interval of one coordinate and only pairs whose intervals
// overlap are tested. Each pair tested costs pairCost work units of b (an
// outline whose edges all overlap on every axis, such as a comb of long
// teeth, still has n²/2 pairs), and b's context is looked at every
// ctxCheckEvery pairs.
func checkNonAdjacentEdges(pts []s2.Point, b *Budget) error {
	n := len(pts)
	if n < 4 {
		return nil
	}
	if pts[n-1] == pts[0] {
		return models.Errorf(models.CodeBadRequest,
			"polygon vertices[%d] repeats vertices[0]: outlines close implicitly, so the first vertex must not be repeated at the end", n-1)
	}
	var buf [32]edgeSpan
	spans := buf[:0]
	if n > len(buf) {
		spans = make([]edgeSpan, 0, n)
	}
	axis := widestAxis(pts)
	for i := range n {
		spans = append(spans, spanOf(pts[i], pts[(i+1)%n], axis, i))
	}
	slices.SortFunc(spans, func(x, y edgeSpan) int {
		if c := cmp.Compare(x.lo, y.lo); c != 0 {
			return c
		}
		return cmp.Compare(x.edge, y.edge)
	})
	tested := 0
	for x, s := range spans {
		for _, t := range spans[x+1:] {
			if t.lo > s.hi {
				break
			}
			i, j := min(s.edge, t.edge), max(s.edge, t.edge)
			if j-i == 1 || j-i == n-1 {
				continue // adjacent edges share a vertex by construction
			}
			if b.work -= pairCost; b.work < 0 {
				return tooMuchWork()
			}
			if tested++; tested%ctxCheckEvery == 0 {
				if err := b.checkCtx(); err != nil {
					return err
				}
			}
			if err := checkEdgePair(pts, i, j); err != nil {
				return err
			}
		}
	}
	return nil
}

// edgeSpan bounds the coordinates (on one axis) of every point of an edge.
type edgeSpan struct {
	lo, hi float64
	edge   int
}

// spanSlack widens every span so that rounding in spanOf and the touch
// tolerance can never make two touching edges look disjoint.
const spanSlack = 1e-10

// spanOf bounds coordinate axis over the great-circle arc from a to b. Each
// arc point is q/|q| with q a convex combination of a and b, so its
// coordinate lies between those of a and b divided by some |q| in
// [cos(θ/2), 1] = [|a+b|/2, 1].
func spanOf(a, b s2.Point, axis, edge int) edgeSpan {
	ca, cb := coord(a, axis), coord(b, axis)
	lo, hi := min(ca, cb), max(ca, cb)
	if c := a.Add(b.Vector).Norm() / 2; c > 1e-6 {
		lo, hi = min(lo, lo/c), max(hi, hi/c)
	} else {
		lo, hi = -2, 2 // (near-)antipodal endpoints: the arc may go anywhere
	}
	return edgeSpan{lo: lo - spanSlack, hi: hi + spanSlack, edge: edge}
}

// widestAxis picks the coordinate along which the vertices spread most, so
// that the sweep separates as many edges as it can.
func widestAxis(pts []s2.Point) int {
	best, bestExtent := 0, -1.0
	for axis := range 3 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			v := coord(p, axis)
			lo, hi = min(lo, v), max(hi, v)
		}
		if hi-lo > bestExtent {
			best, bestExtent = axis, hi-lo
		}
	}
	return best
}

func coord(p s2.Point, axis int) float64 {
	switch axis {
	case 0:
		return p.X
	case 1:
		return p.Y
	default:
		return p.Z
	}
}

// checkEdgePair tests non-adjacent edges i < j for crossing, a shared
// vertex, or a vertex of one lying on (within touchTolerance of) the other.
func checkEdgePair(pts []s2.Point, i, j int) error {
	n := len(pts)
	ia, ib, ic, id := i, (i+1)%n, j, (j+1)%n
	a, b, c, d := pts[ia], pts[ib], pts[ic], pts[id]
	switch s2.CrossingSign(a, b, c, d) {
	case s2.Cross:
		return models.Errorf(models.CodeBadRequest,
			"polygon edges %s and %s cross (the outline intersects itself)", edgeName(i, n), edgeName(j, n))
	case s2.MaybeCross:
		// CrossingSign says MaybeCross exactly when the edges share an
		// endpoint; name the two vertices that coincide.
		for _, x := range [2]int{ia, ib} {
			for _, y := range [2]int{ic, id} {
				if pts[x] == pts[y] {
					return models.Errorf(models.CodeBadRequest,
						"polygon vertices[%d] and vertices[%d] are the same point, so non-adjacent edges %s and %s touch",
						min(x, y), max(x, y), edgeName(i, n), edgeName(j, n))
				}
			}
		}
		return models.Errorf(models.CodeBadRequest,
			"polygon edges %s and %s touch", edgeName(i, n), edgeName(j, n))
	}
	if touches(c, a, b) {
		return touchError(ic, i, n)
	}
	if touches(d, a, b) {
		return touchError(id, i, n)
	}
	if touches(a, c, d) {
		return touchError(ia, j, n)
	}
	if touches(b, c, d) {
		return touchError(ib, j, n)
	}
	return nil
}

func touchError(vertex, edge, n int) error {
	return models.Errorf(models.CodeBadRequest,
		"polygon vertices[%d] lies on non-adjacent edge %s (edges must not touch)", vertex, edgeName(edge, n))
}

func edgeName(i, n int) string {
	return "vertices[" + itoa(i) + "]→vertices[" + itoa((i+1)%n) + "]"
}

// touches reports whether x is within touchTolerance of the arc ab. The
// plane test rejects almost every pair with one dot product: x·(a×b) is
// |a×b| times x's distance to the great circle through a and b, up to a
// rounding error far below the slack added.
func touches(x, a, b s2.Point) bool {
	normal := a.Cross(b.Vector)
	if math.Abs(x.Dot(normal)) > float64(touchTolerance)*normal.Norm()+1e-14 {
		return false
	}
	return s2.IsDistanceLess(x, a, b, touchChord)
}

// checkLoopEdges applies spec §4 rule 3 to every edge: no duplicate
// consecutive vertices (a zero-length edge) and no antipodal consecutive
// vertices (an undefined edge). Rule 2 has already rejected most of these
// for outlines of four or more vertices; triangles reach here.
func checkLoopEdges(pts []s2.Point) error {
	n := len(pts)
	for i := range n {
		j := (i + 1) % n
		a, b := pts[i], pts[j]
		// Vertices closer than touchTolerance (e.g. the same pole written
		// with two longitudes) count as duplicates, as they would count as
		// touching were they not consecutive.
		if a == b || a.Sub(b.Vector).Norm() < float64(touchTolerance) {
			if j == 0 {
				return models.Errorf(models.CodeBadRequest,
					"polygon vertices[%d] repeats vertices[0]: outlines close implicitly, so the first vertex must not be repeated at the end", i)
			}
			return models.Errorf(models.CodeBadRequest,
				"polygon vertices[%d] and vertices[%d] are identical (zero-length edge)", i, j)
		}
		if a.Add(b.Vector).Norm() < antipodalChord {
			return models.Errorf(models.CodeBadRequest,
				"polygon vertices[%d] and vertices[%d] are antipodal (the edge between them is undefined)", min(i, j), max(i, j))
		}
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
