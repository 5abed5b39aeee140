package differential

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	poolserver "github.com/raftdss/dss/pkg/pool/server"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/server"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/scd/store/sqlstore"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

// audience is the aud claim of every valid token and the one accepted
// audience of the authenticator.
const audience = "dss.differential.test"

// signingKey signs every token; one per test binary (RSA key generation is
// slow on a loaded machine). Tokens depend only on it and their claims, so
// one request gets byte-identical tokens on every target.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// env is what the targets of one run share: the injected clock and UUID
// source, and the authenticator (which reads the same clock). Before a
// request is served on any target, begin sets the clock to the request's
// time and restarts the ID sequence at the request's number, so every target
// sees the same time and the same IDs however often the handler asks.
//
// IDs are named after the request's number in the generated sequence, not
// its position in a replay, so a shrunk sequence that drops requests still
// hands the same implicit-subscription IDs to the requests it keeps (later
// requests name those IDs in their paths and bodies).
type env struct {
	mu  sync.Mutex
	now time.Time
	seq int // number of the request being served
	n   int // IDs handed out to it so far

	auth  *auth.Authenticator
	close func()
}

func newEnv() (*env, error) {
	e := &env{now: t0}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := auth.New(ctx, auth.Config{
		PublicKeys:        []*rsa.PublicKey{&signingKey().PublicKey},
		AcceptedAudiences: []string{audience},
		Now:               e.Now,
	})
	if err != nil {
		cancel()
		return nil, err
	}
	e.auth = a
	e.close = func() { a.Close(); cancel() }
	return e, nil
}

// Now is the injected clock of the handlers and of the authenticator.
func (e *env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// NewID is the injected UUID source: valid UUIDv4 (RFC 4122 variant) built
// from the request number and a per-request counter.
func (e *env) NewID() models.ID {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	return models.ID(fmt.Sprintf("9%07x-0000-4000-8%03x-000000000000", e.seq, e.n))
}

func (e *env) begin(rq *request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now, e.seq, e.n = rq.At, rq.Seq, 0
}

// target is one store behind the HTTP handler. A replicated store has one
// handler per node; requests rotate over them, so a read often lands on
// another node than the write before it (linearizable reads are part of
// what is compared).
type target struct {
	name     string
	handlers []http.Handler
	close    func()
}

// opener starts a fresh, empty target on e.
type opener func(tb testing.TB, e *env) (*target, error)

// openers are the targets by name (flag -diff.targets). Tests add their own.
var openers = map[string]opener{
	"mem":  openMem,
	"sql":  openSQL,
	"raft": openRaft,
}

func handlerFor(e *env, st scd.Store) (http.Handler, error) {
	// The pool's /aux/v1 routes (docs/spec/aux.md) with one instance ID on
	// every node and store, so that heartbeats answer alike; dar_id differs
	// between stores by design and is not requested.
	aux, err := poolserver.Routes(poolserver.Config{Version: "differential", InstanceID: "dss",
		DarID: func(context.Context) (string, error) { return "pool", nil }})
	if err != nil {
		return nil, err
	}
	h, err := server.NewHandler(server.Config{Store: st, Authenticator: e.auth, Now: e.Now, NewID: e.NewID,
		ExtraRoutes: aux})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("POST "+evictPath, evictHandler(e, st))
	return mux, nil
}

// evictPath is where a target runs eviction (the generator's "evict"): on
// a node the admin socket does, the API has no such endpoint.
const evictPath = "/dss/v1/_differential_evict"

// evictHandler runs scd.EvictExpired (or PreviewEviction, with dry_run) on
// st with the cut-off retention_ms before the injected clock, as a node's
// evictor does, and answers the result as JSON, or the error's code and
// message.
func evictHandler(e *env, st scd.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			RetentionMS int64 `json:"retention_ms"`
			Limit       int64 `json:"limit"`
			DryRun      bool  `json:"dry_run"`
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Limit < 0 || req.Limit > 1<<31 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message": "bad eviction request"}`))
			return
		}
		before := e.Now().Add(-time.Duration(req.RetentionMS) * time.Millisecond)
		var op scd.Operation = &scd.EvictExpired{Before: before, Limit: uint32(req.Limit)}
		if req.DryRun {
			op = &scd.PreviewEviction{Before: before}
		}
		res, err := st.Transact(r.Context(), op)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			// The code and the operation's own message: stores word their
			// wrapping differently.
			msg := ""
			if me := (*models.Error)(nil); errors.As(err, &me) {
				msg = me.Message
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"code": models.CodeOf(err).String(), "message": msg})
			return
		}
		_ = json.NewEncoder(w).Encode(res)
	})
}

