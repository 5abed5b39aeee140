package sqlstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/raftdss/dss/pkg/models"
)

// SQLSTATEs after which PostgreSQL has rolled the whole transaction back and
// running it again may succeed.
const (
	sqlstateSerializationFailure = "40001"
	sqlstateDeadlockDetected     = "40P01"
)

// dbFailure marks an error as coming from the database (as opposed to an
// operation's own verdict), so that Transact logs it; it is the Cause of the
// *models.Error that callers see, which never exposes it to clients.
type dbFailure struct {
	what string
	err  error
}

func (e *dbFailure) Error() string { return e.what + ": " + e.err.Error() }
func (e *dbFailure) Unwrap() error { return e.err }

// dbError turns a database error into a coded one. It is never a 4xx: the
// client did nothing wrong when the database fails.
func dbError(err error, what string) *models.Error {
	code := classify(err)
	msg := "database error"
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		msg = "request ended before the database answered"
	case isRetryable(err):
		msg = "contention, retry"
	case code == models.CodeUnavailable:
		msg = "database unavailable, retry"
	}
	return &models.Error{Code: code, Message: msg, Cause: &dbFailure{what: what, err: err}}
}

func isDBError(err error) bool {
	var f *dbFailure
	return errors.As(err, &f)
}

// isRetryable reports a definite abort that a rerun may resolve.
func isRetryable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == sqlstateSerializationFailure || pg.Code == sqlstateDeadlockDetected
	}
	return false
}

// classify says whether the database cannot answer now (CodeUnavailable:
// the client may retry later) or failed in a way that is a bug or a broken
// database (CodeInternal).
func classify(err error) models.Code {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return models.CodeUnavailable
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case isRetryable(err),
			strings.HasPrefix(pg.Code, "08"),  // connection exception
			strings.HasPrefix(pg.Code, "53"),  // insufficient resources, e.g. 53300 too many connections
			strings.HasPrefix(pg.Code, "57P"), // shutdown, crash recovery, cannot connect now
			pg.Code == "55P03":                // lock not available
			return models.CodeUnavailable
		}
		return models.CodeInternal
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, puddle.ErrClosedPool), pgconn.SafeToRetry(err):
		return models.CodeUnavailable
	}
	return models.CodeInternal
}
