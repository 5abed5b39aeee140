// Package models holds the SCD domain types (IDs, OVNs, times, altitudes,
// 4D volumes, operational intents, constraints, subscriptions, USS
// availability) and their validation rules, plus the coded error every layer
// returns.
//
// It owns no I/O and no infrastructure: nothing here reads the clock,
// randomness, the environment or the network, so the types are safe to use
// inside replicated operations.
package models
