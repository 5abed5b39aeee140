// Package pool owns the state of the DSS pool served by the auxiliary API
// (/aux/v1, docs/spec/aux.md): the DSS instances of the pool and their
// heartbeats. Its operations run on the same stores as SCD's (memstore,
// Raft, PostgreSQL) through repos.Pool, written once like pkg/scd's.
//
// Like every Operation, Execute here must never read the clock, random
// sources, the environment or the network: the heartbeat's time, reporter
// and instance identity arrive as fields decided by the handler.
package pool
