package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestEvictionWithLeaderKill: on a 3-node cluster holding live OIRs and
// OIRs that ended, `dssctl evict --now` runs on the leader and the leader is
// killed (SIGKILL) while it runs. After a restart and a second run on the
// new leader, every replica holds exactly the live OIRs, with their OVNs,
// and no ended one, at one state hash: a batch is one log entry, applied
// whole or not at all, on every replica alike.
func TestEvictionWithLeaderKill(t *testing.T) {
	c := NewCluster(t, Options{Dev: true, ExtraFlags: []string{"--evict_after", "1s", "--evict_interval", "0"}})
	all := c.Running()
	live := c.WriteOIRs(t, 20, all)

	// OIRs that end within two seconds (their start must not be in the past).
	var ended []string
	for k := range 60 {
		id := uuid.NewString()
		r := c.do(all[k%len(all)], http.MethodPut, oirPath+id, oirBodyAt(c.nextPlace(), 300*time.Millisecond, 1500*time.Millisecond))
		if r.err != nil || r.status != http.StatusCreated {
			t.Fatalf("short OIR: %s", r)
		}
		ended = append(ended, id)
	}
	time.Sleep(1500*time.Millisecond + 1200*time.Millisecond) // ended, and past --evict_after

	lead := c.Leader()
	cmd := exec.Command(dssctlBin, "evict", "--now", "--raft_data_dir", c.Nodes[lead].DataDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(15 * time.Millisecond)
	c.KillNode(lead)
	_ = cmd.Wait() // its outcome is unknown: the node died under it
	c.Start(lead)
	c.WaitAllReady()

	newLead := c.Leader()
	code, out, errOut := dssctl(t, "evict", "--now", "--raft_data_dir", c.Nodes[newLead].DataDir)
	if code != 0 {
		t.Fatalf("evict --now on node %d: exit %d\n%s%s", newLead+1, code, out, errOut)
	}
	code, out, errOut = dssctl(t, "evict", "--dry-run", "--raft_data_dir", c.Nodes[newLead].DataDir)
	if code != 0 || !strings.Contains(out, "operational_intents  0") {
		t.Fatalf("dry run after eviction: exit %d\n%s%s", code, out, errOut)
	}

	st := c.WaitEqualHashes()
	t.Logf("converged at applied index %d", st.AppliedIndex)
	for _, i := range all {
		for id, ovn := range live {
			r := c.do(i, http.MethodGet, oirPath+id, nil)
			got, err := ovnOf(r.body)
			if r.status != http.StatusOK || err != nil || got != ovn {
				t.Fatalf("live OIR %s on node %d: %s", id, i+1, r)
			}
		}
		for _, id := range ended {
			if r := c.do(i, http.MethodGet, oirPath+id, nil); r.status != http.StatusNotFound {
				t.Fatalf("ended OIR %s on node %d: %s, want 404", id, i+1, r)
			}
		}
	}
}
