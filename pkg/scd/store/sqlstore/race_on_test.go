//go:build race

package sqlstore

// raceEnabled: the race detector slows CPU-bound tests several times.
const raceEnabled = true
