package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/raftdss/dss/pkg/api"
)

// Operation names as reported. A "flight" is W1/W2's composite: it succeeds
// when its create, activation and deletion all did, and its latency runs
// from the (scheduled) start of the create to the end of the delete.
const (
	opPutAccepted  = "put_accepted"
	opPutActivated = "put_activated"
	opDelete       = "delete"
	opFlight       = "flight"
	opQuery        = "query"
	opCreate       = "create"
	opUpdate       = "update"
	opSubscription = "subscription"
)

// scrubbedOVN is what the DSS shows instead of another manager's OVN
// (spec §3.6).
const scrubbedOVN = "Available from USS"

const (
	oirPath = "/dss/v1/operational_intent_references/"
	subPath = "/dss/v1/subscriptions/"
)

// ovnBook is the bench's shared knowledge of every live OIR's current OVN.
// Real USSs learn each other's OVNs by asking the managing USS; all
// simulated USSs live in this process, so one map stands for that
// exchange (the DSS itself scrubs OVNs of other managers, spec §3.6).
type ovnBook struct {
	mu   sync.Mutex
	ovns map[string]string
}

func newOVNBook() *ovnBook { return &ovnBook{ovns: map[string]string{}} }

func (b *ovnBook) set(id, ovn string) {
	b.mu.Lock()
	b.ovns[id] = ovn
	b.mu.Unlock()
}

func (b *ovnBook) remove(id string) {
	b.mu.Lock()
	delete(b.ovns, id)
	b.mu.Unlock()
}

// lookup returns the current OVN of each id the book knows.
func (b *ovnBook) lookup(ids []string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if ovn, ok := b.ovns[id]; ok {
			out = append(out, ovn)
		}
	}
	return out
}

// all returns every OVN the book knows (W2's key: in the busy cell every
// live OIR conflicts with every other).
func (b *ovnBook) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.ovns))
	for _, ovn := range b.ovns {
		out = append(out, ovn)
	}
	return out
}

// liveOIR is an OIR W3 created and may update or delete.
type liveOIR struct {
	id     string
	ovn    string
	params api.PutOperationalIntentReferenceParameters
}

// pool holds W3's live OIRs per USS. take hands an OIR to one worker
// exclusively, so two workers never race on one OVN; put returns it.
type pool struct {
	mu   sync.Mutex
	oirs [][]*liveOIR
}

func newPool(usses int) *pool { return &pool{oirs: make([][]*liveOIR, usses)} }

func (p *pool) put(uss int, o *liveOIR) {
	p.mu.Lock()
	p.oirs[uss] = append(p.oirs[uss], o)
	p.mu.Unlock()
}

func (p *pool) take(uss int, rng *mrand.Rand) *liveOIR {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.oirs[uss]
	if len(l) == 0 {
		return nil
	}
	i := rng.IntN(len(l))
	o := l[i]
	l[i] = l[len(l)-1]
	p.oirs[uss] = l[:len(l)-1]
	return o
}

// settings are the workload knobs shared by all phases of a run.
type settings struct {
	usses       int
	horizon     time.Duration // flights start within this long from now
	w1Retries   int           // extra PUT attempts after a 409 in W1/W3
	w2Attempts  int           // PUT attempts per step in W2
	w3Mix       [4]int        // query : create : update : delete
	ussBaseURLF string        // fmt pattern of uss_base_url, given the USS index
}

// session is the state of one workload run against one target: the
// client, the shared OVN book and the subscriptions made up front.
type session struct {
	c    *client
	set  settings
	book *ovnBook
	pool *pool
	// tileSubs[uss][tile] is USS uss's explicit subscription covering tile
	// (W1, W3); cellSubs[uss] its subscription covering the busy cell (W2).
	tileSubs [][]string
	cellSubs []string
}

func newSession(c *client, set settings) *session {
	return &session{c: c, set: set, book: newOVNBook(), pool: newPool(set.usses)}
}

// worker is one simulated user: a USS identity, a random source and the
// recorder of the current phase.
type worker struct {
	s   *session
	uss int
	rng *mrand.Rand
	rec *recorder
}

func (s *session) newWorker(i int, rec *recorder) *worker {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on Linux
	return &worker{s: s, uss: i % s.set.usses, rng: mrand.New(mrand.NewChaCha8(seed)), rec: rec}
}

