package auth

import (
	"slices"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// Scope names of spec §1.
const (
	ScopeStrategicCoordination   = "utm.strategic_coordination"
	ScopeConstraintManagement    = "utm.constraint_management"
	ScopeConstraintProcessing    = "utm.constraint_processing"
	ScopeConformanceMonitoringSA = "utm.conformance_monitoring_sa"
	ScopeAvailabilityArbitration = "utm.availability_arbitration"
)

// Requirement is an endpoint's scope rule as written in the spec §1 table:
// the alternatives (outer slice) are OR-ed and the scopes inside one
// alternative are AND-ed. For example OIR create ("SC · SC+CP · CMSA") is
//
//	Requirement{{ScopeStrategicCoordination},
//		{ScopeStrategicCoordination, ScopeConstraintProcessing},
//		{ScopeConformanceMonitoringSA}}
//
// An empty Requirement has no alternative and is never satisfied; an empty
// alternative is always satisfied. Endpoints without authentication (such as
// /healthy) simply do not call Authorize.
type Requirement [][]string

// String renders r for error messages, e.g.
// `"utm.a", or "utm.b" and "utm.c"`.
func (r Requirement) String() string {
	var b strings.Builder
	for i, alt := range r {
		if i > 0 {
			b.WriteString(", or ")
		}
		if len(alt) == 0 {
			b.WriteString("(no scope)")
		}
		for j, s := range alt {
			if j > 0 {
				b.WriteString(" and ")
			}
			b.WriteByte('"')
			b.WriteString(s)
			b.WriteByte('"')
		}
	}
	return b.String()
}

// Claims is what an authenticated request carries into the service.
type Claims struct {
	// Subject is the `sub` claim verbatim: the caller's identity, stored as
	// the manager of every entity it writes (spec §2).
	Subject string
	// Issuer is the `iss` claim.
	Issuer string
	// Scopes are the entries of the space-separated `scope` claim.
	Scopes []string
	// ExpiresAt is the `exp` claim.
	ExpiresAt time.Time
}

// HasScope reports whether the token grants scope s (exact comparison).
func (c *Claims) HasScope(s string) bool {
	return c != nil && slices.Contains(c.Scopes, s)
}

// Satisfies reports whether some alternative of r is fully granted.
func (c *Claims) Satisfies(r Requirement) bool {
	if c == nil {
		return false
	}
	for _, alt := range r {
		ok := true
		for _, s := range alt {
			if !c.HasScope(s) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Authorize returns nil when c satisfies r. A valid token lacking the scopes
// is a CodePermissionDenied error (403, spec §2) naming the scopes that would
// do; a nil c means the request was never authenticated and is
// CodeUnauthenticated (401).
func Authorize(c *Claims, r Requirement) error {
	if c == nil {
		return models.Errorf(models.CodeUnauthenticated, "missing access token")
	}
	if c.Satisfies(r) {
		return nil
	}
	if len(r) == 0 {
		return models.Errorf(models.CodePermissionDenied, "this operation is not permitted to any scope")
	}
	return models.Errorf(models.CodePermissionDenied,
		"access token lacks the required scopes: need %s", r)
}
