package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

const oirPath = "/dss/v1/operational_intent_references/"

// place is a point on Earth.
type place struct{ lat, lng float64 }

// nextPlace hands out a fresh location per write: a grid with 0.1° spacing
// (≥ 7 km at the latitudes used), far more than an S2 level-13 cell (~1 km),
// so no two OIRs of a test share a cell and no write needs another's OVN in
// its key (spec §7): every write can succeed independently of the others.
func (c *Cluster) nextPlace() place {
	n := c.places.Add(1) - 1
	return place{lat: -50 + 0.1*float64(n/2500), lng: -150 + 0.1*float64(n%2500)}
}

// oirBody is a PutOperationalIntentReferenceParameters (spec §6.1) for a
// 200 m square at p, 0–100 m, starting in 5 minutes for 30 minutes.
func oirBody(p place) []byte { return oirBodyAt(p, 5*time.Minute, 35*time.Minute) }

// oirBodyAt is oirBody for the time window from start to end from now.
func oirBodyAt(p place, start, end time.Duration) []byte {
	const sizeM, mPerDeg = 200.0, 111320.0
	dLat := sizeM / mPerDeg
	dLng := sizeM / (mPerDeg * math.Cos(p.lat*math.Pi/180))
	vertex := func(lat, lng float64) map[string]any { return map[string]any{"lat": lat, "lng": lng} }
	alt := func(v float64) map[string]any { return map[string]any{"value": v, "reference": "W84", "units": "M"} }
	tm := func(t time.Time) map[string]any {
		return map[string]any{"value": t.UTC().Format(time.RFC3339Nano), "format": "RFC3339"}
	}
	now := time.Now()
	body := map[string]any{
		"extents": []any{map[string]any{
			"volume": map[string]any{
				// Counter-clockwise, as spec §3.4 requires.
				"outline_polygon": map[string]any{"vertices": []any{
					vertex(p.lat, p.lng), vertex(p.lat, p.lng+dLng),
					vertex(p.lat+dLat, p.lng+dLng), vertex(p.lat+dLat, p.lng),
				}},
				"altitude_lower": alt(0),
				"altitude_upper": alt(100),
			},
			"time_start": tm(now.Add(start)),
			"time_end":   tm(now.Add(end)),
		}},
		"key":          []string{},
		"state":        "Accepted",
		"uss_base_url": "https://e2e-uss.example.com/utm",
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // static shapes only: cannot fail
	}
	return b
}

// oirResponse is the part of an OIR response the tests check.
type oirResponse struct {
	OIR struct {
		ID  string `json:"id"`
		OVN string `json:"ovn"`
	} `json:"operational_intent_reference"`
}

// result is one request's outcome: a status and body, or a transport error.
type result struct {
	node        int
	status      int
	body        []byte
	err         error
	start, done time.Time
}

// hung reports whether the request ran into the client's own timeout: the
// node never answered although its server timeout is shorter.
func (r result) hung() bool {
	var ue *url.Error
	return r.err != nil && (errors.As(r.err, &ue) && ue.Timeout() || errors.Is(r.err, context.DeadlineExceeded))
}

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("node %d: error after %v: %v", r.node+1, r.done.Sub(r.start), r.err)
	}
	b := r.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("node %d: %d after %v: %s", r.node+1, r.status, r.done.Sub(r.start), bytes.TrimSpace(b))
}

// do sends one authenticated request to node i.
func (c *Cluster) do(i int, method, path string, body []byte) result {
	r := result{node: i, start: time.Now()}
	defer func() { r.done = time.Now() }()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.Nodes[i].URL()+path, rd)
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		r.err = err
		r.done = time.Now()
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	r.body, r.err = io.ReadAll(resp.Body)
	r.done = time.Now()
	return r
}

// PutOIR creates a new OIR at a fresh place through node i.
func (c *Cluster) PutOIR(i int) (id string, r result) {
	id = uuid.NewString()
	return id, c.do(i, http.MethodPut, oirPath+id, oirBody(c.nextPlace()))
}

