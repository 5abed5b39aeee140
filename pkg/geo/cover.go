package geo

import (
	"context"
	"math"
	"slices"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/models"
)

const (
	// Level is the only S2 cell level used for spatial indexing (spec §4,
	// ≈1.27 km² per cell on average).
	Level = 13

	// MaxAreaKm2 is the largest footprint accepted (spec §4 rule 5). It
	// applies to each polygon and, as this DSS chooses (§4 "MAY cap"), to
	// each circle, which bounds the number of cells any one request yields.
	MaxAreaKm2 = 2500.0

	// EarthRadiusMeters converts circle radii to angles (spec §4).
	EarthRadiusMeters = 6371010.0

	// earthAreaKm2 converts steradians to km² (spec §4 rule 5: area ×
	// 510 072 000 km² / 4π).
	earthAreaKm2 = 510072000.0

	// circleVertices is the vertex count of the regular polygon that stands
	// for a circle (spec §4).
	circleVertices = 20
)

// initialCoverer yields the starting cells of a covering exactly as
// s2.RegionCoverer's initialCandidates does for the parameters this package
// used to pass it (MinLevel = MaxLevel = Level, LevelMod 1, no cell cap): a
// FastCovering of the region's cap bound with at most 4 cells of level at
// most Level. It only holds parameters, so concurrent use is safe.
var initialCoverer = &s2.RegionCoverer{MaxLevel: Level, LevelMod: 1, MaxCells: 4}

// CoverPolygon validates a polygon outline and returns its level-13 covering
// under the default limits of one request (NewBudget), with no deadline.
func CoverPolygon(vertices []models.LatLng) ([]models.CellID, error) {
	b := defaultBudget(context.Background())
	return b.CoverPolygon(vertices)
}

// CoverCircle returns the level-13 covering of a circle under the default
// limits of one request (NewBudget), with no deadline.
func CoverCircle(center models.LatLng, radiusMeters float64) ([]models.CellID, error) {
	b := defaultBudget(context.Background())
	return b.CoverCircle(center, radiusMeters)
}

// CoverPolygon validates a polygon outline and returns its level-13 covering,
// applying the rules of spec §4 in order: vertex count and coordinate ranges;
// no crossing or touching non-adjacent edges; loop validity; normalisation to
// the smaller region (either winding order); area limit (CodeAreaTooLarge);
// a zero-area (collinear) outline is covered as a polyline. Any other failure
// is CodeBadRequest with a message naming the offending vertices or edges.
//
// Before that, the outline's vertices are charged to b (CodeBadRequest over
// MaxVerticesPerPolygon or the request's rest), and the work stops with
// CodeBadRequest ("area too complex") as soon as the covering would exceed
// the cells or work left in b, or with CodeUnavailable once b's context has
// ended. Within the budget the cells are exactly those of the unbounded
// covering.
func (b *Budget) CoverPolygon(vertices []models.LatLng) ([]models.CellID, error) {
	if err := b.takeVertices(len(vertices), "polygon"); err != nil {
		return nil, err
	}
	pts, err := validOutline(vertices, b)
	if err != nil {
		return nil, err
	}
	loop, steradians := smallerRegion(pts)
	if km2 := steradians * earthAreaKm2 / (4 * math.Pi); km2 > MaxAreaKm2 {
		return nil, models.Errorf(models.CodeAreaTooLarge,
			"polygon area %.1f km² exceeds the limit of %.0f km²", km2, MaxAreaKm2)
	}
	if steradians == 0 {
		return coverPolyline(pts, b)
	}
	return coverLoop(loop, pts, b)
}

// CoverCircle returns the level-13 covering of a circle, approximated (spec
// §4) by the regular 20-vertex polygon whose vertices lie on the circle. The
// radius must be positive and finite (spec §3.4); circles whose polygon
// exceeds MaxAreaKm2 get CodeAreaTooLarge. The 20 vertices and the covering
// are charged to b as CoverPolygon does.
func (b *Budget) CoverCircle(center models.LatLng, radiusMeters float64) ([]models.CellID, error) {
	if !(radiusMeters > 0) || math.IsInf(radiusMeters, 1) {
		return nil, models.Errorf(models.CodeBadRequest,
			"circle radius must be a positive, finite number of metres; got %v", radiusMeters)
	}
	if err := checkLatLng(center, "circle center", -1); err != nil {
		return nil, err
	}
	if err := b.takeVertices(circleVertices, "circle"); err != nil {
		return nil, err
	}
	radius := radiusMeters / EarthRadiusMeters
	if radius >= math.Pi/2 {
		// A quarter of a great circle or more: at least a hemisphere, far
		// over the limit; rejecting here also keeps the regular polygon away
		// from radii where "the smaller region" would be its outside.
		return nil, models.Errorf(models.CodeAreaTooLarge,
			"circle of radius %.0f m exceeds the area limit of %.0f km²", radiusMeters, MaxAreaKm2)
	}
	c := s2.PointFromLatLng(s2.LatLngFromDegrees(center.Lat, center.Lng))
	loop := s2.RegularLoop(c, s1.Angle(radius), circleVertices)
	pts := loop.Vertices()
	// A regular polygon is valid by construction except when the radius is
	// below float resolution and vertices coincide; smallerRegion then yields
	// ~zero area and the vertices are covered as points.
	loop, steradians := smallerRegionOf(loop)
	if km2 := steradians * earthAreaKm2 / (4 * math.Pi); km2 > MaxAreaKm2 {
		return nil, models.Errorf(models.CodeAreaTooLarge,
			"circle area %.1f km² (20-gon of radius %.0f m) exceeds the limit of %.0f km²",
			km2, radiusMeters, MaxAreaKm2)
	}
	if steradians == 0 {
		return coverPolyline(pts, b)
	}
	return coverLoop(loop, pts, b)
}

