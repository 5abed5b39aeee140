// Package server serves the auxiliary API of the DSS pool (/aux/v1,
// docs/spec/aux.md) as extra routes of the SCD handler (pkg/scd/server),
// which authenticates, checks scopes, bounds time and maps errors for both
// APIs in one place. It parses requests into pkg/pool operations and renders
// their results; it keeps no state of its own.
package server
