// Package sqlstore is the SCD store on PostgreSQL (spec §10 "SQL backend",
// §11 schema), for operators who run the DSS on a database today.
//
// It owns: the schema and its versioned up/down migrations, embedded in the
// binary (Migrate, SchemaVersion); the check at Open that the database has
// exactly that version; Store, which runs each operation of pkg/scd in one
// SERIALIZABLE transaction and reruns it as a whole when PostgreSQL aborts
// it for serialization (40001) or a deadlock (40P01); and the transactional
// repos.Repo those operations run against, whose every method has the
// semantics of the in-memory store's (pkg/scd/store/memstore): the §4
// matching rules, the §9 increments as one UPDATE … RETURNING, results
// sorted by ID, the same errors, ON DELETE CASCADE from a subscription to its
// OIRs. The same operations on both stores give the same results.
//
// Instants are stored exactly, to the nanosecond (timestamptz plus the
// nanoseconds below its microsecond), because OVNs and versions derive from
// the write time formatted with nanoseconds.
//
// It must never: run business rules (they live in the operations), have an
// effect outside the transaction (an operation may run several times, and
// only its committed run counts), retry a commit whose outcome is unknown,
// or report a database failure as the client's fault (database errors are
// CodeUnavailable or CodeInternal, never a 4xx).
package sqlstore
