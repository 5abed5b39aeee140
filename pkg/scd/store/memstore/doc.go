// Package memstore is the in-memory SCD store: State, the implementation of
// repos.Repo over maps, slot arrays and an S2 cell index per entity kind, and
// Store, the single-node backend around it.
//
// State is also the state machine the Raft store replicates: every node
// applies the same operations in log order to its own State, and WriteSnapshot
// / ReadSnapshot / Hash give the canonical, versioned encoding used for Raft
// snapshots and for comparing replicas.
//
// It owns: the §4 matching rules (cells, inclusive time, altitude for OIRs
// only), the §9 notification increments, the §10 semantics of every Repo
// method, all-or-nothing application of an operation (undo log), and the
// snapshot format.
//
// Integrity it keeps like the SQL schema (spec §11), so both backends agree:
// an OIR may only reference an existing subscription, and deleting a
// subscription deletes its dependent OIRs (ON DELETE CASCADE).
//
// It must never: read the clock, randomness, the environment or the network;
// start goroutines; let map iteration order, slot numbers or write history
// leak into anything observable (results and snapshots are sorted by ID); hand
// out pointers to its stored entities or modify a slice it was given; panic on
// bad input or on a corrupt snapshot. It knows nothing of HTTP, auth or
// business rules (OVN checks, key checks): those live in the operations of
// pkg/scd.
package memstore