// AreaKm2 returns the area in km² of the smaller region a valid polygon
// outline encloses (spec §4 rules 1–4 and the rule 5 formula), or the
// CodeBadRequest error CoverPolygon would return for it (the vertex limit
// included).
func AreaKm2(vertices []models.LatLng) (float64, error) {
	b := defaultBudget(context.Background())
	if err := b.takeVertices(len(vertices), "polygon"); err != nil {
		return 0, err
	}
	pts, err := validOutline(vertices, &b)
	if err != nil {
		return 0, err
	}
	_, steradians := smallerRegion(pts)
	return steradians * earthAreaKm2 / (4 * math.Pi), nil
}

// validOutline applies spec §4 rules 1–3 and returns the outline as S2
// points (a fresh slice the caller owns). The crossing checks are charged
// to b.
func validOutline(vertices []models.LatLng, b *Budget) ([]s2.Point, error) {
	if len(vertices) < 3 {
		return nil, models.Errorf(models.CodeBadRequest,
			"polygon has %d vertices; at least 3 are required", len(vertices))
	}
	pts := make([]s2.Point, len(vertices))
	for i, v := range vertices {
		if err := checkLatLng(v, "polygon vertices", i); err != nil {
			return nil, err
		}
		pts[i] = s2.PointFromLatLng(s2.LatLngFromDegrees(v.Lat, v.Lng))
	}
	if err := checkNonAdjacentEdges(pts, b); err != nil {
		return nil, err
	}
	if err := checkLoopEdges(pts); err != nil {
		return nil, err
	}
	return pts, nil
}

// smallerRegion builds the loop over pts and normalises it to enclose the
// smaller of its two regions (spec §4 rule 4), returning its area in
// steradians (0 ≤ area ≤ 2π). pts may be reversed in place.
func smallerRegion(pts []s2.Point) (*s2.Loop, float64) {
	return smallerRegionOf(s2.LoopFromPoints(pts))
}

// smallerRegionOf is smallerRegion for a loop already built; Invert reverses
// the loop's own vertex slice.
func smallerRegionOf(loop *s2.Loop) (*s2.Loop, float64) {
	// Area, rather than Loop.Normalize's turning-angle test, decides: for a
	// degenerate (collinear) outline S2 may treat the loop as enclosing
	// nearly the whole sphere, and the area is what rule 5 and rule 6 test.
	area := loop.Area()
	if area > 2*math.Pi {
		loop.Invert()
		area = 4*math.Pi - area
	}
	if area < 0 { // defensive: Area is documented to lie in [0, 4π]
		area = 0
	}
	return loop, area
}

// coverLoop returns the exterior level-13 covering of loop. The cells of the
// vertices are added: they intersect the closed polygon by definition, and
// this guarantees a non-empty result for loops so thin that S2's interior
// tests see almost nothing.
func coverLoop(loop *s2.Loop, pts []s2.Point, b *Budget) ([]models.CellID, error) {
	return coverRegion(newPlanarLoop(loop, pts), pts, b)
}

// coverPolyline covers a zero-area outline as the polyline through its
// vertices (spec §4 rule 6).
func coverPolyline(pts []s2.Point, b *Budget) ([]models.CellID, error) {
	line := s2.Polyline(pts)
	return coverRegion(&line, pts, b)
}

// coverRegion covers region (whose vertices are pts) under b's budget and
// charges the cells it returns to b.
func coverRegion(region s2.Region, pts []s2.Point, b *Budget) ([]models.CellID, error) {
	limit, _ := b.volumeCells()
	w := walker{region: region, budget: b, limit: limit, cost: len(pts)}
	cu := w.cover(len(pts))
	if w.err == nil {
		w.pay(w.tests % ctxCheckEvery) // the tests not yet paid for
	}
	if w.err != nil {
		return nil, w.err
	}
	cells := toCells(cu, pts)
	if len(cells) > limit {
		// The vertex cells toCells adds took it over.
		return nil, b.tooManyCells()
	}
	b.cells -= len(cells)
	return cells, nil
}

// walker computes a covering under a budget: at most limit cells, cost
// work units per cell test taken from budget.work, and a look at the
// context every ctxCheckEvery tests. The first limit hit stops the walk
// and is kept in err.
type walker struct {
	region s2.Region
	budget *Budget
	limit  int
	cost   int
	tests  int
	out    []uint64
	err    error
}