func openMem(_ testing.TB, e *env) (*target, error) {
	h, err := handlerFor(e, memstore.New())
	if err != nil {
		return nil, err
	}
	return &target{name: "mem", handlers: []http.Handler{h}, close: func() {}}, nil
}

// openSQL opens a migrated SQL store on a new database of the test binary's
// shared PostgreSQL. close drops the database at once rather than at the end
// of the test: shrinking opens hundreds.
func openSQL(tb testing.TB, e *env) (*target, error) {
	srv := pgtest.Shared(tb)
	dbURL := srv.NewDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := sqlstore.Open(ctx, sqlstore.Config{URL: dbURL, Migrate: true, MaxConns: 4})
	if err != nil {
		return nil, err
	}
	h, err := handlerFor(e, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &target{name: "sql", handlers: []http.Handler{h}, close: func() {
		st.Close()
		dropDatabase(tb, srv, dbURL)
	}}, nil
}

func dropDatabase(tb testing.TB, srv *pgtest.Server, dbURL string) {
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Errorf("parsing %s: %v", dbURL, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.DatabaseURL("postgres"))
	if err != nil {
		tb.Errorf("dropping database: %v", err)
		return
	}
	defer func() { _ = conn.Close(ctx) }()
	name := strings.TrimPrefix(u.Path, "/")
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		tb.Errorf("dropping database %s: %v", name, err)
	}
}

