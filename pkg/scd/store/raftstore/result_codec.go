package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/raftdss/dss/pkg/models"
	generic "github.com/raftdss/dss/pkg/raftstore"
	"github.com/raftdss/dss/pkg/scd"
)

// Result codec: the outcome of an applied operation (what Execute returned
// and its error), which the dedupe table of pkg/raftstore carries in every
// snapshot (generic.ResultCodec). A node that fell behind and received the
// entry of its own proposal only inside a leader's snapshot answers the
// proposer with the decoded outcome instead of "unknown outcome" (503).
//
// The format uses the primitives of the operation codec (codec.go) and is
// canonical in the same way: DecodeResult accepts exactly what EncodeResult
// writes, so re-encoding a decoded outcome gives the same bytes
// (FuzzResultCodec checks it). The bytes come from a peer's snapshot, so the
// decoder bounds every allocation by the input's size and never panics.
//
//	outcome  = version (1) | error | result
//	error    = 0                      no error
//	         | 1 coded                a *models.Error
//	         | 2 string coded         an error wrapping a *models.Error: its text
//	         | 3 string               an error wrapping generic.ErrBadOperation: its text
//	         | 4 string               any other error: its text
//	coded    = uvarint code | string message | uvarint count + optional OIR each |
//	           uvarint count + optional constraint each |
//	           uvarint count + (string USS, string availability) each, USS strictly increasing |
//	           optional string cause text
//	result   = 0 nil | kind (resultKind) followed by the value
//
// A decoded error keeps what callers look at: models.CodeOf, the
// *models.Error (errors.As) with its message and missing lists, errors.Is
// generic.ErrBadOperation, and the text of the error and of its cause (the
// cause itself, kept for logs only, comes back as a plain error with its
// text).
//
// What is not encoded makes EncodeResult fail, and the dedupe table then
// keeps that outcome as lost (the proposer gets 503, as without a codec): a
// result type this file does not know, a nil *models.Error, and an outcome
// whose encoding exceeds maxResultBytes.

// resultVersion is the first byte of every encoded outcome. A decoder meeting
// another version refuses the outcome (the table keeps it as lost), so a
// newer build can change the format without older ones misreading it.
const resultVersion = 1

// maxResultBytes bounds one encoded outcome. The dedupe table keeps only the
// outcomes of proposals their proposers may still wait for (see
// pkg/raftstore dedupeTable), but one result can be large: a subscription
// PUT returns every OIR and constraint in its area. Such an outcome is not
// carried (its proposer, in the rare case that it learns it from a snapshot,
// gets 503) rather than growing every snapshot by it.
const maxResultBytes = 1 << 20

// Error kinds.
const (
	errNone = iota
	errCoded
	errWrappedCoded
	errBadOperation
	errOther
)

// resultKind is the tag of a result value, one per result type an SCD
// operation returns (pkg/scd/operations.go lists them). Never renumber.
type resultKind byte

const (
	resultNil                    resultKind = iota
	resultOperationalIntent                 // scd.OperationalIntentResult: PUT/DELETE OIR
	resultConstraint                        // scd.ConstraintResult: PUT/DELETE constraint
	resultPutSubscription                   // scd.PutSubscriptionResult
	resultSubscriptionView                  // scd.SubscriptionView: DELETE/GET subscription
	resultAvailability                      // scd.AvailabilityView: PUT/GET availability
	resultOperationalIntentView             // scd.OperationalIntentView: GET OIR
	resultOperationalIntentViews            // []scd.OperationalIntentView: query OIRs
	resultConstraintPtr                     // *models.Constraint: GET constraint
	resultConstraints                       // []*models.Constraint: query constraints
	resultSubscriptionViews                 // []scd.SubscriptionView: query subscriptions
	resultEviction                          // scd.EvictionResult: EvictExpired
	resultEvictionCounts                    // scd.EvictionCounts: PreviewEviction
	resultDSSInstances                      // []*models.DSSInstance: pool heartbeat and list (pkg/pool)
	resultKinds                             // the number of kinds
)

// maxCode is the highest models.Code the decoder accepts: a code added
// after it is refused until the codec is taught it (TestResultCodecErrors).
const maxCode = models.CodeQuotaExceeded

var (
	_ generic.ResultCodec = (*machine)(nil)

	errNilCodedError = errors.New("scd raftstore: nil *models.Error outcome")
)

