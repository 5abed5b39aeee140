package conformance

import (
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// parallel runs f(0..n-1) concurrently and waits for all. f must not call
// t.Fatal (it runs off the test goroutine); it records results instead.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// TestConcurrentDisjointCreates: 20 concurrent creates of disjoint OIRs all
// succeed (§10: non-overlapping concurrent writes must all succeed).
func TestConcurrentDisjointCreates(t *testing.T) {
	t.Parallel()
	const n = 20
	u := newUSS(t, "uss1", sc)
	start, end := at(10*time.Minute), at(time.Hour)
	results := make([]*resp, n)
	parallel(n, func(i int) {
		body := withNewSub(oirParams(u.base, "Accepted", box(newPlace(), start, end)), u.base, false)
		results[i] = trySend(http.MethodPut, path(oirPrefix, newID()), u.token, body)
	})
	for i, r := range results {
		if r.status != http.StatusCreated {
			t.Errorf("create %d: want 201: %s", i, r)
		}
	}
}

// TestConcurrentUpdatesSameOVN: 30 concurrent updates of one OIR with the same
// OVN: exactly one wins (200), the others see a stale OVN (409) (§6.1 C, §10).
func TestConcurrentUpdatesSameOVN(t *testing.T) {
	t.Parallel()
	const n = 30
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	o := createOIR(t, u, newID(), oirParams(u.base, "Accepted", box(p, start, end))).OIR
	results := make([]*resp, n)
	parallel(n, func(i int) {
		body := withKey(oirParams(u.base, "Accepted", box(p, start, end.Add(time.Duration(i+1)*time.Second))), o.OVN)
		results[i] = trySend(http.MethodPut, path(oirPrefix, o.ID, o.OVN), u.token, body)
	})
	ok, conflict := 0, 0
	var winner changeOIRW
	for _, r := range results {
		switch r.status {
		case http.StatusOK:
			ok++
			r.decode(t, &winner)
		case http.StatusConflict:
			conflict++
		default:
			t.Errorf("unexpected: %s", r)
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("%d × 200 and %d × 409, want 1 and %d", ok, conflict, n-1)
	}
	if g := getOIR(t, u, o.ID); g != winner.OIR || g.Version != 2 {
		t.Fatalf("stored OIR %+v, want the winner %+v at version 2", g, winner.OIR)
	}
}

// TestConcurrentNotificationIndex: N concurrent creates of OIRs inside one
// explicit subscription (disjoint altitude bands, so no key is needed) each
// increment its index exactly once: no lost increment, indices 1..N each
// handed out once, final index N (§9, §10).
func TestConcurrentNotificationIndex(t *testing.T) {
	t.Parallel()
	const n = 20
	w := newUSS(t, "watch", sc)
	u := newUSS(t, "uss1", sc)
	p := newPlace()
	start, end := at(10*time.Minute), at(time.Hour)
	s := putSub(t, w, newID(), "", subParams(w.base, box(p.offset(-100, -100), start, end).alt(0, 10_000), true, false)).Subscription
	results := make([]*resp, n)
	parallel(n, func(i int) {
		lo := float64(i * 100)
		body := oirParams(u.base, "Accepted", box(p, start, end).alt(lo, lo+50))
		results[i] = trySend(http.MethodPut, path(oirPrefix, newID()), u.token, body)
	})
	var indices []int
	for i, r := range results {
		if r.status != http.StatusCreated {
			t.Errorf("create %d: want 201: %s", i, r)
			continue
		}
		var c changeOIRW
		r.decode(t, &c)
		if idx, ok := notified(t, c.Subscribers)[s.ID]; ok {
			indices = append(indices, idx)
		} else {
			t.Errorf("create %d did not notify subscription %s: %+v", i, s.ID, c.Subscribers)
		}
	}
	sort.Ints(indices)
	for i, idx := range indices {
		if idx != i+1 {
			t.Fatalf("returned indices %v, want 1..%d each once", indices, n)
		}
	}
	if g := getSub(t, w, s.ID); g.NotificationIndex != n || g.Version != s.Version {
		t.Fatalf("final index %d version %q, want %d and unchanged %q", g.NotificationIndex, g.Version, n, s.Version)
	}
}
