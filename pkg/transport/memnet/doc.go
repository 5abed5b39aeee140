// Package memnet is an in-memory raft network for tests: every node gets a
// transport.Transport whose messages travel through one Network that can
// drop, delay, partition and heal.
//
// It owns the endpoints' per-peer queues and delivery goroutines and the
// fault-injection state. It never interprets raft state beyond recognising
// MsgSnap (whose outcome must be reported), never shares memory between
// sender and receiver (every message is cloned at Send), and never calls a
// Handler from the goroutine that called Send (reports are asynchronous, see
// internal/report).
//
// Randomness (drop decisions and delays) comes from math/rand seeded with the
// Network's seed. Each endpoint draws from its own source, derived from the
// seed and its node ID, in the order its Send calls happen, so a node's drops
// reproduce even when other nodes' goroutines interleave differently.
//
// Fault model: a message is dropped silently by the drop rate (packet loss:
// raft retries on its own timers), and dropped with ReportUnreachable when the
// link is cut (partition, isolation, disconnection, stopped destination) at
// the moment of delivery, which is how a broken connection looks to a real
// transport. A dropped MsgSnap is always reported as SnapshotFailure.
package memnet
