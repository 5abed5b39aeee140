package api

import (
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// Render functions turn operation results into response bodies ready for
// json.Marshal. caller is the requesting USS: OVNs of entities it does not
// manage are replaced by models.ScrubbedOVN (spec §3.6). Arrays are never
// nil, so they marshal as [] rather than null.

// timeFormat is RFC 3339 with all nine fractional digits: spec §3.2 asks for
// fractional seconds in returned times, and nanoseconds make the instant
// round-trip exactly (time.RFC3339Nano would drop a zero fraction).
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// renderTime renders an instant in UTC.
func renderTime(t time.Time) Time {
	return Time{Value: t.UTC().Format(timeFormat), Format: "RFC3339"}
}

// scrub returns the OVN the caller may see.
func scrub(caller, manager string, ovn models.OVN) string {
	if caller != manager {
		return string(models.ScrubbedOVN)
	}
	return string(ovn)
}

// availability renders "" as Unknown: a USS without a record is Unknown
// (spec §5.4).
func availability(a models.Availability) string {
	if a == "" {
		return string(models.AvailabilityUnknown)
	}
	return string(a)
}

// RenderOperationalIntent renders one OIR for caller (spec §5.1). An OIR
// without subscription shows models.NullSubscriptionID (§3.6). A nil OIR
// renders as the zero reference rather than panicking.
func RenderOperationalIntent(caller string, v scd.OperationalIntentView) OperationalIntentReference {
	return renderOIR(caller, v.OIR, v.Availability)
}

func renderOIR(caller string, o *models.OperationalIntent, a models.Availability) OperationalIntentReference {
	if o == nil {
		return OperationalIntentReference{}
	}
	sub := o.SubscriptionID
	if sub == "" {
		sub = models.NullSubscriptionID
	}
	return OperationalIntentReference{
		ID:              string(o.ID),
		Manager:         o.Manager,
		UssAvailability: availability(a),
		Version:         o.Version,
		State:           string(o.State),
		OVN:             scrub(caller, o.Manager, o.OVN()),
		TimeStart:       renderTime(o.StartTime),
		TimeEnd:         renderTime(o.EndTime),
		UssBaseURL:      o.USSBaseURL,
		SubscriptionID:  string(sub),
	}
}

func renderOIRs(caller string, vs []scd.OperationalIntentView) []OperationalIntentReference {
	out := make([]OperationalIntentReference, len(vs))
	for i, v := range vs {
		out[i] = RenderOperationalIntent(caller, v)
	}
	return out
}

// RenderQueryOperationalIntents answers endpoint 1.
func RenderQueryOperationalIntents(caller string, vs []scd.OperationalIntentView) QueryOperationalIntentReferenceResponse {
	return QueryOperationalIntentReferenceResponse{OperationalIntentReferences: renderOIRs(caller, vs)}
}

// RenderGetOperationalIntent answers endpoint 2.
func RenderGetOperationalIntent(caller string, v scd.OperationalIntentView) GetOperationalIntentReferenceResponse {
	return GetOperationalIntentReferenceResponse{OperationalIntentReference: RenderOperationalIntent(caller, v)}
}

// RenderChangeOperationalIntent answers endpoints 3, 4 and 5.
func RenderChangeOperationalIntent(caller string, r scd.OperationalIntentResult) ChangeOperationalIntentReferenceResponse {
	return ChangeOperationalIntentReferenceResponse{
		Subscribers:                renderSubscribers(r.Subscribers),
		OperationalIntentReference: RenderOperationalIntent(caller, r.OIR),
	}
}

// renderSubscribers renders spec §9's grouping; always an array.
func renderSubscribers(ss []scd.Subscriber) []SubscriberToNotify {
	out := make([]SubscriberToNotify, len(ss))
	for i, s := range ss {
		states := make([]SubscriptionState, len(s.Subscriptions))
		for j, st := range s.Subscriptions {
			states[j] = SubscriptionState{SubscriptionID: string(st.ID), NotificationIndex: st.NotificationIndex}
		}
		out[i] = SubscriberToNotify{Subscriptions: states, UssBaseURL: s.USSBaseURL}
	}
	return out
}

// RenderConstraint renders one CR for caller (spec §5.2): uss_availability
// is always Unknown, as in the reference. A nil CR renders as the zero
// reference.
func RenderConstraint(caller string, c *models.Constraint) ConstraintReference {
	if c == nil {
		return ConstraintReference{}
	}
	return ConstraintReference{
		ID:              string(c.ID),
		Manager:         c.Manager,
		UssAvailability: string(models.AvailabilityUnknown),
		Version:         c.Version,
		OVN:             scrub(caller, c.Manager, c.OVN()),
		TimeStart:       renderTime(c.StartTime),
		TimeEnd:         renderTime(c.EndTime),
		UssBaseURL:      c.USSBaseURL,
	}
}

func renderCRs(caller string, cs []*models.Constraint) []ConstraintReference {
	out := make([]ConstraintReference, len(cs))
	for i, c := range cs {
		out[i] = RenderConstraint(caller, c)
	}
	return out
}

// RenderQueryConstraints answers endpoint 6.
func RenderQueryConstraints(caller string, cs []*models.Constraint) QueryConstraintReferencesResponse {
	return QueryConstraintReferencesResponse{ConstraintReferences: renderCRs(caller, cs)}
}

// RenderGetConstraint answers endpoint 7.
func RenderGetConstraint(caller string, c *models.Constraint) GetConstraintReferenceResponse {
	return GetConstraintReferenceResponse{ConstraintReference: RenderConstraint(caller, c)}
}

// RenderChangeConstraint answers endpoints 8, 9 and 10.
func RenderChangeConstraint(caller string, r scd.ConstraintResult) ChangeConstraintReferenceResponse {
	return ChangeConstraintReferenceResponse{
		Subscribers:         renderSubscribers(r.Subscribers),
		ConstraintReference: RenderConstraint(caller, r.CR),
	}
}

// RenderSubscription renders a subscription with its dependents (spec
// §5.3): booleans always present, dependents always an array. Only the
// manager ever receives a subscription, so nothing is scrubbed.
func RenderSubscription(v scd.SubscriptionView) Subscription {
	deps := make([]string, len(v.Dependents))
	for i, d := range v.Dependents {
		deps[i] = string(d)
	}
	s := v.Sub
	if s == nil {
		return Subscription{DependentOperationalIntents: deps}
	}
	return Subscription{
		ID:                          string(s.ID),
		Version:                     s.Version(),
		NotificationIndex:           s.NotificationIndex,
		TimeStart:                   renderTime(s.StartTime),
		TimeEnd:                     renderTime(s.EndTime),
		UssBaseURL:                  s.USSBaseURL,
		NotifyForOperationalIntents: s.NotifyForOperationalIntents,
		NotifyForConstraints:        s.NotifyForConstraints,
		ImplicitSubscription:        s.Implicit,
		DependentOperationalIntents: deps,
	}
}

// RenderQuerySubscriptions answers endpoint 11.
func RenderQuerySubscriptions(vs []scd.SubscriptionView) QuerySubscriptionsResponse {
	out := make([]Subscription, len(vs))
	for i, v := range vs {
		out[i] = RenderSubscription(v)
	}
	return QuerySubscriptionsResponse{Subscriptions: out}
}

// RenderGetSubscription answers endpoint 12.
func RenderGetSubscription(v scd.SubscriptionView) GetSubscriptionResponse {
	return GetSubscriptionResponse{Subscription: RenderSubscription(v)}
}

// RenderPutSubscription answers endpoints 13 and 14. Each reference list is
// present (possibly []) iff the stored subscription's matching notify flag
// is set, and absent otherwise — never null (spec §6.3 F).
func RenderPutSubscription(caller string, r scd.PutSubscriptionResult) PutSubscriptionResponse {
	resp := PutSubscriptionResponse{Subscription: RenderSubscription(r.Sub)}
	if s := r.Sub.Sub; s != nil {
		if s.NotifyForOperationalIntents {
			oirs := renderOIRs(caller, r.OIRs)
			resp.OperationalIntentReferences = &oirs
		}
		if s.NotifyForConstraints {
			crs := renderCRs(caller, r.CRs)
			resp.ConstraintReferences = &crs
		}
	}
	return resp
}

// RenderDeleteSubscription answers endpoint 15 with the subscription as it
// was.
func RenderDeleteSubscription(v scd.SubscriptionView) DeleteSubscriptionResponse {
	return DeleteSubscriptionResponse{Subscription: RenderSubscription(v)}
}

// RenderAvailability answers endpoints 17 and 18 (spec §6.4).
func RenderAvailability(v scd.AvailabilityView) UssAvailabilityStatusResponse {
	return UssAvailabilityStatusResponse{
		Status:  UssAvailabilityStatus{USS: v.USS, Availability: availability(v.Availability)},
		Version: v.Version,
	}
}

// RenderAirspaceConflict renders a 409 from an OIR PUT (spec §7): the
// message plus the missing references, each list omitted when empty, OIRs
// with their managers' availability.
func RenderAirspaceConflict(caller string, e *models.Error) AirspaceConflictResponse {
	if e == nil {
		return AirspaceConflictResponse{}
	}
	resp := AirspaceConflictResponse{Message: e.Message}
	if len(e.MissingOIRs) > 0 {
		resp.MissingOperationalIntents = make([]OperationalIntentReference, len(e.MissingOIRs))
		for i, o := range e.MissingOIRs {
			av, ok := e.Availabilities[o.Manager]
			if !ok {
				av = models.AvailabilityUnknown
			}
			resp.MissingOperationalIntents[i] = renderOIR(caller, o, av)
		}
	}
	if len(e.MissingCRs) > 0 {
		resp.MissingConstraints = renderCRs(caller, e.MissingCRs)
	}
	return resp
}

// RenderError is the body of every 4xx response (spec §3.7).
func RenderError(message string) ErrorResponse {
	return ErrorResponse{Message: message}
}

// RenderInternalError is the body of a 500 response (spec §3.7).
func RenderInternalError(message string) InternalErrorResponse {
	return InternalErrorResponse{ErrorMessage: message}
}
