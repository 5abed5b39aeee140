package server

import (
	"context"
	"net/url"
	"time"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// Route is an endpoint of another API (such as the pool's /aux/v1) served
// by this handler beside the SCD endpoints, through the same steps:
// authentication (401), scope check (403), the handler timeout (503), the
// store wrapper that names the step a timeout interrupted, and the one
// mapping of error codes to statuses (errors.go). Extra routes take no
// body.
type Route struct {
	// Name names the route in logs.
	Name string
	// Method and Pattern are matched like the SCD routes (router.go).
	Method, Pattern string
	// Scopes is the requirement checked after authentication.
	Scopes auth.Requirement
	// NoAuth serves the route without a token (Scopes is then ignored).
	NoAuth bool
	// Handle answers the request: the status and the value marshalled as
	// its JSON body, or an error (a *models.Error for a 4xx).
	Handle func(rq *Request) (status int, body any, err error)
}

// Request is what an extra route's Handle gets.
type Request struct {
	Ctx context.Context
	// Claims is nil for a NoAuth route.
	Claims *auth.Claims
	// Params are the path parameters in template order.
	Params []string
	// Query is the parsed query string.
	Query url.Values
	// Now is the request time (Config.Now), decided once per request.
	Now time.Time
	// Store is the handler's store: operations run through it like the
	// SCD ones.
	Store scd.Store
}

// extraRoute turns an extra Route into a row of the route table.
func extraRoute(x Route) route {
	return route{
		name: x.Name, method: x.Method, pattern: x.Pattern, scopes: x.Scopes, noAuth: x.NoAuth,
		handle: func(s *server, rq *request) (response, error) {
			q, err := url.ParseQuery(rq.rawQuery)
			if err != nil {
				return response{}, models.Errorf(models.CodeBadRequest, "malformed query string")
			}
			status, body, err := x.Handle(&Request{Ctx: rq.ctx, Claims: rq.claims, Params: rq.params,
				Query: q, Now: rq.info.Now, Store: s.cfg.Store})
			return response{status: status, value: body}, err
		},
	}
}