// EncodeResult implements generic.ResultCodec.
func (m *machine) EncodeResult(result any, err error) ([]byte, error) {
	return encodeResult(result, err)
}

// DecodeResult implements generic.ResultCodec.
func (m *machine) DecodeResult(b []byte) (any, error, error) { return decodeResult(b) }

func encodeResult(result any, opErr error) ([]byte, error) {
	e := &encoder{b: []byte{resultVersion}}
	if err := e.opError(opErr); err != nil {
		return nil, err
	}
	if err := e.result(result); err != nil {
		return nil, err
	}
	if len(e.b) > maxResultBytes {
		return nil, fmt.Errorf("scd raftstore: outcome of %d bytes exceeds %d", len(e.b), maxResultBytes)
	}
	return e.b, nil
}

func decodeResult(b []byte) (result any, opErr error, err error) {
	if len(b) > maxResultBytes {
		return nil, nil, fmt.Errorf("scd raftstore: outcome of %d bytes exceeds %d", len(b), maxResultBytes)
	}
	d := &decoder{b: b}
	if v := d.take(1); v != nil && v[0] != resultVersion {
		return nil, nil, fmt.Errorf("scd raftstore: unknown outcome version %d", v[0])
	}
	opErr = d.opError()
	result = d.result()
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("scd raftstore: outcome: %w", d.err)
	}
	return result, opErr, nil
}

// wrappedCodedError is a decoded error that wrapped a *models.Error: its
// text, and the coded error for errors.As and models.CodeOf.
type wrappedCodedError struct {
	text  string
	coded *models.Error
}

func (e *wrappedCodedError) Error() string { return e.text }
func (e *wrappedCodedError) Unwrap() error { return e.coded }

// badOperationError is a decoded error that wrapped generic.ErrBadOperation.
type badOperationError struct{ text string }

func (e *badOperationError) Error() string { return e.text }
func (e *badOperationError) Unwrap() error { return generic.ErrBadOperation }

func (e *encoder) opError(err error) error {
	if err == nil {
		e.b = append(e.b, errNone)
		return nil
	}
	var coded *models.Error
	if errors.As(err, &coded) && coded == nil {
		return errNilCodedError
	}
	switch top, ok := err.(*models.Error); {
	case ok:
		e.b = append(e.b, errCoded)
		e.coded(top)
	case coded != nil:
		e.b = append(e.b, errWrappedCoded)
		e.str(err.Error())
		e.coded(coded)
	case errors.Is(err, generic.ErrBadOperation):
		e.b = append(e.b, errBadOperation)
		e.str(err.Error())
	default:
		e.b = append(e.b, errOther)
		e.str(err.Error())
	}
	return nil
}

func (d *decoder) opError() error {
	p := d.take(1)
	if p == nil {
		return nil
	}
	switch p[0] {
	case errNone:
		return nil
	case errCoded:
		return d.coded()
	case errWrappedCoded:
		text := d.str()
		coded := d.coded()
		if d.err != nil {
			return nil
		}
		return &wrappedCodedError{text: text, coded: coded}
	case errBadOperation:
		return &badOperationError{text: d.str()}
	case errOther:
		return errors.New(d.str())
	}
	d.fail("unknown error kind %d", p[0])
	return nil
}

func (e *encoder) coded(c *models.Error) {
	e.uvarint(uint64(c.Code))
	e.str(c.Message)
	e.uvarint(uint64(len(c.MissingOIRs)))
	for _, o := range c.MissingOIRs {
		e.optOIR(o)
	}
	e.uvarint(uint64(len(c.MissingCRs)))
	for _, cr := range c.MissingCRs {
		e.optConstraint(cr)
	}
	e.uvarint(uint64(len(c.Availabilities)))
	for _, uss := range slices.Sorted(maps.Keys(c.Availabilities)) {
		e.str(uss)
		e.str(string(c.Availabilities[uss]))
	}
	e.bool(c.Cause != nil)
	if c.Cause != nil {
		e.str(c.Cause.Error())
	}
}

