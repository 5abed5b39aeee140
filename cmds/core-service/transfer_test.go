package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// postLeader asks node n's admin socket to transfer the leadership to id.
func postLeader(t *testing.T, n *node, to uint64) (int, adminMembersJSON, string) {
	t.Helper()
	c := adminClient(filepath.Join(n.dataDir, adminSocketName))
	defer c.CloseIdleConnections()
	resp, err := c.Post("http://admin/leader", "application/json", strings.NewReader(fmt.Sprintf(`{"to": %d}`, to)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m adminMembersJSON
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("POST /leader answer %s: %v", b, err)
		}
	}
	return resp.StatusCode, m, string(b)
}

// TestLeaderTransferUnderWrites: on a 3-node cluster (real HTTP and gRPC
// with mutual TLS) under concurrent writes through every node, the admin
// socket's POST /leader moves the leadership to the chosen member; every
// acknowledged write is then readable on every node, no write got a 5xx
// other than a 503, and the refusals are clear.
func TestLeaderTransferUnderWrites(t *testing.T) {
	nodes := startCluster(t, 3)
	leaderOf := func() int {
		for i, n := range nodes {
			if n.status().LeaderID == uint64(i+1) && nodes[(i+1)%3].status().LeaderID == uint64(i+1) {
				return i
			}
		}
		return -1
	}
	var (
		acked          sync.Map
		nAcked, n503   atomic.Int64
		otherErrs      atomic.Int64
		stop           = make(chan struct{})
		wg             sync.WaitGroup
		firstBadAnswer atomic.Value
	)
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				uss := fmt.Sprintf("uss-w%d-%d", w, i)
				code, body := nodes[w].call("PUT", "/dss/v1/uss_availability/"+uss, `{"availability": "Normal"}`)
				switch code {
				case http.StatusOK:
					acked.Store(uss, true)
					nAcked.Add(1)
				case http.StatusServiceUnavailable:
					n503.Add(1)
				default:
					otherErrs.Add(1)
					firstBadAnswer.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
			}
		})
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("writes", func() bool { return nAcked.Load() > 20 })
	var lead int
	wait("a leader", func() bool { lead = leaderOf(); return lead >= 0 })
	follower := (lead + 1) % 3

	if code, _, body := postLeader(t, nodes[follower], uint64(lead+1)); code != http.StatusConflict ||
		!strings.Contains(body, fmt.Sprintf("node %d is", lead+1)) {
		t.Errorf("transfer on a follower: %d %s, want 409 naming the leader", code, body)
	}
	if code, _, body := postLeader(t, nodes[lead], 9); code != http.StatusNotFound {
		t.Errorf("transfer to a non-member: %d %s, want 404", code, body)
	}

	before := nAcked.Load()
	code, m, body := postLeader(t, nodes[lead], uint64(follower+1))
	if code != http.StatusOK || m.LeaderID != uint64(follower+1) {
		t.Fatalf("transfer %d → %d: %d %s", lead+1, follower+1, code, body)
	}
	wait("writes after the transfer", func() bool { return nAcked.Load() > before+20 })
	close(stop)
	wg.Wait()
	if n := otherErrs.Load(); n != 0 {
		t.Errorf("%d writes answered neither 200 nor 503; first: %v", n, firstBadAnswer.Load())
	}
	t.Logf("%d writes acknowledged, %d answered 503", nAcked.Load(), n503.Load())
	waitEqualHashes(t, nodes)
	acked.Range(func(k, _ any) bool {
		for i, n := range nodes {
			if code, _ := n.call("GET", "/dss/v1/uss_availability/"+k.(string), ""); code != http.StatusOK {
				t.Errorf("acknowledged write %s: GET on node %d: %d", k, i+1, code)
				return false
			}
		}
		return true
	})
}
