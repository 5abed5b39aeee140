package api

// Wire types of the /dss/v1 API. Names follow the schema names of utm.yaml;
// JSON tags follow its property names. Request types keep optional members
// as pointers so that "absent" can be told apart where the spec cares
// (spec §3.4: absent bounds do not filter). Response types are built only
// by the Render functions, which guarantee the shapes the spec demands
// (arrays never null, keys absent rather than null).

// Time is utm.yaml Time. Format is never validated on input (spec §3.2) and
// is always "RFC3339" on output.
type Time struct {
	Value  string `json:"value"`
	Format string `json:"format"`
}

// Altitude is utm.yaml Altitude (spec §3.3).
type Altitude struct {
	Value     float64 `json:"value"`
	Reference string  `json:"reference"`
	Units     string  `json:"units"`
}

// LatLngPoint is utm.yaml LatLngPoint, in degrees.
type LatLngPoint struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Radius is utm.yaml Radius. Units are not validated (spec §3.4): the value
// is taken as metres.
type Radius struct {
	Value float64 `json:"value"`
	Units string  `json:"units"`
}

// Circle is utm.yaml Circle. Both members are required by this DSS (spec
// §3.4 Deviation: the reference crashes without them).
type Circle struct {
	Center *LatLngPoint `json:"center,omitempty"`
	Radius *Radius      `json:"radius,omitempty"`
}

// Polygon is utm.yaml Polygon.
type Polygon struct {
	Vertices []LatLngPoint `json:"vertices"`
}

// Volume3D is utm.yaml Volume3D: exactly one outline (spec §3.4).
type Volume3D struct {
	OutlineCircle  *Circle   `json:"outline_circle,omitempty"`
	OutlinePolygon *Polygon  `json:"outline_polygon,omitempty"`
	AltitudeLower  *Altitude `json:"altitude_lower,omitempty"`
	AltitudeUpper  *Altitude `json:"altitude_upper,omitempty"`
}

// Volume4D is utm.yaml Volume4D.
type Volume4D struct {
	Volume    *Volume3D `json:"volume,omitempty"`
	TimeStart *Time     `json:"time_start,omitempty"`
	TimeEnd   *Time     `json:"time_end,omitempty"`
}

// --- Operational intent references ---

// OperationalIntentReference is utm.yaml OperationalIntentReference as
// returned by the DSS: every member is always present; OVN is the real one
// only for the manager (spec §3.6).
type OperationalIntentReference struct {
	ID              string `json:"id"`
	Manager         string `json:"manager"`
	UssAvailability string `json:"uss_availability"`
	Version         int32  `json:"version"`
	State           string `json:"state"`
	OVN             string `json:"ovn"`
	TimeStart       Time   `json:"time_start"`
	TimeEnd         Time   `json:"time_end"`
	UssBaseURL      string `json:"uss_base_url"`
	SubscriptionID  string `json:"subscription_id"`
}

// ImplicitSubscriptionParameters is utm.yaml ImplicitSubscriptionParameters.
type ImplicitSubscriptionParameters struct {
	UssBaseURL           string `json:"uss_base_url"`
	NotifyForConstraints bool   `json:"notify_for_constraints"`
}

// PutOperationalIntentReferenceParameters is the body of endpoints 3 and 4.
// RequestedOVNSuffix is the InterUSS extension of spec §3.6; it is a
// pointer because absent (or null) and "" differ: absent asks for a derived
// OVN, "" is a bad suffix (docs/spec-notes.md). A null or "" entry of Key
// decodes to "" and is rejected; an empty SubscriptionID is absent (§3.1).
type PutOperationalIntentReferenceParameters struct {
	Extents            []Volume4D                      `json:"extents"`
	Key                []string                        `json:"key,omitempty"`
	State              string                          `json:"state"`
	UssBaseURL         string                          `json:"uss_base_url"`
	SubscriptionID     string                          `json:"subscription_id,omitempty"`
	NewSubscription    *ImplicitSubscriptionParameters `json:"new_subscription,omitempty"`
	RequestedOVNSuffix *string                         `json:"requested_ovn_suffix,omitempty"`
}

