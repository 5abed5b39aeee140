package models

import (
	"errors"
	"fmt"
)

// Code classifies an error. The HTTP layer maps codes to status codes in
// exactly one place (pkg/scd); nothing else looks at HTTP statuses.
type Code int

const (
	// CodeInternal is a bug or an unexpected store failure (500).
	CodeInternal Code = iota
	// CodeBadRequest is invalid input (400).
	CodeBadRequest
	// CodeUnauthenticated is a missing or invalid access token (401).
	CodeUnauthenticated
	// CodePermissionDenied is a valid token lacking scope or ownership (403).
	CodePermissionDenied
	// CodeNotFound is an absent entity (404).
	CodeNotFound
	// CodeVersionMismatch is a wrong OVN or version (409).
	CodeVersionMismatch
	// CodeAlreadyExists is a create on an existing entity (409).
	CodeAlreadyExists
	// CodeMissingKey is a failed key check (409 with missing lists).
	CodeMissingKey
	// CodeAreaTooLarge is a footprint over the area limit (400, or 413 for
	// the subscription query: the endpoint decides).
	CodeAreaTooLarge
	// CodeUnavailable is a store that cannot answer now, or an operation whose
	// outcome is unknown (503).
	CodeUnavailable
	// CodeQuotaExceeded is a write that would take its USS past a per-USS
	// quota (429, the status utm.yaml gives every PUT for "too many").
	CodeQuotaExceeded
)

var codeNames = [...]string{"Internal", "BadRequest", "Unauthenticated", "PermissionDenied", "NotFound",
	"VersionMismatch", "AlreadyExists", "MissingKey", "AreaTooLarge", "Unavailable", "QuotaExceeded"}

func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is the coded error of the DSS. Message is human text meant for the
// client.
type Error struct {
	Code    Code
	Message string
	// Set only for CodeMissingKey: the entities whose OVNs the key lacked.
	MissingOIRs []*OperationalIntent
	MissingCRs  []*Constraint
	// Availabilities maps the managers of MissingOIRs to their availability
	// (absent means Unknown), so the 409 body shows it like every other
	// OIR reference (spec §5.1).
	Availabilities map[string]Availability
	// Cause is an underlying error kept for logs (never shown to clients).
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: the code of the first *Error in its chain,
// CodeInternal otherwise.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
