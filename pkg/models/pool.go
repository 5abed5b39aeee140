package models

import "time"

// DSSInstance is one DSS instance of the pool (docs/spec/aux.md §3) and the
// most recent heartbeat recorded for it.
type DSSInstance struct {
	// ID is the instance's identity in the pool: its raft node ID (in
	// decimal) on the Raft store, its --locality otherwise.
	ID string
	// PublicEndpoint is the base URL clients reach the instance at, "" when
	// it was not configured.
	PublicEndpoint string
	// Heartbeat is the most recent heartbeat.
	Heartbeat Heartbeat
}

// Heartbeat is one heartbeat of a DSS instance.
type Heartbeat struct {
	// Timestamp is the time the heartbeat is for (the request's, or the
	// one the reporter gave).
	Timestamp time.Time
	// Reporter is the token subject of the client that reported it.
	Reporter string
	// Source says what triggered the heartbeat; never empty.
	Source string
	// Index counts the instance's heartbeats: 1 for its first.
	Index int64
	// NextExpectedBefore is when the next heartbeat is due; zero when the
	// reporter gave none.
	NextExpectedBefore time.Time
}