// openRaft starts an in-process Raft cluster of *flagRaftNodes nodes over
// memnet, with real WALs in temporary directories, and waits until every
// node knows the leader (a write proposed before that would only wait).
func openRaft(tb testing.TB, e *env) (*target, error) {
	n := *flagRaftNodes
	net := memnet.New(1)
	peers := map[uint64]string{}
	for id := uint64(1); id <= uint64(n); id++ {
		peers[id] = fmt.Sprintf("node-%d", id)
	}
	var stores []*raftstore.Store
	stop := func() {
		for _, s := range stores {
			s.Stop()
		}
		net.Close()
	}
	tg := &target{name: "raft", close: stop}
	for id := uint64(1); id <= uint64(n); id++ {
		s, err := raftstore.Open(raftstore.Config{
			Consensus: consensus.Config{
				ID: id, Peers: peers, DataDir: tb.TempDir(),
				// Short ticks: a fresh cluster per shrinking step must elect
				// quickly; 10 ticks of 20 ms still survive a loaded machine.
				TickInterval: 20 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
				Logger: zap.NewNop(),
			},
			NewTransport: func(h transport.Handler) (transport.Transport, error) { return net.Transport(id, h), nil },
		})
		if err != nil {
			stop()
			return nil, err
		}
		stores = append(stores, s)
		h, err := handlerFor(e, s)
		if err != nil {
			stop()
			return nil, err
		}
		tg.handlers = append(tg.handlers, h)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, s := range stores {
			ok = ok && s.Status().Leader != 0
		}
		if ok {
			return tg, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("raft cluster of %d nodes elected no leader in 30 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// response is what is compared: status, content type and body, the body
// with the random error IDs stripped.
type response struct {
	Status int
	CType  string
	Body   string
}

// errorID is the random suffix of error messages (spec §3.7): a fresh
// uuid.NewString() per error, the only part of a response that legitimately
// differs between two runs of the same request.
var errorID = regexp.MustCompile(` \(E:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)`)

// serve sends rq to h at rq's time.
func (e *env) serve(h http.Handler, rq *request) response {
	e.begin(rq)
	var body io.Reader
	if rq.Body != nil {
		body = bytes.NewReader(rq.Body)
	}
	hr := httptest.NewRequest(rq.Method, rq.Path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if a := rq.authorization(); a != "" {
		hr.Header.Set("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	return response{
		Status: rec.Code,
		CType:  rec.Header().Get("Content-Type"),
		Body:   errorID.ReplaceAllString(rec.Body.String(), " (E:…)"),
	}
}

// tokens caches minted tokens by claims: minting is an RSA signature.
var tokens struct {
	mu sync.Mutex
	m  map[string]string
}

// token returns a token for sub with scopes, issued at iat and valid for
// ttl; aud "" means the accepted audience.
func token(sub string, scopes []string, iat time.Time, ttl time.Duration, aud string) string {
	if aud == "" {
		aud = audience
	}
	k := fmt.Sprint(sub, scopes, iat.UnixNano(), ttl, aud)
	tokens.mu.Lock()
	defer tokens.mu.Unlock()
	if tok, ok := tokens.m[k]; ok {
		return tok
	}
	tok, err := auth.MintToken(signingKey(), auth.TokenOptions{
		Subject: sub, Scopes: scopes, Now: iat, TTL: ttl, Audience: aud, Issuer: "differential",
	})
	if err != nil {
		panic(err) // only for invalid options, which the generator never makes
	}
	if tokens.m == nil {
		tokens.m = map[string]string{}
	}
	tokens.m[k] = tok
	return tok
}

// run is one set of fresh targets on one env.
type run struct {
	env     *env
	targets []*target
	pos     int // requests served so far: picks the node of a cluster
}

func openRun(tb testing.TB, kinds []string) (*run, error) {
	e, err := newEnv()
	if err != nil {
		return nil, err
	}
	r := &run{env: e}
	for _, k := range kinds {
		open, ok := openers[k]
		if !ok {
			r.close()
			return nil, fmt.Errorf("unknown target %q", k)
		}
		tg, err := open(tb, e)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("opening %s: %w", k, err)
		}
		tg.name = k
		r.targets = append(r.targets, tg)
	}
	return r, nil
}

func (r *run) close() {
	for _, tg := range r.targets {
		tg.close()
	}
	r.env.close()
}

// serve sends rq to every target, one after the other, and returns their
// answers and whether they all equal the first target's.
func (r *run) serve(rq *request) ([]response, bool) {
	out := make([]response, len(r.targets))
	same := true
	for i, tg := range r.targets {
		out[i] = r.env.serve(tg.handlers[r.pos%len(tg.handlers)], rq)
		same = same && out[i] == out[0]
	}
	r.pos++
	return out, same
}

// replay runs seq on fresh targets of kinds and returns the position of the
// first request they answer differently (-1: none) with their answers.
func replay(tb testing.TB, kinds []string, seq []*request) (int, []response, error) {
	r, err := openRun(tb, kinds)
	if err != nil {
		return 0, nil, err
	}
	defer r.close()
	for i, rq := range seq {
		if out, same := r.serve(rq); !same {
			return i, out, nil
		}
	}
	return -1, nil, nil
}

// shrinkStats describes a shrinking.
type shrinkStats struct {
	from, to int
	replays  int
	elapsed  time.Duration
	timedOut bool
}

// shrink reduces seq, whose last request kinds answer differently, to a
// shorter sequence that still makes them differ (at any request: the
// candidate is cut after its first difference), by delta debugging over
// complements: remove one of n chunks; on success keep the smaller sequence
// and coarsen, otherwise refine, down to single requests. Bounded by budget;
// a timed-out shrink still returns the best sequence found so far.
func shrink(tb testing.TB, kinds []string, seq []*request, budget time.Duration) ([]*request, []response, shrinkStats, error) {
	start := time.Now()
	st := shrinkStats{from: len(seq)}
	at, answers, err := replay(tb, kinds, seq)
	st.replays++
	if err != nil {
		return nil, nil, st, err
	}
	if at < 0 {
		return nil, nil, st, fmt.Errorf("the %d-request sequence no longer reproduces the difference between %v (non-deterministic target?)", len(seq), kinds)
	}
	seq = seq[:at+1]
	n := 2
	for len(seq) > 1 {
		if time.Since(start) > budget {
			st.timedOut = true
			break
		}
		chunk := (len(seq) + n - 1) / n
		reduced := false
		// Later chunks first: requests near the end depend on earlier ones
		// far more often than the reverse.
		for end := len(seq); end > 0 && !reduced; end -= chunk {
			lo := max(0, end-chunk)
			cand := append(append([]*request(nil), seq[:lo]...), seq[end:]...)
			if len(cand) == 0 {
				continue
			}
			cat, cans, err := replay(tb, kinds, cand)
			st.replays++
			if err != nil {
				return nil, nil, st, err
			}
			if cat >= 0 {
				seq, answers, reduced = cand[:cat+1], cans, true
				n = max(n-1, 2)
			}
			if time.Since(start) > budget {
				break
			}
		}
		if !reduced {
			if n >= len(seq) {
				break
			}
			n = min(2*n, len(seq))
		}
	}
	st.to, st.elapsed = len(seq), time.Since(start)
	return seq, answers, st, nil
}
