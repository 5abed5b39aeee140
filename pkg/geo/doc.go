// Package geo turns request footprints into sets of S2 cells: it owns the
// polygon validity rules, the circle approximation, the 2 500 km² area limit
// and the level-13 exterior covering of spec §4 (scd.md), built on
// github.com/golang/geo/s2 for parity with the reference DSS.
//
// Every function is a pure function of its arguments: no clock, randomness,
// environment, I/O or goroutines, and no shared mutable state, so it is safe
// for concurrent use and may be called from inside an operation's Execute.
// Returned cell sets are sorted ascending without duplicates
// (models.NormalizeCells order), every cell at level 13, as the store's
// intersection helpers require.
//
// This package must never decide HTTP statuses (it returns coded
// models.Error values: CodeBadRequest, or CodeAreaTooLarge whose status the
// endpoint picks), never panic on client input (NaN, ±Inf, out-of-range or
// degenerate geometry is a bad request), and never cap the number of cells
// of a covering (the area limit is what bounds it).
package geo
