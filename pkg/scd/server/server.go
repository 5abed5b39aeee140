package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/api"
	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// MaxBodyBytes is the largest request body accepted (spec §1, §14); larger
// bodies get 413.
const MaxBodyBytes = 4 << 20

// DefaultHandlerTimeout bounds one request's work (spec §1, §14); past it the
// request gets 503.
const DefaultHandlerTimeout = 10 * time.Second

// Authenticator validates a request's access token. A missing or invalid
// token is an error with models.CodeUnauthenticated (401). *auth.Authenticator
// implements it.
type Authenticator interface {
	Authenticate(r *http.Request) (*auth.Claims, error)
}

// Config configures the handler. Store and Authenticator are required.
type Config struct {
	// Store runs the SCD operations.
	Store scd.Store
	// Authenticator checks access tokens.
	Authenticator Authenticator
	// AllowHTTPBaseURLs lifts the https requirement on uss_base_url (§3.5).
	AllowHTTPBaseURLs bool
	// Quotas are the per-USS limits copied into every PUT this handler
	// builds (docs/quotas.md); the zero value sets none.
	Quotas scd.Quotas
	// HandlerTimeout bounds each request from authentication to rendering
	// (default DefaultHandlerTimeout). A request that runs past it gets 503.
	HandlerTimeout time.Duration
	// Now is the request clock (default time.Now). Its value is decided once
	// per request and travels inside the operation (architecture: nothing
	// non-deterministic inside Execute).
	Now func() time.Time
	// NewID generates implicit-subscription and report IDs (default: a
	// random UUIDv4).
	NewID func() models.ID
	// ExtraRoutes are endpoints of other APIs served by this handler
	// (extra.go); their patterns must not collide with the SCD routes.
	ExtraRoutes []Route
	// Logger receives error IDs with their causes and archived reports
	// (default: no logging).
	Logger *zap.Logger
	// Registerer, when set, gets the request metrics
	// (dss_http_request_duration_seconds by route and status class).
	Registerer prometheus.Registerer
}

// server is the http.Handler built by NewHandler.
type server struct {
	cfg     Config
	log     *zap.Logger
	router  *router
	routes  []route
	metrics *requestMetrics // nil without Config.Registerer
}