// QueryOperationalIntentReferenceParameters is the body of endpoint 1.
type QueryOperationalIntentReferenceParameters struct {
	AreaOfInterest *Volume4D `json:"area_of_interest,omitempty"`
}

// QueryOperationalIntentReferenceResponse answers endpoint 1.
type QueryOperationalIntentReferenceResponse struct {
	OperationalIntentReferences []OperationalIntentReference `json:"operational_intent_references"`
}

// GetOperationalIntentReferenceResponse answers endpoint 2.
type GetOperationalIntentReferenceResponse struct {
	OperationalIntentReference OperationalIntentReference `json:"operational_intent_reference"`
}

// SubscriptionState is utm.yaml SubscriptionState (spec §9).
type SubscriptionState struct {
	SubscriptionID    string `json:"subscription_id"`
	NotificationIndex int32  `json:"notification_index"`
}

// SubscriberToNotify is utm.yaml SubscriberToNotify (spec §9).
type SubscriberToNotify struct {
	Subscriptions []SubscriptionState `json:"subscriptions"`
	UssBaseURL    string              `json:"uss_base_url"`
}

// ChangeOperationalIntentReferenceResponse answers endpoints 3, 4 and 5.
type ChangeOperationalIntentReferenceResponse struct {
	Subscribers                []SubscriberToNotify       `json:"subscribers"`
	OperationalIntentReference OperationalIntentReference `json:"operational_intent_reference"`
}

// --- Constraint references ---

// ConstraintReference is utm.yaml ConstraintReference as returned by the DSS.
type ConstraintReference struct {
	ID              string `json:"id"`
	Manager         string `json:"manager"`
	UssAvailability string `json:"uss_availability"`
	Version         int32  `json:"version"`
	OVN             string `json:"ovn"`
	TimeStart       Time   `json:"time_start"`
	TimeEnd         Time   `json:"time_end"`
	UssBaseURL      string `json:"uss_base_url"`
}

// PutConstraintReferenceParameters is the body of endpoints 8 and 9.
type PutConstraintReferenceParameters struct {
	Extents    []Volume4D `json:"extents"`
	UssBaseURL string     `json:"uss_base_url"`
}

// QueryConstraintReferenceParameters is the body of endpoint 6.
type QueryConstraintReferenceParameters struct {
	AreaOfInterest *Volume4D `json:"area_of_interest,omitempty"`
}

// QueryConstraintReferencesResponse answers endpoint 6.
type QueryConstraintReferencesResponse struct {
	ConstraintReferences []ConstraintReference `json:"constraint_references"`
}

// GetConstraintReferenceResponse answers endpoint 7.
type GetConstraintReferenceResponse struct {
	ConstraintReference ConstraintReference `json:"constraint_reference"`
}

// ChangeConstraintReferenceResponse answers endpoints 8, 9 and 10.
type ChangeConstraintReferenceResponse struct {
	Subscribers         []SubscriberToNotify `json:"subscribers"`
	ConstraintReference ConstraintReference  `json:"constraint_reference"`
}

// --- Subscriptions ---

// Subscription is utm.yaml Subscription as returned by the DSS: all members
// present, booleans always emitted, dependents always an array (spec §5.3).
type Subscription struct {
	ID                          string   `json:"id"`
	Version                     string   `json:"version"`
	NotificationIndex           int32    `json:"notification_index"`
	TimeStart                   Time     `json:"time_start"`
	TimeEnd                     Time     `json:"time_end"`
	UssBaseURL                  string   `json:"uss_base_url"`
	NotifyForOperationalIntents bool     `json:"notify_for_operational_intents"`
	NotifyForConstraints        bool     `json:"notify_for_constraints"`
	ImplicitSubscription        bool     `json:"implicit_subscription"`
	DependentOperationalIntents []string `json:"dependent_operational_intents"`
}

