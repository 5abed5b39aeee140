package server

import (
	"context"
	"errors"
	"os"

	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// A request runs in one goroutine, step after step, and every step that can
// take long honours the request's deadline (HandlerTimeout): the body is
// read under a read deadline, the geometry looks at the context as it
// works (pkg/geo), and the store is given the context. So when the deadline
// passes, the step in progress stops within milliseconds and the request is
// answered 503 there and then, well inside the http.Server's WriteTimeout,
// instead of the work running on and its answer being dropped by a closed
// connection (an empty reply). The log line names the step that was running
// when the deadline passed, which is the real cause: a store error such as
// "read barrier not confirmed by a quorum" after the deadline is only a
// consequence of the context having ended, and is logged as the detail.

// stage is the step a request is in.
type stage int

const (
	stageAuthenticating stage = iota
	stageReadingBody
	stageParsing
	stageStore
	stageRendering
)

// String is the step as the timeout log line names it ("request timed out
// while ...").
func (s stage) String() string {
	switch s {
	case stageAuthenticating:
		return "authenticating"
	case stageReadingBody:
		return "reading the request body"
	case stageParsing:
		return "validating the request and computing the covering"
	case stageStore:
		return "waiting for the store"
	}
	return "rendering the response"
}

// stageKey is the context key under which a request's *stage travels to
// the store wrapper.
type stageKey struct{}

func withStage(ctx context.Context, s *stage) context.Context {
	return context.WithValue(ctx, stageKey{}, s)
}

// stagedStore records in the request's stage when the operation reaches the
// store and when it leaves it. An operation whose request has already run
// out of time is not started: the deadline passed in the step before.
type stagedStore struct {
	scd.Store
}

func (s stagedStore) Transact(ctx context.Context, op store.Operation[repos.Repo]) (any, error) {
	st, _ := ctx.Value(stageKey{}).(*stage)
	if st == nil {
		return s.Store.Transact(ctx, op)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	*st = stageStore
	res, err := s.Store.Transact(ctx, op)
	if err == nil {
		// A failure keeps the stage: it is the store's step that failed.
		*st = stageRendering
	}
	return res, err
}

// timedOut reports whether a request's error means its deadline passed (or
// its client left): its context ended, or a read hit the deadline set from
// it (the connection's deadline may fire a moment before the context's
// timer).
func timedOut(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
}
