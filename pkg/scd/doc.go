// Package scd is the ASTM F3548-21 strategic coordination service: one
// Operation per endpoint that touches the store (operations.go) and, in the
// exec_*.go files, the transactional logic of each (spec §6–§9): existence,
// ownership and OVN checks, subscription resolution and implicit
// subscriptions, the key check, writes and notification increments.
//
// An operation's Execute is written once and runs unchanged on every backend:
// in memory, inside a SERIALIZABLE SQL transaction (possibly several times,
// on retry) and in every replica's Raft apply loop. Hence what this package
// must never do inside Execute:
//   - read the clock, randomness, the environment or the network: the request
//     time (Now) and generated IDs travel inside the operation, so every
//     replica computes the same OVNs and versions (determinism_test.go
//     enforces this mechanically);
//   - panic on any repository state: a committed Raft entry that panics would
//     crash every replica on replay, so every bad state is an error value;
//   - modify values it got from the repository in place, or keep or return
//     memory it handed to the repository (see the repos.Repo contract);
//   - know about HTTP: errors are models.Error codes, and the HTTP layer
//     (pkg/scd/server) maps them to statuses and scrubs OVNs for callers that
//     do not manage an entity.
//
// Stateless validation (body parsing, ID formats, geometry, scopes) happens
// before an operation is built; Execute starts at the "tx" step of each
// endpoint in the spec and follows its evaluation order exactly, because the
// first failing check decides the status code.
package scd
