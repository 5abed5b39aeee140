package raftstore

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/pool"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/store"
)

// TestHeartbeatsReplicate checks aux.md L1 and S1 on a 3-node cluster: a
// heartbeat written through node 1 is listed by node 2 (and 3) at once
// (reads are linearizable), each node's heartbeat is listed by every node,
// and a node restarted from a snapshot holding the instances ends with the
// same state hash as a single memstore given the same operations.
func TestHeartbeatsReplicate(t *testing.T) {
	c := newCluster(t, 3, func(cc *consensus.Config) { cc.SnapshotEntries = 4; cc.CatchUpEntries = 1 })
	ref := memstore.New()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 8, 3, 0, 0, 5, time.UTC)
	var want []*models.DSSInstance
	for i := range 12 {
		node := uint64(1 + i%3)
		op := &pool.PutHeartbeat{InstanceID: strconv.FormatUint(node, 10), PublicEndpoint: "https://n" + strconv.FormatUint(node, 10),
			Reporter: "operator", Source: "test", Timestamp: t0.Add(time.Duration(i) * time.Second)}
		got, err := store.Do[[]*models.DSSInstance](ctx, c.stores[node], op)
		if err != nil {
			t.Fatalf("heartbeat %d on node %d: %v", i, node, err)
		}
		refGot, err := store.Do[[]*models.DSSInstance](ctx, ref, op)
		if err != nil || !reflect.DeepEqual(got, refGot) {
			t.Fatalf("heartbeat %d: cluster %+v, memstore %+v (%v)", i, got, refGot, err)
		}
		want = got
		// The next node lists it.
		other := c.stores[1+node%3]
		listed, err := store.Do[[]*models.DSSInstance](ctx, other, &pool.ListDSSInstances{})
		if err != nil || !reflect.DeepEqual(listed, got) {
			t.Fatalf("heartbeat %d on node %d: node %d lists %+v (%v), want %+v", i, node, 1+node%3, listed, err, got)
		}
	}
	if len(want) != 3 || want[0].Heartbeat.Index != 4 {
		t.Fatalf("final list %+v", want)
	}
	idx, hash := c.converged(0)
	if hash != ref.Hash() {
		t.Fatal("cluster state hash differs from the single memstore's")
	}
	c.stop(2)
	if err := c.start(2); err != nil {
		t.Fatal(err)
	}
	if _, h := c.converged(idx); h != hash {
		t.Fatal("node 2 restarted from its snapshot differs")
	}
	listed, err := store.Do[[]*models.DSSInstance](ctx, c.stores[2], &pool.ListDSSInstances{})
	if err != nil || !reflect.DeepEqual(listed, want) {
		t.Fatalf("restarted node 2 lists %+v (%v), want %+v", listed, err, want)
	}
}