// call sends one request and records it under op, with latency counted
// from start (the scheduled time in open-loop mode) or, when start is zero,
// from now.
func (w *worker) call(ctx context.Context, op, method, path string, body any, start time.Time) response {
	if start.IsZero() {
		start = time.Now()
	}
	r := w.s.c.do(ctx, w.uss, method, path, body)
	w.rec.add(op, r.status, r.end.Sub(start), r.end, r.errText())
	return r
}

func newID() string { return uuid.NewString() }

func (s *session) ussBaseURL(uss int) string { return fmt.Sprintf(s.set.ussBaseURLF, uss) }

// putSubscription creates an explicit subscription of uss over vol for the
// next 23 hours (under the 24 h cap of spec §14, starting now).
func (s *session) putSubscription(ctx context.Context, uss int, vol *api.Volume3D) (string, error) {
	id := newID()
	now := time.Now()
	body := api.PutSubscriptionParameters{
		Extents:                     &api.Volume4D{Volume: vol, TimeStart: apiTime(now), TimeEnd: apiTime(now.Add(23 * time.Hour))},
		UssBaseURL:                  s.ussBaseURL(uss),
		NotifyForOperationalIntents: true,
	}
	r := s.c.do(ctx, uss, http.MethodPut, subPath+id, body)
	if r.status != http.StatusOK {
		return "", fmt.Errorf("creating subscription: %s", r.errText())
	}
	return id, nil
}