func (d *decoder) coded() *models.Error {
	c := &models.Error{}
	code := d.uvarint()
	if d.err == nil && code > uint64(maxCode) {
		d.fail("unknown error code %d", code)
	}
	c.Code = models.Code(code)
	c.Message = d.str()
	if n := d.count(1); n > 0 {
		c.MissingOIRs = make([]*models.OperationalIntent, n)
		for i := range c.MissingOIRs {
			c.MissingOIRs[i] = d.optOIR()
		}
	}
	if n := d.count(1); n > 0 {
		c.MissingCRs = make([]*models.Constraint, n)
		for i := range c.MissingCRs {
			c.MissingCRs[i] = d.optConstraint()
		}
	}
	if n := d.count(2); n > 0 {
		c.Availabilities = make(map[string]models.Availability, n)
		prev := ""
		for i := range n {
			uss := d.str()
			if d.err == nil && i > 0 && uss <= prev {
				d.fail("availabilities not in strictly increasing USS order")
			}
			c.Availabilities[uss] = models.Availability(d.str())
			prev = uss
		}
	}
	if d.bool() {
		c.Cause = errors.New(d.str())
	}
	if d.err != nil {
		return nil
	}
	return c
}

func (e *encoder) result(v any) error {
	switch r := v.(type) {
	case nil:
		e.b = append(e.b, byte(resultNil))
	case scd.OperationalIntentResult:
		e.b = append(e.b, byte(resultOperationalIntent))
		e.oirView(r.OIR)
		e.subscribers(r.Subscribers)
	case scd.ConstraintResult:
		e.b = append(e.b, byte(resultConstraint))
		e.optConstraint(r.CR)
		e.subscribers(r.Subscribers)
	case scd.PutSubscriptionResult:
		e.b = append(e.b, byte(resultPutSubscription))
		e.subView(r.Sub)
		e.oirViews(r.OIRs)
		e.constraints(r.CRs)
	case scd.SubscriptionView:
		e.b = append(e.b, byte(resultSubscriptionView))
		e.subView(r)
	case scd.AvailabilityView:
		e.b = append(e.b, byte(resultAvailability))
		e.str(r.USS)
		e.str(string(r.Availability))
		e.str(r.Version)
	case scd.OperationalIntentView:
		e.b = append(e.b, byte(resultOperationalIntentView))
		e.oirView(r)
	case []scd.OperationalIntentView:
		e.b = append(e.b, byte(resultOperationalIntentViews))
		e.oirViews(r)
	case *models.Constraint:
		e.b = append(e.b, byte(resultConstraintPtr))
		e.optConstraint(r)
	case []*models.Constraint:
		e.b = append(e.b, byte(resultConstraints))
		e.constraints(r)
	case scd.EvictionResult:
		e.b = append(e.b, byte(resultEviction))
		e.evictionCounts(r.Evicted)
		e.bool(r.Full)
	case scd.EvictionCounts:
		e.b = append(e.b, byte(resultEvictionCounts))
		e.evictionCounts(r)
	case []*models.DSSInstance:
		e.b = append(e.b, byte(resultDSSInstances))
		e.uvarint(uint64(len(r)))
		for _, in := range r {
			e.bool(in != nil)
			if in == nil {
				continue
			}
			e.str(in.ID)
			e.str(in.PublicEndpoint)
			h := in.Heartbeat
			e.time(h.Timestamp)
			e.str(h.Reporter)
			e.str(h.Source)
			e.b = binary.AppendVarint(e.b, h.Index)
			e.time(h.NextExpectedBefore)
		}
	case []scd.SubscriptionView:
		e.b = append(e.b, byte(resultSubscriptionViews))
		e.uvarint(uint64(len(r)))
		for _, s := range r {
			e.subView(s)
		}
	default:
		return fmt.Errorf("scd raftstore: no result encoding for %T", v)
	}
	return nil
}