// cover returns the level-Level cells of region in S2 (uint64) order, with
// room for extra more cells at the end, or stops with w.err set.
//
// It computes exactly what s2.RegionCoverer{MinLevel: Level, MaxLevel:
// Level, LevelMod: 1, MaxCells: math.MaxInt32}.Covering(region) returns,
// at about half the cost: with MinLevel == MaxLevel and no cell cap, that
// coverer starts from the same initial cells, subdivides every cell above
// Level whose IntersectsCell holds, keeps every level-Level cell whose
// IntersectsCell holds (its ContainsCell test cannot change the outcome at
// the last level and is skipped here), and finally sorts and expands the
// result to level Level. A depth-first walk makes the same IntersectsCell
// calls on the same cells, so it finds the same set, and because the initial
// cells are sorted and disjoint and children are visited in order, it finds
// them already sorted: no candidate objects, priority queue, normalisation
// or denormalisation. TestCoverMatchesRegionCoverer checks the equality on
// many random polygons, circles and polylines.
//
// The budget only ever stops the walk: it never skips a cell, so a walk
// that ends without error has found every cell. The output is counted as it
// grows, so an outline of a million cells costs the time and memory of
// limit cells before it is refused.
func (w *walker) cover(extra int) []uint64 {
	w.out = make([]uint64, 0, min(16+extra, w.limit))
	for _, id := range initialCoverer.FastCovering(w.region) {
		if c := s2.CellFromCellID(id); w.intersects(c) {
			w.descend(c)
		}
		if w.err != nil {
			return nil
		}
	}
	return w.out
}

// intersects is region.IntersectsCell(c) once the test is paid for; it
// reports false, with w.err set, when the budget is spent. Tests are paid
// for ctxCheckEvery at a time, with the look at the context, so that the
// common path only counts.
func (w *walker) intersects(c s2.Cell) bool {
	if w.tests++; w.tests%ctxCheckEvery == 0 {
		if !w.pay(ctxCheckEvery) {
			return false
		}
	}
	return w.region.IntersectsCell(c)
}

// pay charges n tests to the budget and looks at the context.
func (w *walker) pay(n int) bool {
	b := w.budget
	if b.work -= n * w.cost; b.work < 0 {
		w.err = tooMuchWork()
		return false
	}
	w.err = b.checkCtx()
	return w.err == nil
}

// descend appends the level-Level cells under c (which intersects region)
// that intersect region, in order.
func (w *walker) descend(c s2.Cell) {
	id := c.ID()
	if c.Level() >= Level {
		if len(w.out) >= w.limit {
			w.err = w.budget.tooManyCells()
			return
		}
		w.out = append(w.out, uint64(id))
		return
	}
	for child, end := id.ChildBegin(), id.ChildEnd(); child != end; child = child.Next() {
		if cc := s2.CellFromCellID(child); w.intersects(cc) {
			w.descend(cc)
		}
		if w.err != nil {
			return
		}
	}
}

// toCells bit-casts the covering (sorted as uint64) to models.CellID (spec
// §4: uint64 stored as int64, negative values occur), adds the vertex cells
// and returns the set sorted as int64.
//
// The uint64 order differs from the int64 order only in where the cells
// with the top bit set (faces 4 and 5) go: they become negative and move to
// the front, so the covering is rotated rather than sorted. The vertex
// cells almost always belong to the covering already; those that do not
// are appended and the result is sorted again.
func toCells(cu []uint64, pts []s2.Point) []models.CellID {
	split, _ := slices.BinarySearch(cu, 1<<63)
	n := len(cu)
	out := make([]models.CellID, n, n+len(pts))
	for i, id := range cu[split:] {
		out[i] = models.CellID(int64(id))
	}
	for i, id := range cu[:split] {
		out[n-split+i] = models.CellID(int64(id))
	}
	sorted := true
	for _, p := range pts {
		v := models.CellID(int64(s2.CellFromPoint(p).ID().Parent(Level)))
		if _, found := slices.BinarySearch(out[:n], v); !found {
			out = append(out, v)
			sorted = false
		}
	}
	if !sorted {
		return models.NormalizeCells(out)
	}
	return out
}

// checkLatLng applies the range rule of spec §3.4; NaN fails both
// comparisons and is rejected with the same message.
func checkLatLng(v models.LatLng, what string, index int) error {
	if v.Lat >= -90 && v.Lat <= 90 && v.Lng >= -180 && v.Lng <= 180 {
		return nil
	}
	where := what
	if index >= 0 {
		where = what + "[" + itoa(index) + "]"
	}
	if !(v.Lat >= -90 && v.Lat <= 90) {
		return models.Errorf(models.CodeBadRequest, "%s: latitude %v is outside [-90, 90]", where, v.Lat)
	}
	return models.Errorf(models.CodeBadRequest, "%s: longitude %v is outside [-180, 180]", where, v.Lng)
}
