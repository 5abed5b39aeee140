//go:build race

package memstore

// raceEnabled skips the 100k-OIR measurements under the race detector, which
// makes them slow and distorts memory figures.
const raceEnabled = true
