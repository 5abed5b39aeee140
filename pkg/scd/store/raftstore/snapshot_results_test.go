package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

type transactOutcome struct {
	i   int // which operation
	res any
	err error
}

// TestWriteAnsweredThroughSnapshot forces the rare path of a write whose
// outcome reaches its proposer only inside a leader's snapshot: a follower
// that hears nothing from the leader (the link leader → follower is cut; its
// own messages still get through) proposes a constraint PUT and a DELETE
// that fails; both commit on the leader and the third node; the leader's log
// is compacted past them; once the link is back, the follower installs a
// snapshot that includes them. Its clients get the real answers (201's
// result, 404's coded error), not "unknown outcome" (503).
func TestWriteAnsweredThroughSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cc *consensus.Config) { cc.SnapshotEntries = 16; cc.CatchUpEntries = 4 })
	var leader uint64
	waitFor(t, "a leader", func() bool { leader = c.stores[1].Status().Leader; return leader != 0 })
	f := uint64(1)
	if f == leader {
		f = 2
	}
	w := newWorkload(21)
	ctx := context.Background()
	readConstraint := func(id uint64, cr models.ID) (any, error) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return c.stores[id].Transact(rctx, &scd.GetConstraint{Caller: "uss-a", ID: cr})
	}
	// The follower's write must reach the leader before the follower, hearing
	// nothing, stops following it (an election timeout, 200-400 ms); on a
	// loaded machine it may not, and then the write completes through the
	// log after the link is back: try again.
	for attempt := 1; ; attempt++ {
		c.net.Disconnect(leader, f)
		put := &scd.PutConstraint{Caller: "uss-a", Now: w.now.Add(time.Duration(attempt) * time.Second),
			ID: models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", attempt)), Extents: w.volume(false),
			USSBaseURL: "https://a.example"}
		del := &scd.DeleteConstraint{Caller: "uss-a", ID: "00000000-0000-4000-8000-ffffffffffff", OVN: "x"}
		appliedBefore := c.stores[leader].Status().Applied
		results := make(chan transactOutcome, 2)
		for i, op := range []scd.Operation{put, del} {
			go func() {
				tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				res, err := c.stores[f].Transact(tctx, op)
				results <- transactOutcome{i, res, err}
			}()
		}
		reached := false
		deadline := time.Now().Add(2 * time.Second)
		for !reached && time.Now().Before(deadline) {
			// Both entries applied on the leader (nothing else is proposed
			// meanwhile), the PUT's visibly.
			_, err := readConstraint(leader, put.ID)
			reached = err == nil && c.stores[leader].Status().Applied >= appliedBefore+2
			time.Sleep(10 * time.Millisecond)
		}
		if !reached {
			c.net.Reconnect(leader, f)
			<-results
			<-results
			if attempt == 5 {
				t.Fatal("the follower's write never reached the leader while the follower was cut off")
			}
			continue
		}
		// Read the follower's state directly: a read through it waits for
		// the leader it cannot hear.
		if _, err := c.stores[f].repo.View(ctx, &scd.GetConstraint{Caller: "uss-a", ID: put.ID}); err == nil {
			t.Fatal("the cut-off follower applied the write through its log")
		}
		// Compact the leader's log past the write: several snapshots' worth
		// of entries, and wait for the snapshots.
		snaps := c.stores[leader].Node().Stats().Snapshots
		for i := range 48 {
			if _, err := c.stores[leader].Transact(ctx, &scd.PutUssAvailability{Now: w.now.Add(time.Hour),
				USS: fmt.Sprintf("uss-%d", i), Availability: models.AvailabilityNormal}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the leader to snapshot and compact", func() bool {
			return c.stores[leader].Node().Stats().Snapshots >= snaps+2
		})
		c.net.Reconnect(leader, f)

		var got [2]transactOutcome
		for range 2 {
			select {
			case o := <-results:
				got[o.i] = o
			case <-time.After(30 * time.Second):
				t.Fatal("no answer after the link came back")
			}
		}
		if got[0].err != nil {
			t.Fatalf("PUT through the follower: %v, want its result", got[0].err)
		}
		want, err := readConstraint(leader, put.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := got[0].res.(scd.ConstraintResult); !ok || !reflect.DeepEqual(r.CR, want) {
			t.Fatalf("PUT result %+v, leader has %+v", got[0].res, want)
		}
		var me *models.Error
		if !errors.As(got[1].err, &me) || me.Code != models.CodeNotFound {
			t.Fatalf("DELETE of an absent constraint through the follower: %v, want its 404", got[1].err)
		}
		if delivered, lost := c.stores[f].gen.SnapshotOutcomes(); delivered != 2 || lost != 0 {
			t.Fatalf("follower answered %d outcomes from a snapshot (%d lost), want 2 (0 lost)", delivered, lost)
		}
		break
	}
	c.converged(0)
}

// TestSnapshotWithoutResultsLoads: a snapshot written before the SCD state
// machine had a result codec (its dedupe table carries outcomes without
// results) still loads, and one written now loads too.
func TestSnapshotWithoutResultsLoads(t *testing.T) {
	st := memstore.NewState()
	w := newWorkload(4)
	for range 30 {
		op := w.op()
		res, err := st.Apply(context.Background(), op)
		w.learn(op, res, err)
	}
	repoSnap, err := (&stateRepo{st: st, index: 1}).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The store's snapshot: version 1 | uvarint len(table) | table | state
	// machine snapshot, the table holding node 2's session (epoch 5,
	// watermark 3) with outcome 3. A build without the codec wrote the
	// outcome without its result (flag 0); this one writes it with it (flag
	// 1, length, bytes); a newer build may write a result encoding this one
	// does not know, which must not keep the snapshot from loading.
	snapshot := func(outcome []byte) []byte {
		table := append([]byte{1, 2, 5, 3, 1, 3}, outcome...)
		b := append(binary.AppendUvarint([]byte{1}, uint64(len(table))), table...)
		return append(b, repoSnap...)
	}
	res, err := encodeResult(scd.AvailabilityView{USS: "uss-a", Availability: models.AvailabilityNormal, Version: "v"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	withResult := func(enc []byte) []byte { return append(binary.AppendUvarint([]byte{1}, uint64(len(enc))), enc...) }
	newer := append([]byte{resultVersion + 1}, res[1:]...)
	for name, data := range map[string][]byte{
		"without results": snapshot([]byte{0}),
		"with a result":   snapshot(withResult(res)),
		"newer result":    snapshot(withResult(newer)),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := consensus.BootstrapFromSnapshot(dir, 1, []uint64{1}, 1, data, nil); err != nil {
				t.Fatal(err)
			}
			got, _, err := ReadDataDir(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash() != st.Hash() {
				t.Fatal("state restored from the snapshot differs")
			}
		})
	}
}
