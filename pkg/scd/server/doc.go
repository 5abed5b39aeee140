// Package server is the HTTP layer of the SCD DSS: the /dss/v1 routes of
// spec §1, and the steps every endpoint shares, in the order the spec
// prescribes (§1 "Order of evaluation"): route match (404), authentication
// (401), scope authorisation (403), body read (413) and parse (400), then the
// operation run through the Store, then rendering.
//
// It owns: the route table (method, path template, scope requirement and
// endpoint function), the 4 MiB body limit, the handler timeout, and the one
// mapping from models.Error codes to HTTP statuses and error bodies (§3.7).
//
// It must never: hold business rules (they live in the operations' Execute
// methods in pkg/scd, so every backend runs them identically); read the
// clock or generate IDs inside an operation (it decides Now and new IDs
// before the operation runs, so a replicated log carries them); touch the
// store for reports (§6.5); start goroutines that outlive a request; or write
// half a response (a response body is fully built before the status is sent).
package server