// setUpTiles creates one explicit subscription per USS and tile, with a
// few requests in parallel to keep the set-up short.
func (s *session) setUpTiles(ctx context.Context) error {
	if s.tileSubs != nil {
		return nil
	}
	subs := make([][]string, s.set.usses)
	for u := range subs {
		subs[u] = make([]string, tilesPerSide*tilesPerSide)
	}
	type job struct{ uss, tile int }
	jobs := make(chan job)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				id, err := s.putSubscription(ctx, j.uss, tileRect(j.tile).volume(0, 3000))
				if err != nil {
					errs <- err
					// Keep draining so the producer never blocks.
					for range jobs {
					}
					return
				}
				subs[j.uss][j.tile] = id
			}
		})
	}
	go func() {
		defer close(jobs)
		for u := range s.set.usses {
			for t := range tilesPerSide * tilesPerSide {
				select {
				case jobs <- job{u, t}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.tileSubs = subs
	return nil
}

// setUpBusyCell creates each USS's subscription over W2's cell.
func (s *session) setUpBusyCell(ctx context.Context) error {
	if s.cellSubs != nil {
		return nil
	}
	subs := make([]string, s.set.usses)
	for u := range subs {
		id, err := s.putSubscription(ctx, u, busyCellVolume())
		if err != nil {
			return err
		}
		subs[u] = id
	}
	s.cellSubs = subs
	return nil
}

// randomFlight draws a W1/W3 flight: a 2 km square somewhere in the area,
// 0–120 m, a 10-minute window starting within the horizon; it references
// the USS's tile subscription when the square lies in one tile, else asks
// for an implicit subscription.
func (w *worker) randomFlight() api.PutOperationalIntentReferenceParameters {
	x := w.rng.Float64() * (areaSizeKM - flightSizeKM)
	y := w.rng.Float64() * (areaSizeKM - flightSizeKM)
	r := rect{x, y, x + flightSizeKM, y + flightSizeKM}
	start := time.Now().Add(time.Minute + time.Duration(w.rng.Int64N(int64(w.s.set.horizon))))
	p := api.PutOperationalIntentReferenceParameters{
		Extents: []api.Volume4D{{
			Volume: r.volume(0, 120), TimeStart: apiTime(start), TimeEnd: apiTime(start.Add(10 * time.Minute)),
		}},
		State:      "Accepted",
		UssBaseURL: w.s.ussBaseURL(w.uss),
	}
	if t := r.tile(); t >= 0 && w.s.tileSubs != nil {
		p.SubscriptionID = w.s.tileSubs[w.uss][t]
	} else {
		p.NewSubscription = &api.ImplicitSubscriptionParameters{UssBaseURL: p.UssBaseURL}
	}
	return p
}

// busyFlight draws a W2 flight: the busy cell, 5 s long, starting in a
// minute (plus jitter), so that all W2 flights overlap in time too.
func (w *worker) busyFlight() api.PutOperationalIntentReferenceParameters {
	start := time.Now().Add(time.Minute + time.Duration(w.rng.Int64N(int64(2*time.Second))))
	return api.PutOperationalIntentReferenceParameters{
		Extents: []api.Volume4D{{
			Volume: busyCellVolume(), TimeStart: apiTime(start), TimeEnd: apiTime(start.Add(5 * time.Second)),
		}},
		State:          "Accepted",
		UssBaseURL:     w.s.ussBaseURL(w.uss),
		SubscriptionID: w.s.cellSubs[w.uss],
	}
}

// missingIDs reads a 409's missing OIRs: the ids, plus the OVNs the DSS did
// not scrub (the caller's own OIRs).
func missingIDs(body []byte) (ids, ovns []string) {
	var c api.AirspaceConflictResponse
	if json.Unmarshal(body, &c) != nil {
		return nil, nil
	}
	for _, o := range c.MissingOperationalIntents {
		if o.OVN != "" && o.OVN != scrubbedOVN {
			ovns = append(ovns, o.OVN)
		} else {
			ids = append(ids, o.ID)
		}
	}
	return ids, ovns
}

// changeResponse is the one field of an OIR PUT's answer
// (api.ChangeOperationalIntentReferenceResponse) the bench needs.
type changeResponse struct {
	OperationalIntentReference struct {
		OVN string `json:"ovn"`
	} `json:"operational_intent_reference"`
}

// putOIR writes p to id (create when ovn is ""), learning the key from
// 409s: each 409's missing OIRs are added to *known and the key is rebuilt
// from the book, up to attempts tries. keyAll makes the key every OVN in
// the book (W2). start is the latency origin of the first attempt. It
// returns the final response and the new OVN on success.
func (w *worker) putOIR(ctx context.Context, op, id, ovn string, p api.PutOperationalIntentReferenceParameters,
	known *[]string, attempts int, keyAll bool, start time.Time) (response, string) {
	path := oirPath + id
	if ovn != "" {
		path += "/" + ovn
	}
	var extra []string // own OVNs from 409s, valid for this write only
	var r response
	for a := 0; a < attempts; a++ {
		if keyAll {
			p.Key = append(w.s.book.all(), extra...)
		} else {
			p.Key = append(w.s.book.lookup(*known), extra...)
		}
		r = w.call(ctx, op, http.MethodPut, path, p, start)
		start = time.Time{}
		if r.status != http.StatusConflict {
			break
		}
		ids, ovns := missingIDs(r.body)
		if len(ids) == 0 && len(ovns) == 0 {
			break // an OVN mismatch, not a key problem: retrying cannot help
		}
		*known = append(*known, ids...)
		extra = append(extra, ovns...)
		if keyAll && a+1 < attempts {
			// Another user's write is in flight: its OVN reaches the book
			// when its answer does. A jittered, exponentially growing pause
			// (1, 2, 4 … ms, at most 64 ms), as a USS would take to fetch
			// the details from the other USS, keeps retries from spinning.
			time.Sleep(time.Duration(w.rng.Int64N(int64(time.Millisecond) << min(a, 6))))
		}
	}
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		return r, ""
	}
	newOVN := responseOVN(r.body)
	if newOVN == "" {
		return r, ""
	}
	w.s.book.set(id, newOVN)
	return r, newOVN
}

// responseOVN returns the OVN in an OIR PUT's answer, "" if there is none.
//
// The answer's only "ovn" member is the OIR's (the subscribers, most of the
// body, have none), and an OVN has no character JSON escapes, so the first
// `"ovn":"…"` is it, found without a JSON decoder: decoding even into a
// one-field struct validates and skips the whole body, which cost the load
// generator ~35 µs per write, CPU it shares with the DSS under test. An
// answer not in that compact form is decoded properly.
func responseOVN(body []byte) string {
	const member = `"ovn":"`
	if i := bytes.Index(body, []byte(member)); i >= 0 {
		rest := body[i+len(member):]
		if j := bytes.IndexByte(rest, '"'); j > 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return string(rest[:j])
		}
	}
	var ch changeResponse
	if json.Unmarshal(body, &ch) != nil {
		return ""
	}
	return ch.OperationalIntentReference.OVN
}

// flight is one W1 (busy=false) or W2 (busy=true) iteration: create
// Accepted, activate, delete. It always completes what it started, even
// after the phase deadline, so that no OIR outlives its flight.
func (w *worker) flight(ctx context.Context, busy bool, scheduled time.Time) {
	start := scheduled
	if start.IsZero() {
		start = time.Now()
	}
	attempts := 1 + w.s.set.w1Retries
	p := w.randomFlight
	if busy {
		attempts = w.s.set.w2Attempts
		p = w.busyFlight
	}
	params := p()
	id := newID()
	var known []string
	r, ovn := w.putOIR(ctx, opPutAccepted, id, "", params, &known, attempts, busy, start)
	if ovn == "" {
		w.rec.add(opFlight, statusOf(r), 0, r.end, "")
		return
	}
	params.State = "Activated"
	ra, ovn2 := w.putOIR(ctx, opPutActivated, id, ovn, params, &known, attempts, busy, time.Time{})
	if ovn2 != "" {
		ovn = ovn2
	}
	rd := w.call(ctx, opDelete, http.MethodDelete, oirPath+id+"/"+ovn, nil, time.Time{})
	if rd.status == http.StatusOK {
		w.s.book.remove(id)
	}
	switch {
	case ovn2 == "":
		w.rec.add(opFlight, statusOf(ra), 0, rd.end, "")
	case rd.status != http.StatusOK:
		w.rec.add(opFlight, statusOf(rd), 0, rd.end, "")
	default:
		w.rec.add(opFlight, http.StatusOK, rd.end.Sub(start), rd.end, "")
	}
}

// statusOf is the status to record for a failed composite: a 2xx that
// could not be decoded counts as a server fault.
func statusOf(r response) int {
	if r.status >= 200 && r.status < 300 {
		return http.StatusInternalServerError
	}
	return r.status
}

// w3op is one W3 iteration: an operation drawn from the mix.
func (w *worker) w3op(ctx context.Context, scheduled time.Time) {
	m := w.s.set.w3Mix
	n := w.rng.IntN(m[0] + m[1] + m[2] + m[3])
	switch {
	case n < m[0]:
		w.query(ctx, scheduled)
	case n < m[0]+m[1]:
		w.create(ctx, opCreate, scheduled)
	case n < m[0]+m[1]+m[2]:
		if o := w.s.pool.take(w.uss, w.rng); o != nil {
			w.update(ctx, o, scheduled)
		} else {
			w.create(ctx, opCreate, scheduled)
		}
	default:
		if o := w.s.pool.take(w.uss, w.rng); o != nil {
			r := w.call(ctx, opDelete, http.MethodDelete, oirPath+o.id+"/"+o.ovn, nil, scheduled)
			if r.status == http.StatusOK || r.status == http.StatusNotFound {
				w.s.book.remove(o.id)
			} else {
				w.s.pool.put(w.uss, o)
			}
		} else {
			w.create(ctx, opCreate, scheduled)
		}
	}
}

// query searches OIRs over a random 2 km square and a 10-minute window in
// the horizon: what a USS asks before planning a flight.
func (w *worker) query(ctx context.Context, scheduled time.Time) {
	f := w.randomFlight()
	body := api.QueryOperationalIntentReferenceParameters{AreaOfInterest: &f.Extents[0]}
	w.call(ctx, opQuery, http.MethodPost, oirPath+"query", body, scheduled)
}

// create adds an Accepted OIR to the pool (W3 and its seeding).
func (w *worker) create(ctx context.Context, op string, scheduled time.Time) {
	p := w.randomFlight()
	id := newID()
	var known []string
	if _, ovn := w.putOIR(ctx, op, id, "", p, &known, 1+w.s.set.w1Retries, false, scheduled); ovn != "" {
		w.s.pool.put(w.uss, &liveOIR{id: id, ovn: ovn, params: p})
	}
}

// update re-writes o as Activated (a new OVN each time).
func (w *worker) update(ctx context.Context, o *liveOIR, scheduled time.Time) {
	p := o.params
	p.State = "Activated"
	var known []string
	_, ovn := w.putOIR(ctx, opUpdate, o.id, o.ovn, p, &known, 1+w.s.set.w1Retries, false, scheduled)
	if ovn != "" {
		o.ovn = ovn
	}
	w.s.pool.put(w.uss, o)
}
