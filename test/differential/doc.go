// Package differential holds the interoperability test of the SCD stores: a
// seeded random sequence of HTTP requests (several USSs with different
// scopes, overlapping volumes, creates, updates, deletes and queries of every
// entity, right and wrong OVNs and keys, implicit and explicit
// subscriptions, availability changes, eviction batches and dry runs of expired entities (a
// test-only route that runs scd.EvictExpired on the target's store),
// malformed input) is sent to the same
// HTTP handler (pkg/scd/server) over the memstore, the PostgreSQL store and
// a 3-node Raft store, all with the same injected clock, the same UUID
// source and tokens minted for the injected time. Every response must be
// identical — status, content type and body — except the random error-ID
// suffix " (E:<uuid>)" of error messages.
//
// On the first difference the sequence is shrunk by delta debugging (each
// candidate replayed from scratch on fresh stores) and the shortest
// reproducing sequence is printed as request lines, with each store's
// answer to the last one.
//
// The default run is bounded (a few seeds × a few hundred requests); longer
// runs take flags, e.g.
//
//	go test ./test/differential -run TestStoresAgree -diff.seeds=1-20 -diff.steps=3000
//
// -diff.targets picks the stores (default mem,sql,raft; the first is the
// reference the generator learns OVNs and versions from), -diff.raftnodes
// the Raft cluster's size, -diff.shrinktime bounds shrinking, and
// -diff.clockback lets the injected clock stand still or step back (clocks
// of several DSS nodes that disagree), which the default run never does.
//
// The package has no non-test code besides this comment.
package differential
