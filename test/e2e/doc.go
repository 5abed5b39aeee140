// Package e2e holds end-to-end tests of raftdss: they build the core-service
// binary once per test binary, start real multi-node Raft clusters of it as
// separate processes on loopback, and check what only a real cluster can
// show: the conformance suite across nodes, leader kill -9 under load,
// follower catch-up from the WAL and by snapshot, and replicas converging to
// the same state hash. See README.md.
//
// The package has no non-test code; this file only carries the package
// documentation.
package e2e
