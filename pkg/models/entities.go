package models

import (
	"strings"
	"time"
)

// CellID is an S2 cell ID at level 13, stored as int64 by bit-cast (spec §4).
type CellID int64

// LatLng is a point in degrees.
type LatLng struct {
	Lat, Lng float64
}

// Altitude bounds are metres above the WGS84 ellipsoid (spec §3.3); the
// reference stores them as float32.

// Volume4D is a parsed, validated query or extents volume: its footprint is
// already covered by level-13 cells. Absent bounds are nil and do not filter.
type Volume4D struct {
	Cells         []CellID
	StartTime     *time.Time
	EndTime       *time.Time
	AltitudeLower *float32
	AltitudeUpper *float32
}

// OperationalIntentState is the state of an OIR (spec §5.1).
type OperationalIntentState string

// The four states of an OIR.
const (
	StateAccepted      OperationalIntentState = "Accepted"
	StateActivated     OperationalIntentState = "Activated"
	StateNonconforming OperationalIntentState = "Nonconforming"
	StateContingent    OperationalIntentState = "Contingent"
)

// ParseState accepts exactly one of the four spellings.
func ParseState(s string) (OperationalIntentState, error) {
	switch st := OperationalIntentState(s); st {
	case StateAccepted, StateActivated, StateNonconforming, StateContingent:
		return st, nil
	}
	return "", Errorf(CodeBadRequest, "invalid state %q: want Accepted, Activated, Nonconforming or Contingent", truncate(s))
}

// RequiresKeyCheck reports whether writing an OIR into this state runs the
// key check (spec §7).
func (s OperationalIntentState) RequiresKeyCheck() bool {
	return s == StateAccepted || s == StateActivated
}

// OperationalIntent is a stored operational intent reference (spec §5.1).
// The 4D volume is the union of the extents; all four bounds are present.
type OperationalIntent struct {
	ID      ID
	Manager string
	Version int32
	State   OperationalIntentState
	// RequestedOVN is set when the USS chose the OVN (InterUSS extension);
	// otherwise the OVN is derived from ID and UpdatedAt.
	RequestedOVN OVN
	// PastOVNs lists the OVNs this OIR had before (not exposed).
	PastOVNs       []OVN
	USSBaseURL     string
	SubscriptionID ID // "" when none
	StartTime      time.Time
	EndTime        time.Time
	AltitudeLower  float32
	AltitudeUpper  float32
	Cells          []CellID
	UpdatedAt      time.Time
}

// OVN returns the current OVN of the OIR.
func (o *OperationalIntent) OVN() OVN {
	if o.RequestedOVN != "" {
		return o.RequestedOVN
	}
	return OVN(DeriveVersion(string(o.ID), o.UpdatedAt))
}

// Constraint is a stored constraint reference (spec §5.2).
type Constraint struct {
	ID            ID
	Manager       string
	Version       int32
	USSBaseURL    string
	StartTime     time.Time
	EndTime       time.Time
	AltitudeLower *float32
	AltitudeUpper *float32
	Cells         []CellID
	UpdatedAt     time.Time
}

// OVN returns the current OVN of the constraint.
func (c *Constraint) OVN() OVN { return OVN(DeriveVersion(string(c.ID), c.UpdatedAt)) }

// Subscription is a stored subscription (spec §5.3). Altitudes are not stored.
type Subscription struct {
	ID                          ID
	Manager                     string
	NotificationIndex           int32
	USSBaseURL                  string
	NotifyForOperationalIntents bool
	NotifyForConstraints        bool
	Implicit                    bool
	StartTime                   time.Time
	EndTime                     time.Time
	Cells                       []CellID
	UpdatedAt                   time.Time
}

// Version returns the opaque version string of the subscription; it changes
// on every write of the subscription but not on notification increments.
func (s *Subscription) Version() string { return DeriveVersion(string(s.ID), s.UpdatedAt) }

// Availability of a USS (spec §5.4).
type Availability string

// The three availabilities.
const (
	AvailabilityUnknown Availability = "Unknown"
	AvailabilityNormal  Availability = "Normal"
	AvailabilityDown    Availability = "Down"
)

// ParseAvailability is case-insensitive; "" means Unknown.
func ParseAvailability(s string) (Availability, error) {
	switch strings.ToLower(s) {
	case "", "unknown":
		return AvailabilityUnknown, nil
	case "normal":
		return AvailabilityNormal, nil
	case "down":
		return AvailabilityDown, nil
	}
	return "", Errorf(CodeBadRequest, "invalid availability %q: want Unknown, Normal or Down", truncate(s))
}

// UssAvailability is the stored availability record of a USS.
type UssAvailability struct {
	USS          string
	Availability Availability
	UpdatedAt    time.Time
}

// Version returns the opaque version of the record.
func (u *UssAvailability) Version() string { return DeriveVersion(u.USS, u.UpdatedAt) }

// SubscriberKind selects which notify flag a notification increment uses.
type SubscriberKind int

// The two notification kinds (spec §9).
const (
	NotifyOperationalIntents SubscriberKind = iota
	NotifyConstraints
)
