// Package geo turns request footprints into sets of S2 cells: it owns the
// polygon validity rules, the circle approximation, the 2 500 km² area limit
// and the level-13 exterior covering of spec §4 (scd.md), built on
// github.com/golang/geo/s2 for parity with the reference DSS.
//
// Every function is a pure function of its arguments: no clock, randomness,
// environment, I/O or goroutines, and no shared mutable state, so it is safe
// for concurrent use and may be called from inside an operation's Execute
// (with a Budget without context: a context's deadline is a clock).
// Returned cell sets are sorted ascending without duplicates
// (models.NormalizeCells order), every cell at level 13, as the store's
// intersection helpers require.
//
// The area limit does not bound a covering's cost (a needle-thin outline of
// small area covers cells along its whole length), so coverings run under a
// Budget (budget.go): vertices per polygon and per request, cells per
// volume and per request, and work (edges × cell tests) per request, each
// checked before or while the work is done, never after; a Budget may also
// carry the request's context, whose end stops the work. Within the limits,
// a covering is exactly the uncapped covering of spec §4; over them it is
// refused ("area too complex", CodeBadRequest), a deliberate deviation from
// the spec's "no cell-count cap" (docs/limits.md).
//
// This package must never decide HTTP statuses (it returns coded
// models.Error values: CodeBadRequest, CodeAreaTooLarge whose status the
// endpoint picks, or CodeUnavailable when the context ended) and never
// panic on client input (NaN, ±Inf, out-of-range or degenerate geometry is
// a bad request).
package geo