func (d *decoder) result() any {
	p := d.take(1)
	if p == nil {
		return nil
	}
	var v any
	switch resultKind(p[0]) {
	case resultNil:
		return nil
	case resultOperationalIntent:
		v = scd.OperationalIntentResult{OIR: d.oirView(), Subscribers: d.subscribers()}
	case resultConstraint:
		v = scd.ConstraintResult{CR: d.optConstraint(), Subscribers: d.subscribers()}
	case resultPutSubscription:
		v = scd.PutSubscriptionResult{Sub: d.subView(), OIRs: d.oirViews(), CRs: d.constraints()}
	case resultSubscriptionView:
		v = d.subView()
	case resultAvailability:
		v = scd.AvailabilityView{USS: d.str(), Availability: models.Availability(d.str()), Version: d.str()}
	case resultOperationalIntentView:
		v = d.oirView()
	case resultOperationalIntentViews:
		v = d.oirViews()
	case resultConstraintPtr:
		v = d.optConstraint()
	case resultConstraints:
		v = d.constraints()
	case resultSubscriptionViews:
		var l []scd.SubscriptionView
		if n := d.count(2); n > 0 {
			l = make([]scd.SubscriptionView, n)
			for i := range l {
				l[i] = d.subView()
			}
		}
		v = l
	case resultDSSInstances:
		var l []*models.DSSInstance
		if n := d.count(1); n > 0 {
			l = make([]*models.DSSInstance, n)
			for i := range l {
				if !d.bool() {
					continue
				}
				l[i] = &models.DSSInstance{ID: d.str(), PublicEndpoint: d.str(), Heartbeat: models.Heartbeat{
					Timestamp: d.time(), Reporter: d.str(), Source: d.str(), Index: d.varint(),
					NextExpectedBefore: d.time()}}
			}
		}
		v = l
	case resultEviction:
		v = scd.EvictionResult{Evicted: d.evictionCounts(), Full: d.bool()}
	case resultEvictionCounts:
		v = d.evictionCounts()
	default:
		d.fail("unknown result kind %d", p[0])
	}
	if d.err != nil {
		return nil
	}
	return v
}

func (e *encoder) evictionCounts(c scd.EvictionCounts) {
	for _, n := range []int{c.OperationalIntents, c.Constraints, c.Subscriptions, c.ImplicitReleased} {
		e.b = binary.AppendVarint(e.b, int64(n))
	}
}

func (d *decoder) evictionCounts() scd.EvictionCounts {
	return scd.EvictionCounts{OperationalIntents: int(d.varint()), Constraints: int(d.varint()),
		Subscriptions: int(d.varint()), ImplicitReleased: int(d.varint())}
}

func (e *encoder) int32(v int32) { e.b = binary.AppendVarint(e.b, int64(v)) }

func (d *decoder) int32() int32 {
	v := d.varint()
	if d.err == nil && (v < -1<<31 || v > 1<<31-1) {
		d.fail("%d out of int32 range", v)
		return 0
	}
	return int32(v)
}

func (e *encoder) f32(f float32) { e.b = binary.BigEndian.AppendUint32(e.b, math.Float32bits(f)) }

func (d *decoder) f32() float32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return math.Float32frombits(binary.BigEndian.Uint32(p))
}

func (e *encoder) cells(cells []models.CellID) {
	e.uvarint(uint64(len(cells)))
	for _, c := range cells {
		e.b = binary.AppendVarint(e.b, int64(c))
	}
}

func (d *decoder) cells() []models.CellID {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	cells := make([]models.CellID, n)
	for i := range cells {
		cells[i] = models.CellID(d.varint())
	}
	return cells
}

func (d *decoder) ids() []models.ID {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	ids := make([]models.ID, n)
	for i := range ids {
		ids[i] = models.ID(d.str())
	}
	return ids
}

func (e *encoder) optOIR(o *models.OperationalIntent) {
	e.bool(o != nil)
	if o == nil {
		return
	}
	e.str(string(o.ID))
	e.str(o.Manager)
	e.int32(o.Version)
	e.str(string(o.State))
	e.str(string(o.RequestedOVN))
	e.ovns(o.PastOVNs)
	e.str(o.USSBaseURL)
	e.str(string(o.SubscriptionID))
	e.time(o.StartTime)
	e.time(o.EndTime)
	e.f32(o.AltitudeLower)
	e.f32(o.AltitudeUpper)
	e.cells(o.Cells)
	e.time(o.UpdatedAt)
}

func (d *decoder) optOIR() *models.OperationalIntent {
	if !d.bool() {
		return nil
	}
	o := &models.OperationalIntent{
		ID:             models.ID(d.str()),
		Manager:        d.str(),
		Version:        d.int32(),
		State:          models.OperationalIntentState(d.str()),
		RequestedOVN:   models.OVN(d.str()),
		PastOVNs:       d.ovns(),
		USSBaseURL:     d.str(),
		SubscriptionID: models.ID(d.str()),
		StartTime:      d.time(),
		EndTime:        d.time(),
		AltitudeLower:  d.f32(),
		AltitudeUpper:  d.f32(),
		Cells:          d.cells(),
		UpdatedAt:      d.time(),
	}
	if d.err != nil {
		return nil
	}
	return o
}