// ovnOf extracts the OVN from an OIR response body.
func ovnOf(body []byte) (string, error) {
	var o oirResponse
	if err := json.Unmarshal(body, &o); err != nil {
		return "", err
	}
	if o.OIR.OVN == "" {
		return "", fmt.Errorf("no ovn in %s", body)
	}
	return o.OIR.OVN, nil
}

// WriteOIRs creates n OIRs with 8 concurrent clients spread over the given
// nodes and returns id → OVN. The cluster is expected to be healthy, so
// every write must get 201; an indeterminate 503 (a leader change under a
// loaded machine) is tolerated a few times per write and the write retried
// under a new ID, because its outcome is unknown by contract.
func (c *Cluster) WriteOIRs(t *testing.T, n int, nodes []int) map[string]string {
	t.Helper()
	const clients = 8
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		fails []string
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for w := range clients {
		wg.Go(func() {
			for k := range next {
				node := nodes[(w+k)%len(nodes)]
				var last result
				ok := false
				for range 3 {
					id, r := c.PutOIR(node)
					last = r
					if r.err == nil && r.status == http.StatusCreated {
						ovn, err := ovnOf(r.body)
						mu.Lock()
						if err != nil {
							fails = append(fails, fmt.Sprintf("201 without an OVN: %v: %s", err, r))
						} else {
							acked[id] = ovn
						}
						mu.Unlock()
						ok = true
						break
					}
					if r.err != nil || r.status != http.StatusServiceUnavailable {
						break
					}
				}
				if !ok {
					mu.Lock()
					fails = append(fails, last.String())
					mu.Unlock()
				}
			}
		})
	}
	for k := range n {
		next <- k
	}
	close(next)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d writes failed on a healthy cluster; first: %s", len(fails), n, fails[0])
	}
	return acked
}

// CheckOIRs fails the test unless every OIR in want is readable from every
// given node with the recorded OVN (8 concurrent readers).
func (c *Cluster) CheckOIRs(t *testing.T, want map[string]string, nodes []int) {
	t.Helper()
	type job struct {
		id, ovn string
		node    int
	}
	jobs := make(chan job)
	var (
		mu   sync.Mutex
		bad  []string
		wg   sync.WaitGroup
		seen int
	)
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				r := c.do(j.node, http.MethodGet, oirPath+j.id, nil)
				var msg string
				switch {
				case r.err != nil || r.status != http.StatusOK:
					msg = fmt.Sprintf("GET %s: %s", j.id, r)
				default:
					if got, err := ovnOf(r.body); err != nil || got != j.ovn {
						msg = fmt.Sprintf("GET %s from node %d: ovn %q (%v), acknowledged %q", j.id, j.node+1, got, err, j.ovn)
					}
				}
				mu.Lock()
				seen++
				if msg != "" {
					bad = append(bad, msg)
				}
				mu.Unlock()
			}
		})
	}
	for id, ovn := range want {
		for _, i := range nodes {
			jobs <- job{id, ovn, i}
		}
	}
	close(jobs)
	wg.Wait()
	if len(bad) > 0 {
		k := min(len(bad), 10)
		t.Fatalf("%d of %d reads of acknowledged OIRs wrong; first %d:\n%v", len(bad), seen, k, bad[:k])
	}
	t.Logf("all %d acknowledged OIRs read back with their OVN from nodes %v", len(want), nodeIDs(nodes))
}

// nodeIDs turns indexes into raft IDs for messages.
func nodeIDs(idx []int) []int {
	out := make([]int, len(idx))
	for i, x := range idx {
		out[i] = x + 1
	}
	return out
}

// others returns the indexes in all except x.
func others(all []int, x int) []int {
	var out []int
	for _, i := range all {
		if i != x {
			out = append(out, i)
		}
	}
	return out
}
