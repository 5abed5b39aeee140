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
	// lock_timeout ran out (or NOWAIT): the statement, and so the
	// transaction, failed before it changed anything.
	sqlstateLockNotAvailable = "55P03"
	// statement_timeout or a cancel request.
	sqlstateQueryCanceled = "57014"
)

// sqlstate returns the SQLSTATE of a PostgreSQL error in err, or "".
func sqlstate(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

func isLockTimeout(err error) bool { return sqlstate(err) == sqlstateLockNotAvailable }

// isStatementTimeout tells PostgreSQL's statement_timeout from a cancel
// request (which pgx sends when a context ends) by its message.
func isStatementTimeout(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == sqlstateQueryCanceled && strings.Contains(pg.Message, "statement timeout")
}

// errQueueTimeout is the cause of an operation that waited in the store's
// process for longer than its retry budget (see Store.waitError).
var errQueueTimeout = errors.New("sqlstore: retry budget spent waiting for a writer slot or connection")

func isQueueTimeout(err error) bool { return errors.Is(err, errQueueTimeout) }

// messageOf is the client-facing message of err.
func messageOf(err error) string {
	var e *models.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

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
	// The message names what the request was doing when it failed and
	// why: for a 503 under load, that is what an operator needs to know.
	msg := "database error"
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		msg = "request ended before the database answered, while " + what
	case isStatementTimeout(err):
		msg = "database statement timed out while " + what
	default:
		switch sqlstate(err) {
		case sqlstateSerializationFailure:
			msg = "database contention: serialization failure while " + what
		case sqlstateDeadlockDetected:
			msg = "database contention: deadlock while " + what
		case sqlstateLockNotAvailable:
			msg = "database contention: lock wait timed out while " + what
		default:
			if code == models.CodeUnavailable {
				msg = "database unavailable, retry"
			}
		}
	}
	return &models.Error{Code: code, Message: msg, Cause: &dbFailure{what: what, err: err}}
}

func isDBError(err error) bool {
	var f *dbFailure
	return errors.As(err, &f)
}

// isRetryable reports a definite abort that a rerun may resolve: a
// conflict with another transaction, or a lock wait that ran out of time
// (lock_timeout: the statement failed before it changed anything, and the
// whole transaction rolls back).
func isRetryable(err error) bool {
	switch sqlstate(err) {
	case sqlstateSerializationFailure, sqlstateDeadlockDetected, sqlstateLockNotAvailable:
		return true
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
			pg.Code == sqlstateQueryCanceled,  // statement timeout
			pg.Code == sqlstateLockNotAvailable:
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
