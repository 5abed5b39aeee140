// Package conformance holds black-box HTTP tests of the ASTM F3548-21 /dss/v1
// API (shared/spec/scd.md). The tests talk HTTP only, so the very same suite
// runs against an in-process server (the default) or against any running DSS
// named by DSS_BASE_URLS (see README.md and target_test.go).
//
// Every test is independent of the others and of data already in the target:
// fresh random IDs, its own random location, distinct USS subjects, time
// windows in the future.
package conformance
