package geo

import (
	"context"
	"math"

	"github.com/raftdss/dss/pkg/models"
)

// Limits on the geometry of one request. A covering's cost grows with its
// number of cells (the boundary's length, not the area: a polygon of a
// hundred 0.1 m-wide, 7 000 km-long teeth has ~70 km² but ~530 000 cells)
// and with its number of vertices (every cell test looks at every edge), so
// the area limit alone bounds neither time nor memory. These limits are
// checked before or during the work, never after it: a covering stops as
// soon as it would exceed its cell budget.
//
// The values, and why honest requests stay well within them (cell counts
// measured with this package):
//
//   - A square or a circle at the area limit (2 500 km²) has 1 650–3 400
//     cells depending on where it lies (S2 cells at level 13 range from
//     about 0.8 to 1.6 km²); MaxCellsPerVolume is three times the worst.
//   - A 100 m-wide corridor has ~0.8 cells per km along a meridian and up
//     to ~1.4 per km diagonally: 10 000 cells is a corridor of 7 000 km or
//     more, longer than any flight a USS plans as one volume.
//   - Benchmarks and conformance tests send 2 km flights (9 cells), 10 km
//     subscription tiles (~100 cells) and circles of ≤ 1.5 km.
//   - A request's extents may hold many volumes: MaxCellsPerRequest (their
//     coverings summed before the union) is five areas at the limit or
//     hundreds of ordinary flight segments.
//   - Outlines: a circle drawn with a vertex per degree has 360 vertices,
//     a route buffered into a corridor a few hundred; MaxVerticesPerPolygon
//     is several times that. A 4 MiB body could otherwise carry ~100 000.
//   - MaxWorkPerRequest bounds vertices × cells (one unit is one edge looked
//     at by one cell test, ~8 ns on a 2020s server core, so the whole budget
//     is ~0.15 s of CPU): a 2 000-vertex outline at the area limit spends
//     under a quarter of it, a 20-vertex circle well under 1 %.
//
// Memory: a stored entity holds its cells (8 bytes each) and the in-memory
// store indexes each cell (a map entry and a list entry), about 170 bytes
// per cell in all when no other entity covers it: an entity at
// MaxCellsPerRequest keeps at most ~3.5 MB of heap on each replica
// (TestStoredEntityMemoryIsBounded in pkg/scd/server measures ~2.7 MB at
// ~16 000 cells), where one unbounded comb kept ~210 MB.
const (
	// MaxVerticesPerPolygon is the most vertices one outline_polygon may
	// have.
	MaxVerticesPerPolygon = 2_000
	// MaxVerticesPerRequest is the most polygon vertices (a circle counts
	// as its 20) all volumes of one request may have together.
	MaxVerticesPerRequest = 10_000
	// MaxCellsPerVolume is the most level-13 cells one volume's covering
	// may have.
	MaxCellsPerVolume = 10_000
	// MaxCellsPerRequest is the most cells the coverings of one request's
	// volumes may have together (counted per volume, before their union).
	MaxCellsPerRequest = 20_000
	// MaxWorkPerRequest is the most edge tests (polygon edges looked at by
	// cell tests, and eight per pair of edges checked for crossing) the
	// geometry of one request may cost.
	MaxWorkPerRequest = 20_000_000
)

// CircleVertices is what a circle counts towards MaxVerticesPerRequest:
// the vertices of the polygon that stands for it (spec §4).
const CircleVertices = circleVertices

// pairCost is the work charged for testing two edges for crossing or
// touching: about eight times the cost of looking at an edge in a cell test.
const pairCost = 8

// ctxCheckEvery is how many cell tests run between two looks at the
// context: ~256 × 20 vertices × 8 ns ≈ 40 µs at the smallest outlines, so a
// deadline is noticed within a millisecond while the check costs nothing
// measurable.
const ctxCheckEvery = 256

// Budget is what the geometry of one request may still spend: cells,
// vertices, work, and the request's deadline. Each covering takes what it
// used from it, so the limits of a request hold across all its volumes.
// A Budget is used by one request at a time (it is not safe for concurrent
// use); it holds no clock of its own: only its context can end the work
// early.
type Budget struct {
	ctx             context.Context
	cells           int // left for the request
	cellsPerVolume  int
	vertices        int // left for the request
	verticesPerPoly int
	work            int // left for the request
}

// NewBudget returns the budget of one request with the default limits.
// ctx (which may be nil) interrupts the work when it ends: the covering then
// fails with CodeUnavailable wrapping ctx.Err().
func NewBudget(ctx context.Context) *Budget {
	b := defaultBudget(ctx)
	return &b
}

// defaultBudget is NewBudget as a value, which the package's own functions
// keep on the stack.
func defaultBudget(ctx context.Context) Budget {
	return Budget{
		ctx:             ctx,
		cells:           MaxCellsPerRequest,
		cellsPerVolume:  MaxCellsPerVolume,
		vertices:        MaxVerticesPerRequest,
		verticesPerPoly: MaxVerticesPerPolygon,
		work:            MaxWorkPerRequest,
	}
}

// unlimited is a budget no covering exhausts: what the coverings were
// before the limits, for tests that compare with them.
func unlimited() *Budget {
	return &Budget{cells: math.MaxInt, cellsPerVolume: math.MaxInt, vertices: math.MaxInt,
		verticesPerPoly: math.MaxInt, work: math.MaxInt}
}

// CellsLeft is how many cells the request's coverings may still return.
func (b *Budget) CellsLeft() int { return b.cells }

// takeVertices charges an outline of n vertices (what is the polygon
// called in messages).
func (b *Budget) takeVertices(n int, what string) error {
	if n > b.verticesPerPoly {
		return models.Errorf(models.CodeBadRequest,
			"%s has %d vertices; at most %d are allowed", what, n, b.verticesPerPoly)
	}
	if n > b.vertices {
		return models.Errorf(models.CodeBadRequest,
			"the request's outlines have more than %d vertices in all", MaxVerticesPerRequest)
	}
	b.vertices -= n
	return nil
}

// volumeCells is the cell budget of the next volume and whether it is the
// request's rest (rather than the per-volume limit) that binds.
func (b *Budget) volumeCells() (int, bool) {
	if b.cells < b.cellsPerVolume {
		return b.cells, true
	}
	return b.cellsPerVolume, false
}

// tooManyCells is the error of a covering over its cell budget.
func (b *Budget) tooManyCells() error {
	limit, request := b.volumeCells()
	if request {
		return models.Errorf(models.CodeBadRequest,
			"area too complex: the request's coverings exceed %d level-13 cells in all", MaxCellsPerRequest)
	}
	return models.Errorf(models.CodeBadRequest,
		"area too complex: its covering exceeds %d level-13 cells (simplify the outline or split it)", limit)
}

// tooMuchWork is the error of geometry over the work budget.
func tooMuchWork() error {
	return models.Errorf(models.CodeBadRequest,
		"area too complex: checking and covering the request's outlines would take more than %d edge tests (use fewer vertices or smaller areas)",
		MaxWorkPerRequest)
}

// interrupted is the error of geometry stopped by the request's context.
func interrupted(cause error) error {
	return &models.Error{Code: models.CodeUnavailable,
		Message: "request timed out while computing the covering", Cause: cause}
}

// checkCtx returns the interruption error once the context has ended.
func (b *Budget) checkCtx() error {
	if b.ctx == nil {
		return nil
	}
	if err := b.ctx.Err(); err != nil {
		return interrupted(err)
	}
	return nil
}