// PutSubscriptionParameters is the body of endpoints 13 and 14; extents is
// ONE Volume4D here (unlike OIR/CR PUTs).
type PutSubscriptionParameters struct {
	Extents                     *Volume4D `json:"extents,omitempty"`
	UssBaseURL                  string    `json:"uss_base_url"`
	NotifyForOperationalIntents bool      `json:"notify_for_operational_intents"`
	NotifyForConstraints        bool      `json:"notify_for_constraints"`
}

// QuerySubscriptionParameters is the body of endpoint 11.
type QuerySubscriptionParameters struct {
	AreaOfInterest *Volume4D `json:"area_of_interest,omitempty"`
}

// QuerySubscriptionsResponse answers endpoint 11.
type QuerySubscriptionsResponse struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// GetSubscriptionResponse answers endpoint 12.
type GetSubscriptionResponse struct {
	Subscription Subscription `json:"subscription"`
}

// PutSubscriptionResponse answers endpoints 13 and 14. The two reference
// lists are pointers so that a list is absent (not null) when the matching
// notify flag is off and present, possibly as [], when it is on (spec §6.3 F).
type PutSubscriptionResponse struct {
	Subscription                Subscription                  `json:"subscription"`
	OperationalIntentReferences *[]OperationalIntentReference `json:"operational_intent_references,omitempty"`
	ConstraintReferences        *[]ConstraintReference        `json:"constraint_references,omitempty"`
}

// DeleteSubscriptionResponse answers endpoint 15.
type DeleteSubscriptionResponse struct {
	Subscription Subscription `json:"subscription"`
}

// --- USS availability ---

// UssAvailabilityStatus is utm.yaml UssAvailabilityStatus.
type UssAvailabilityStatus struct {
	USS          string `json:"uss"`
	Availability string `json:"availability"`
}

// SetUssAvailabilityStatusParameters is the body of endpoint 18. Both
// members are required by utm.yaml; the spec lets old_version be omitted
// (it then compares as "", §6.4), so only Availability is a pointer:
// absent or null is a missing availability, "" is Unknown (§5.4).
type SetUssAvailabilityStatusParameters struct {
	OldVersion   string  `json:"old_version"`
	Availability *string `json:"availability"`
}

// UssAvailabilityStatusResponse answers endpoints 17 and 18.
type UssAvailabilityStatusResponse struct {
	Status  UssAvailabilityStatus `json:"status"`
	Version string                `json:"version"`
}

// --- Reports ---

// ExchangeRecord is utm.yaml ExchangeRecord. It is echoed back as submitted
// (spec §6.5), so optional members stay optional on output.
type ExchangeRecord struct {
	URL          string   `json:"url"`
	Method       string   `json:"method"`
	Headers      []string `json:"headers,omitempty"`
	RecorderRole string   `json:"recorder_role"`
	RequestTime  *Time    `json:"request_time,omitempty"`
	RequestBody  string   `json:"request_body,omitempty"`
	ResponseTime *Time    `json:"response_time,omitempty"`
	ResponseBody string   `json:"response_body,omitempty"`
	ResponseCode int32    `json:"response_code,omitempty"`
	Problem      string   `json:"problem,omitempty"`
}

// ErrorReport is utm.yaml ErrorReport: the body of endpoint 16 and its
// response, once the handler has set ReportID.
type ErrorReport struct {
	ReportID string          `json:"report_id,omitempty"`
	Exchange *ExchangeRecord `json:"exchange,omitempty"`
}

// --- Errors ---

// AirspaceConflictResponse is the 409 body of an OIR PUT (spec §3.7, §7):
// the lists are omitted when empty.
type AirspaceConflictResponse struct {
	Message                   string                       `json:"message"`
	MissingOperationalIntents []OperationalIntentReference `json:"missing_operational_intents,omitempty"`
	MissingConstraints        []ConstraintReference        `json:"missing_constraints,omitempty"`
}

// ErrorResponse is the body of every 4xx response (spec §3.7).
type ErrorResponse struct {
	Message string `json:"message"`
}

// InternalErrorResponse is the body of a 500 response; its key differs from
// ErrorResponse's (spec §3.7).
type InternalErrorResponse struct {
	ErrorMessage string `json:"error_message"`
}