// NewHandler returns the HTTP handler serving the 18 /dss/v1 endpoints of
// spec §1 and GET /healthy.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.Authenticator == nil {
		return nil, errors.New("server: Config.Authenticator is required")
	}
	if cfg.HandlerTimeout < 0 {
		return nil, fmt.Errorf("server: negative HandlerTimeout %v", cfg.HandlerTimeout)
	}
	if cfg.HandlerTimeout == 0 {
		cfg.HandlerTimeout = DefaultHandlerTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = func() models.ID { return models.ID(uuid.NewString()) }
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	// The handler's store records when a request reaches it (timeout.go).
	cfg.Store = stagedStore{cfg.Store}
	s := &server{cfg: cfg, log: cfg.Logger, routes: routeTable()}
	for _, x := range cfg.ExtraRoutes {
		if x.Handle == nil {
			return nil, fmt.Errorf("server: extra route %s has no Handle", x.Name)
		}
		s.routes = append(s.routes, extraRoute(x))
	}
	methods := make([]string, len(s.routes))
	patterns := make([]string, len(s.routes))
	for i, r := range s.routes {
		methods[i], patterns[i] = r.method, r.pattern
	}
	rt, err := newRouter(methods, patterns)
	if err != nil {
		return nil, err
	}
	s.router = rt
	if cfg.Registerer != nil {
		if s.metrics, err = newRequestMetrics(cfg.Registerer, s.routes); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// request is what an endpoint function gets once the common steps passed.
type request struct {
	ctx    context.Context
	claims *auth.Claims
	params []string
	body   []byte
	info   api.RequestInfo
	// rawQuery is the request's query string (read by extra routes only).
	rawQuery string
}

// caller is the subject of the token, "" before authentication succeeded.
func (rq *request) caller() string {
	if rq.claims == nil {
		return ""
	}
	return rq.claims.Subject
}

// response is a success response: its status and the wire value that is
// marshalled as its JSON body.
type response struct {
	status int
	value  any
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		s.serveHTTP(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route := s.serveHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	s.metrics.observe(route, sw.status, start)
}

// serveHTTP answers r and returns the index of the route it matched, -1 for
// none.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) int {
	i, params, ok := s.router.match(r.Method, r.URL.EscapedPath())
	if !ok {
		notFound(w, r)
		return -1
	}
	rt := &s.routes[i]
	if rt.public {
		// /healthy: liveness only, no auth, no store (§1).
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
		return i
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HandlerTimeout)
	defer cancel()
	st := stageAuthenticating
	rq := &request{ctx: withStage(ctx, &st), params: params, rawQuery: r.URL.RawQuery}
	resp, err := s.serve(w, r, rt, rq, &st)
	if err != nil {
		// The operation may have failed because the deadline passed (or
		// the client left); then the answer is 503 whatever the store said
		// (§1), since the outcome may be unknown. An operation that
		// completed before the deadline keeps its answer. The log names
		// the step the deadline interrupted (timeout.go); the error is only
		// its consequence.
		if timedOut(ctx, err) {
			msg := "request timed out while " + st.String()
			if d, _ := ctx.Deadline(); r.Context().Err() != nil && time.Now().Before(d) {
				msg = "request cancelled by the client while " + st.String()
			}
			s.log.Warn(msg, zap.String("route", rt.name), zap.String("caller", rq.caller()),
				zap.Duration("timeout", s.cfg.HandlerTimeout), zap.Duration("elapsed", time.Since(start)),
				zap.NamedError("detail", err))
			plainError(w, http.StatusServiceUnavailable, "request timed out")
			return i
		}
		s.writeError(w, rt, rq, err)
		return i
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := encodeJSON(buf, resp.value); err != nil {
		s.writeError(w, rt, rq, fmt.Errorf("server: encoding %s response: %w", rt.name, err))
		return i
	}
	writeJSON(w, resp.status, buf.Bytes())
	return i
}

// serve runs the common steps in the order of spec §1 (authentication 401,
// scopes 403, body 413/400) and then the endpoint function, which parses,
// transacts and renders.
//
// st is advanced as the steps go (the store wrapper sets its own).
func (s *server) serve(w http.ResponseWriter, r *http.Request, rt *route, rq *request, st *stage) (response, error) {
	if rt.noAuth {
		*st = stageParsing
		rq.info = api.RequestInfo{Now: s.cfg.Now(), AllowHTTPBaseURLs: s.cfg.AllowHTTPBaseURLs, Ctx: rq.ctx}
		return rt.handle(s, rq)
	}
	claims, err := s.cfg.Authenticator.Authenticate(r)
	if err != nil {
		return response{}, err
	}
	if claims == nil || claims.Subject == "" {
		// Defence in depth: an Authenticator must never succeed without a
		// subject, since it becomes the manager of what the caller writes.
		return response{}, models.Errorf(models.CodeUnauthenticated, "access token has no subject")
	}
	rq.claims = claims
	if err := auth.Authorize(claims, rt.scopes); err != nil {
		return response{}, err
	}
	if rt.readsBody {
		*st = stageReadingBody
		// A body that arrives slowly must not hold the request past its
		// deadline; the server resets the connection's deadline for the
		// next request. Writers that cannot (tests' recorders) ignore it.
		if d, ok := rq.ctx.Deadline(); ok {
			_ = http.NewResponseController(w).SetReadDeadline(d)
		}
		if rq.body, err = readBody(w, r); err != nil {
			return response{}, err
		}
	}
	*st = stageParsing
	rq.info = api.RequestInfo{
		Caller:            claims.Subject,
		Now:               s.cfg.Now(),
		AllowHTTPBaseURLs: s.cfg.AllowHTTPBaseURLs,
		Ctx:               rq.ctx,
	}
	return rt.handle(s, rq)
}

// errBodyTooLarge marks a body over MaxBodyBytes (413, §1).
var errBodyTooLarge = errors.New("request body larger than 4 MiB")

// readBody reads the whole body under the 4 MiB limit. A body that cannot
// be read (the client went away mid-body) is a 400: it is the request that
// is broken.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// One allocation for the announced size instead of ReadFrom's
		// doubling from 512 bytes; ReadFrom wants MinRead bytes free before
		// each read, including the last one that sees EOF.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errBodyTooLarge
		}
		return nil, &models.Error{Code: models.CodeBadRequest, Message: "could not read request body", Cause: err}
	}
	return buf.Bytes(), nil
}
