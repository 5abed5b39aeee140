package raftstore

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
)

// recorderWithoutCodec is a recorder that does not implement ResultCodec.
type recorderWithoutCodec struct{ r *recorder }

func (n recorderWithoutCodec) Apply(i uint64, d []byte) (any, error) { return n.r.Apply(i, d) }
func (n recorderWithoutCodec) Snapshot() ([]byte, error)             { return n.r.Snapshot() }
func (n recorderWithoutCodec) Restore(b []byte) error                { return n.r.Restore(b) }

// A proposal whose entry its node receives only inside a leader's snapshot
// (the link leader → proposer is cut while it commits, and the leader's log
// is compacted past it) is answered from the snapshot's dedupe table: with
// its real result when the state machine is a ResultCodec, with
// ErrIndeterminate otherwise; SnapshotOutcomes counts either.
func TestProposalAnsweredFromSnapshot(t *testing.T) {
	for _, withCodec := range []bool{true, false} {
		name := "without codec"
		if withCodec {
			name = "with codec"
		}
		t.Run(name, func(t *testing.T) {
			recs := map[uint64]*recorder{}
			c := makeCluster(t, 3, withTuning(func(cc *consensus.Config) {
				cc.SnapshotEntries = 20
				cc.CatchUpEntries = 5
			}), withStateMachine(func() StateMachine {
				r := &recorder{}
				if withCodec {
					return r
				}
				return recorderWithoutCodec{r}
			}))
			for _, id := range []uint64{1, 2, 3} {
				switch sm := c.sm(id).(type) {
				case *recorder:
					recs[id] = sm
				case recorderWithoutCodec:
					recs[id] = sm.r
				}
			}
			leader := c.waitLeader(5 * time.Second)
			f := others([]uint64{1, 2, 3}, leader)[0]
			c.mustPut(f, "warm-up")
			// The proposal must reach the leader before f, hearing nothing,
			// stops following it (an election timeout); on a loaded machine
			// it may not, and then it completes through the log once the
			// link is back: try again.
			for attempt := 1; ; attempt++ {
				payload := "target-" + string(rune('0'+attempt))
				c.net.Disconnect(leader, f)
				type result struct {
					res any
					err error
				}
				done := make(chan result, 1)
				go func() {
					res, err := c.put(f, payload, 30*time.Second)
					done <- result{res, err}
				}()
				deadline := time.Now().Add(time.Second)
				for recs[leader].counts()[payload] == 0 && time.Now().Before(deadline) {
					time.Sleep(testTick)
				}
				if recs[leader].counts()[payload] == 0 {
					c.net.Reconnect(leader, f)
					<-done
					if attempt == 5 {
						t.Fatal("the proposal never reached the leader while its proposer was cut off")
					}
					continue
				}
				if recs[f].counts()[payload] != 0 {
					t.Fatal("the cut-off proposer applied its entry through the log")
				}
				snaps := c.store(leader).Node().Stats().Snapshots
				for range 60 {
					c.mustPut(leader, "filler")
				}
				waitFor(t, 10*time.Second, "the leader to snapshot and compact", func() bool {
					return c.store(leader).Node().Stats().Snapshots >= snaps+2
				})
				c.net.Reconnect(leader, f)
				var r result
				select {
				case r = <-done:
				case <-time.After(30 * time.Second):
					t.Fatal("no answer after the link came back")
				}
				restores := recs[f].restoreCount()
				delivered, lost := c.store(f).SnapshotOutcomes()
				if restores == 0 {
					t.Fatal("the proposer caught up without a snapshot")
				}
				if withCodec {
					// The result is the number of entries applied with it.
					want := slices.Index(recs[leader].snapshotApplied(), payload) + 1
					if r.err != nil || r.res != want || delivered != 1 || lost != 0 {
						t.Fatalf("answer %v, %v (delivered %d, lost %d); want %d from the snapshot", r.res, r.err, delivered, lost, want)
					}
				} else if !errors.Is(r.err, ErrIndeterminate) || delivered != 0 || lost != 1 {
					t.Fatalf("answer %v, %v (delivered %d, lost %d); want ErrIndeterminate, 1 lost", r.res, r.err, delivered, lost)
				}
				return
			}
		})
	}
}
