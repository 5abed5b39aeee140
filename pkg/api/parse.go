package api

import (
	"context"
	"time"

	"github.com/raftdss/dss/pkg/geo"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// RequestInfo is what the handler knows about a request besides its path
// and body: the caller (the token's sub claim), the request time decided
// once before the operation runs, the server's allow_http_base_urls flag
// (spec §3.5), and the request's context, whose end interrupts the
// geometry (nil: no deadline).
type RequestInfo struct {
	Caller            string
	Now               time.Time
	AllowHTTPBaseURLs bool
	Ctx               context.Context
}

// Each Parse function performs ALL of step A (stateless validation) of its
// endpoint in the order spec §6 lists the checks, so the first failing
// check decides the error, and returns the operation ready to run. Errors
// are always *models.Error with CodeBadRequest, or CodeAreaTooLarge for
// footprints over the area limit (the handler picks 400 or 413).

// ParseQueryOperationalIntents is endpoint 1 (spec §6.1 Query).
func ParseQueryOperationalIntents(ri RequestInfo, body []byte) (*scd.QueryOperationalIntents, error) {
	var p QueryOperationalIntentReferenceParameters
	area, err := parseQuery(ri, body, &p, &p.AreaOfInterest)
	if err != nil {
		return nil, err
	}
	return &scd.QueryOperationalIntents{Caller: ri.Caller, Area: area}, nil
}

// ParseQueryConstraints is endpoint 6 (spec §6.2 Query).
func ParseQueryConstraints(ri RequestInfo, body []byte) (*scd.QueryConstraints, error) {
	var p QueryConstraintReferenceParameters
	area, err := parseQuery(ri, body, &p, &p.AreaOfInterest)
	if err != nil {
		return nil, err
	}
	return &scd.QueryConstraints{Caller: ri.Caller, Area: area}, nil
}

// ParseQuerySubscriptions is endpoint 11 (spec §6.3 Query). An area over the
// limit stays CodeAreaTooLarge: this endpoint alone answers it with 413.
func ParseQuerySubscriptions(ri RequestInfo, body []byte) (*scd.QuerySubscriptions, error) {
	var p QuerySubscriptionParameters
	area, err := parseQuery(ri, body, &p, &p.AreaOfInterest)
	if err != nil {
		return nil, err
	}
	return &scd.QuerySubscriptions{Caller: ri.Caller, Now: ri.Now, Area: area}, nil
}

// parseQuery decodes a query body into params and parses the area of
// interest that aoi points into: body parse, missing area, volume rules,
// covering (spec §6.1 Query).
func parseQuery(ri RequestInfo, body []byte, params any, aoi **Volume4D) (models.Volume4D, error) {
	if err := decodeBody(body, params); err != nil {
		return models.Volume4D{}, err
	}
	if *aoi == nil {
		return models.Volume4D{}, badRequest("missing area_of_interest")
	}
	v, err := parseVolume4D(*aoi, path{"area_of_interest", -1})
	if err != nil {
		return models.Volume4D{}, err
	}
	return v.toModel(geo.NewBudget(ri.Ctx))
}

// ParseGetOperationalIntent is endpoint 2.
func ParseGetOperationalIntent(ri RequestInfo, id string) (*scd.GetOperationalIntent, error) {
	eid, err := parseID("entityid", id)
	if err != nil {
		return nil, err
	}
	return &scd.GetOperationalIntent{Caller: ri.Caller, ID: eid}, nil
}

// ParseGetConstraint is endpoint 7.
func ParseGetConstraint(ri RequestInfo, id string) (*scd.GetConstraint, error) {
	eid, err := parseID("entityid", id)
	if err != nil {
		return nil, err
	}
	return &scd.GetConstraint{Caller: ri.Caller, ID: eid}, nil
}

// ParseGetSubscription is endpoint 12.
func ParseGetSubscription(ri RequestInfo, id string) (*scd.GetSubscription, error) {
	sid, err := parseID("subscriptionid", id)
	if err != nil {
		return nil, err
	}
	return &scd.GetSubscription{Caller: ri.Caller, ID: sid}, nil
}

// ParseDeleteOperationalIntent is endpoint 5: ID, then a non-empty OVN.
func ParseDeleteOperationalIntent(ri RequestInfo, id, ovn string) (*scd.DeleteOperationalIntent, error) {
	eid, err := parseIDAndVersion("entityid", id, "ovn", ovn)
	if err != nil {
		return nil, err
	}
	return &scd.DeleteOperationalIntent{Caller: ri.Caller, ID: eid, OVN: models.OVN(ovn)}, nil
}

// ParseDeleteConstraint is endpoint 10: ID, then a non-empty OVN.
func ParseDeleteConstraint(ri RequestInfo, id, ovn string) (*scd.DeleteConstraint, error) {
	eid, err := parseIDAndVersion("entityid", id, "ovn", ovn)
	if err != nil {
		return nil, err
	}
	return &scd.DeleteConstraint{Caller: ri.Caller, ID: eid, OVN: models.OVN(ovn)}, nil
}

// ParseDeleteSubscription is endpoint 15: ID, then a non-empty version.
func ParseDeleteSubscription(ri RequestInfo, id, version string) (*scd.DeleteSubscription, error) {
	sid, err := parseIDAndVersion("subscriptionid", id, "version", version)
	if err != nil {
		return nil, err
	}
	return &scd.DeleteSubscription{Caller: ri.Caller, ID: sid, Version: version}, nil
}

// ParsePutOperationalIntent is endpoints 3 (create: ovn must be "") and 4
// (update: ovn from the path, required). It follows spec §6.1 A in order and
// leaves NewSubscriptionID for the handler to fill.
func ParsePutOperationalIntent(ri RequestInfo, id, ovn string, create bool, body []byte) (*scd.PutOperationalIntent, error) {
	p, eid, ovn, err := parsePut[PutOperationalIntentReferenceParameters](body, "entityid", id, "ovn", ovn, create)
	if err != nil {
		return nil, err
	}
	if p.UssBaseURL == "" {
		return nil, badRequest("missing uss_base_url")
	}
	var subID models.ID
	if p.SubscriptionID != "" { // explicitly empty means absent (§3.1)
		if subID, err = parseID("subscription_id", p.SubscriptionID); err != nil {
			return nil, err
		}
	}
	if p.NewSubscription != nil && p.NewSubscription.UssBaseURL == "" {
		return nil, badRequest("missing new_subscription.uss_base_url")
	}
	if subID != "" && p.NewSubscription != nil {
		return nil, badRequest("subscription_id and new_subscription are mutually exclusive")
	}
	if err := checkBaseURL("uss_base_url", p.UssBaseURL, ri.AllowHTTPBaseURLs); err != nil {
		return nil, err
	}
	if p.NewSubscription != nil {
		if err := checkBaseURL("new_subscription.uss_base_url", p.NewSubscription.UssBaseURL, ri.AllowHTTPBaseURLs); err != nil {
			return nil, err
		}
	}
	state, err := models.ParseState(p.State)
	if err != nil {
		return nil, err
	}
	ext, err := parseExtents(p.Extents)
	if err != nil {
		return nil, err
	}
	// An OIR's stored volume has all four bounds (§5.1).
	if !ext.u.hasLower {
		return nil, badRequest("extents: altitude_lower is required in every volume")
	}
	if !ext.u.hasUpper {
		return nil, badRequest("extents: altitude_upper is required in every volume")
	}
	if err := ext.checkTimes(ri.Now); err != nil {
		return nil, err
	}
	cells, err := ext.cells(geo.NewBudget(ri.Ctx))
	if err != nil {
		return nil, err
	}
	if create && state != models.StateAccepted {
		return nil, badRequest("an operational intent must be created in state Accepted, not %s", state)
	}
	// Absent or null asks for a derived OVN; present, even "", must be a
	// valid suffix (docs/spec-notes.md).
	var requested models.OVN
	if p.RequestedOVNSuffix != nil {
		suffix, err := parseOVNSuffix(*p.RequestedOVNSuffix, ri.Now)
		if err != nil {
			return nil, err
		}
		requested = models.OVN(string(eid) + "_" + suffix)
	}
	if state != models.StateAccepted && subID == "" && p.NewSubscription == nil {
		return nil, badRequest("state %s requires subscription_id or new_subscription", state)
	}
	key, err := parseKey(p.Key)
	if err != nil {
		return nil, err
	}
	op := &scd.PutOperationalIntent{
		Caller:         ri.Caller,
		Now:            ri.Now,
		ID:             eid,
		OVN:            models.OVN(ovn),
		State:          state,
		Extents:        ext.unionModel(cells),
		USSBaseURL:     p.UssBaseURL,
		SubscriptionID: subID,
		RequestedOVN:   requested,
		Key:            key,
	}
	if p.NewSubscription != nil {
		op.NewSubscription = &scd.NewSubscription{
			USSBaseURL:           p.NewSubscription.UssBaseURL,
			NotifyForConstraints: p.NewSubscription.NotifyForConstraints,
		}
	}
	return op, nil
}

// parsePut decodes a PUT's body and checks its path: the entity ID (idName
// in errors) and, on an update, the token that names the version replaced
// (an OVN or a subscription version). A create ignores the token; an update
// without one is a bad request, never a create (§1 Deviation).
func parsePut[P any](body []byte, idName, id, tokenName, token string, create bool) (p P, eid models.ID, tok string, err error) {
	if err = decodeBody(body, &p); err != nil {
		return p, "", "", err
	}
	if eid, err = parseID(idName, id); err != nil {
		return p, "", "", err
	}
	if create {
		return p, eid, "", nil
	}
	if token == "" {
		return p, "", "", badRequest("missing %s", tokenName)
	}
	return p, eid, token, nil
}

// ParsePutConstraint is endpoints 8 (create) and 9 (update, ovn required),
// following spec §6.2 A: altitudes are optional for constraints.
func ParsePutConstraint(ri RequestInfo, id, ovn string, create bool, body []byte) (*scd.PutConstraint, error) {
	p, eid, ovn, err := parsePut[PutConstraintReferenceParameters](body, "entityid", id, "ovn", ovn, create)
	if err != nil {
		return nil, err
	}
	if err := checkBaseURL("uss_base_url", p.UssBaseURL, ri.AllowHTTPBaseURLs); err != nil {
		return nil, err
	}
	ext, err := parseExtents(p.Extents)
	if err != nil {
		return nil, err
	}
	if err := ext.checkTimes(ri.Now); err != nil {
		return nil, err
	}
	cells, err := ext.cells(geo.NewBudget(ri.Ctx))
	if err != nil {
		return nil, err
	}
	return &scd.PutConstraint{
		Caller:     ri.Caller,
		Now:        ri.Now,
		ID:         eid,
		OVN:        models.OVN(ovn),
		Extents:    ext.unionModel(cells),
		USSBaseURL: p.UssBaseURL,
	}, nil
}

// ParsePutSubscription is endpoints 13 (create) and 14 (update, version
// required), following spec §6.3 A. Times and altitudes of extents are
// optional; the operation normalises them (§6.3 B).
func ParsePutSubscription(ri RequestInfo, id, version string, create bool, body []byte) (*scd.PutSubscription, error) {
	p, sid, version, err := parsePut[PutSubscriptionParameters](body, "subscriptionid", id, "version", version, create)
	if err != nil {
		return nil, err
	}
	// §6.3 A Deviation: empty is rejected even when http URLs are allowed.
	if err := checkBaseURL("uss_base_url", p.UssBaseURL, ri.AllowHTTPBaseURLs); err != nil {
		return nil, err
	}
	if p.Extents == nil {
		return nil, badRequest("missing extents")
	}
	v, err := parseVolume4D(p.Extents, path{"extents", -1})
	if err != nil {
		return nil, err
	}
	area, err := v.toModel(geo.NewBudget(ri.Ctx))
	if err != nil {
		return nil, err
	}
	if !p.NotifyForOperationalIntents && !p.NotifyForConstraints {
		return nil, badRequest("at least one of notify_for_operational_intents and notify_for_constraints must be true")
	}
	return &scd.PutSubscription{
		Caller:                      ri.Caller,
		Now:                         ri.Now,
		ID:                          sid,
		Version:                     version,
		Extents:                     area,
		USSBaseURL:                  p.UssBaseURL,
		NotifyForOperationalIntents: p.NotifyForOperationalIntents,
		NotifyForConstraints:        p.NotifyForConstraints,
	}, nil
}

// checkUSSID rejects an empty uss_id (spec §6.4) and one that could not be
// the `sub` of an access token (models.CheckUSSID: bounded, printable).
func checkUSSID(ussID string) error {
	if ussID == "" {
		return badRequest("missing uss_id")
	}
	return models.CheckUSSID(ussID)
}

// ParseGetUssAvailability is endpoint 17.
func ParseGetUssAvailability(_ RequestInfo, ussID string) (*scd.GetUssAvailability, error) {
	if err := checkUSSID(ussID); err != nil {
		return nil, err
	}
	return &scd.GetUssAvailability{USS: ussID}, nil
}

// ParsePutUssAvailability is endpoint 18 (spec §6.4 Set): uss_id, body,
// availability (required; case-insensitive, "" = Unknown). An absent or
// null old_version is "" (§6.4: an omitted one compares as "").
func ParsePutUssAvailability(ri RequestInfo, ussID string, body []byte) (*scd.PutUssAvailability, error) {
	if err := checkUSSID(ussID); err != nil {
		return nil, err
	}
	var p SetUssAvailabilityStatusParameters
	if err := decodeBody(body, &p); err != nil {
		return nil, err
	}
	// Required by utm.yaml: absent or null must not silently mean Unknown
	// (that would reset a Down USS); an explicit "" is Unknown (§5.4).
	if p.Availability == nil {
		return nil, badRequest("missing availability: want Unknown, Normal or Down")
	}
	a, err := models.ParseAvailability(*p.Availability)
	if err != nil {
		return nil, err
	}
	return &scd.PutUssAvailability{Now: ri.Now, USS: ussID, OldVersion: p.OldVersion, Availability: a}, nil
}

// ParseErrorReport is endpoint 16 (spec §6.5). The handler assigns
// ReportID; any report_id the client sent is discarded here so that only
// the DSS's identifier is ever returned.
func ParseErrorReport(body []byte) (*ErrorReport, error) {
	var r ErrorReport
	if err := decodeBody(body, &r); err != nil {
		return nil, err
	}
	if r.Exchange == nil {
		return nil, badRequest("missing exchange")
	}
	r.ReportID = ""
	return &r, nil
}

// unionModel is the union volume with the given (already united) cells;
// bounds are set only where the union has them (§3.4).
func (e *extents) unionModel(cells []models.CellID) models.Volume4D {
	u := e.u // one copy, so the bounds' pointers share one allocation
	m := models.Volume4D{Cells: cells}
	if u.hasStart {
		m.StartTime = &u.start
	}
	if u.hasEnd {
		m.EndTime = &u.end
	}
	if u.hasLower {
		m.AltitudeLower = &u.lower
	}
	if u.hasUpper {
		m.AltitudeUpper = &u.upper
	}
	return m
}

// parseIDAndVersion checks the two path parameters of a delete: the ID,
// then a non-empty OVN or version (spec §1: an empty one is a 400).
func parseIDAndVersion(idField, id, versionField, version string) (models.ID, error) {
	eid, err := parseID(idField, id)
	if err != nil {
		return "", err
	}
	if version == "" {
		return "", badRequest("missing %s", versionField)
	}
	return eid, nil
}
