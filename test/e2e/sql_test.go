package e2e

import (
	"testing"

	"github.com/raftdss/dss/internal/pgtest"
)

// SQL scenarios: core-service processes on the PostgreSQL store
// (--datastore_url), sharing one database of a throwaway server
// (internal/pgtest, started once for the package, stopped by TestMain). A
// missing PostgreSQL fails these tests; it never skips them.

// TestConformanceSQLTwoNodes runs the conformance suite against two nodes
// sharing one database, requests rotating between them: PostgreSQL is the
// only shared state, so a write through one node and the read of it through
// the other must behave as on a single store. Both nodes start with
// --migrate at the same moment on an empty database, so the migration lock
// is exercised too.
func TestConformanceSQLTwoNodes(t *testing.T) {
	c := NewCluster(t, Options{Nodes: 2, DatastoreURL: pgtest.NewDatabase(t)})
	runConformance(t, c)
}

// TestConformanceSQLOneNode runs the suite against a single SQL node, the
// plain deployment of an operator moving from the existing DSS.
func TestConformanceSQLOneNode(t *testing.T) {
	c := NewCluster(t, Options{Nodes: 1, DatastoreURL: pgtest.NewDatabase(t)})
	runConformance(t, c)
}

// TestSQLNodeKilled: a node on the SQL store keeps nothing of its own, so
// killing one (kill -9) loses nothing that was acknowledged; the other node
// serves on, and the killed one, restarted, serves every write, including
// those made while it was down.
func TestSQLNodeKilled(t *testing.T) {
	c := NewCluster(t, Options{Nodes: 2, Dev: true, DatastoreURL: pgtest.NewDatabase(t)})
	before := c.WriteOIRs(t, 40, []int{0, 1})
	c.KillNode(0)
	missed := c.WriteOIRs(t, 20, []int{1})
	c.RestartNode(0)
	c.CheckOIRs(t, before, []int{0, 1})
	c.CheckOIRs(t, missed, []int{0, 1})
	c.StopNode(0)
	c.StopNode(1)
}