func (e *encoder) optConstraint(c *models.Constraint) {
	e.bool(c != nil)
	if c == nil {
		return
	}
	e.str(string(c.ID))
	e.str(c.Manager)
	e.int32(c.Version)
	e.str(c.USSBaseURL)
	e.time(c.StartTime)
	e.time(c.EndTime)
	e.optF32(c.AltitudeLower)
	e.optF32(c.AltitudeUpper)
	e.cells(c.Cells)
	e.time(c.UpdatedAt)
}

func (d *decoder) optConstraint() *models.Constraint {
	if !d.bool() {
		return nil
	}
	c := &models.Constraint{
		ID:            models.ID(d.str()),
		Manager:       d.str(),
		Version:       d.int32(),
		USSBaseURL:    d.str(),
		StartTime:     d.time(),
		EndTime:       d.time(),
		AltitudeLower: d.optF32(),
		AltitudeUpper: d.optF32(),
		Cells:         d.cells(),
		UpdatedAt:     d.time(),
	}
	if d.err != nil {
		return nil
	}
	return c
}

func (e *encoder) constraints(l []*models.Constraint) {
	e.uvarint(uint64(len(l)))
	for _, c := range l {
		e.optConstraint(c)
	}
}

func (d *decoder) constraints() []*models.Constraint {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	l := make([]*models.Constraint, n)
	for i := range l {
		l[i] = d.optConstraint()
	}
	return l
}

func (e *encoder) optSubscription(s *models.Subscription) {
	e.bool(s != nil)
	if s == nil {
		return
	}
	e.str(string(s.ID))
	e.str(s.Manager)
	e.int32(s.NotificationIndex)
	e.str(s.USSBaseURL)
	e.bool(s.NotifyForOperationalIntents)
	e.bool(s.NotifyForConstraints)
	e.bool(s.Implicit)
	e.time(s.StartTime)
	e.time(s.EndTime)
	e.cells(s.Cells)
	e.time(s.UpdatedAt)
}

func (d *decoder) optSubscription() *models.Subscription {
	if !d.bool() {
		return nil
	}
	s := &models.Subscription{
		ID:                          models.ID(d.str()),
		Manager:                     d.str(),
		NotificationIndex:           d.int32(),
		USSBaseURL:                  d.str(),
		NotifyForOperationalIntents: d.bool(),
		NotifyForConstraints:        d.bool(),
		Implicit:                    d.bool(),
		StartTime:                   d.time(),
		EndTime:                     d.time(),
		Cells:                       d.cells(),
		UpdatedAt:                   d.time(),
	}
	if d.err != nil {
		return nil
	}
	return s
}

func (e *encoder) oirView(v scd.OperationalIntentView) {
	e.optOIR(v.OIR)
	e.str(string(v.Availability))
}

func (d *decoder) oirView() scd.OperationalIntentView {
	return scd.OperationalIntentView{OIR: d.optOIR(), Availability: models.Availability(d.str())}
}

func (e *encoder) oirViews(l []scd.OperationalIntentView) {
	e.uvarint(uint64(len(l)))
	for _, v := range l {
		e.oirView(v)
	}
}

func (d *decoder) oirViews() []scd.OperationalIntentView {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	l := make([]scd.OperationalIntentView, n)
	for i := range l {
		l[i] = d.oirView()
	}
	return l
}

func (e *encoder) subView(v scd.SubscriptionView) {
	e.optSubscription(v.Sub)
	e.uvarint(uint64(len(v.Dependents)))
	for _, id := range v.Dependents {
		e.str(string(id))
	}
}

func (d *decoder) subView() scd.SubscriptionView {
	return scd.SubscriptionView{Sub: d.optSubscription(), Dependents: d.ids()}
}

func (e *encoder) subscribers(l []scd.Subscriber) {
	e.uvarint(uint64(len(l)))
	for _, s := range l {
		e.str(s.USSBaseURL)
		e.uvarint(uint64(len(s.Subscriptions)))
		for _, st := range s.Subscriptions {
			e.str(string(st.ID))
			e.int32(st.NotificationIndex)
		}
	}
}

func (d *decoder) subscribers() []scd.Subscriber {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	l := make([]scd.Subscriber, n)
	for i := range l {
		l[i].USSBaseURL = d.str()
		if m := d.count(2); m > 0 {
			l[i].Subscriptions = make([]scd.SubscriptionState, m)
			for j := range l[i].Subscriptions {
				l[i].Subscriptions[j] = scd.SubscriptionState{ID: models.ID(d.str()), NotificationIndex: d.int32()}
			}
		}
	}
	return l
}
