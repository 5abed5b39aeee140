package api

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/geo"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

func baseOIR() PutOperationalIntentReferenceParameters {
	return PutOperationalIntentReferenceParameters{
		Extents:    []Volume4D{vol4(testNow.Add(time.Hour), testNow.Add(2*time.Hour), 100, 200)},
		State:      "Accepted",
		UssBaseURL: "https://uss1.example.com/utm",
	}
}

func noop(*PutOperationalIntentReferenceParameters) {}

func TestParsePutOperationalIntentErrors(t *testing.T) {
	validBody := string(mustJSON(t, baseOIR()))
	cases := []struct {
		name   string
		body   string // used when mutate is nil
		mutate func(*PutOperationalIntentReferenceParameters)
		id     string // default testID
		ovn    string
		create bool
		ri     *RequestInfo
		code   models.Code
		msg    string
	}{
		{name: "empty body", body: "", create: true, msg: "missing request body"},
		{name: "blank body", body: " \n\t", create: true, msg: "missing request body"},
		{name: "malformed", body: `{"state":`, create: true, msg: "malformed JSON"},
		{name: "trailing garbage", body: validBody + ` x`, create: true, msg: "malformed JSON"},
		{name: "two values", body: validBody + validBody, create: true, msg: "malformed JSON"},
		{name: "extents as object", body: strings.Replace(validBody, `"extents":[`, `"extents":{"a":[`, 1) + "}", create: true, msg: "wrong JSON type for extents"},
		{name: "extents object", body: `{"extents":{},"state":"Accepted","uss_base_url":"https://a"}`, create: true, msg: "wrong JSON type for extents"},
		{name: "state number", body: `{"state":3}`, create: true, msg: "wrong JSON type for state"},
		{name: "body is array", body: `[]`, create: true, msg: "request body"},
		{name: "bad id first", body: `{}`, id: "nope", create: true, msg: "entityid"},
		{name: "empty id", mutate: noop, id: "-", create: true, msg: "missing entityid"},
		{name: "v1 uuid id", mutate: noop, id: "3f2a4c1e-8b7d-1e3a-9c1b-2d4e6f8a0b1c", create: true, msg: "version 4"},
		{name: "update without ovn", mutate: noop, ovn: "", create: false, msg: "missing ovn"},
		{name: "missing url", mutate: func(p *PutOperationalIntentReferenceParameters) { p.UssBaseURL = "" }, create: true, msg: "missing uss_base_url"},
		{name: "bad subscription id", mutate: func(p *PutOperationalIntentReferenceParameters) { p.SubscriptionID = "xyz" }, create: true, msg: "subscription_id"},
		{name: "new sub without url", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.NewSubscription = &ImplicitSubscriptionParameters{}
		}, create: true, msg: "missing new_subscription.uss_base_url"},
		{name: "both subscriptions", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.SubscriptionID = testSubID
			p.NewSubscription = &ImplicitSubscriptionParameters{UssBaseURL: "https://a"}
		}, create: true, msg: "mutually exclusive"},
		{name: "http url", mutate: func(p *PutOperationalIntentReferenceParameters) { p.UssBaseURL = "http://uss1" }, create: true, msg: "must use TLS"},
		{name: "ftp url", mutate: func(p *PutOperationalIntentReferenceParameters) { p.UssBaseURL = "ftp://uss1" }, create: true, msg: "must be an https URL"},
		{name: "no scheme", mutate: func(p *PutOperationalIntentReferenceParameters) { p.UssBaseURL = "uss1.example.com" }, create: true, msg: "must be an https URL"},
		{name: "unparsable url", mutate: func(p *PutOperationalIntentReferenceParameters) { p.UssBaseURL = "https://a b\x7f" }, create: true, msg: "not a valid URL"},
		{name: "http new sub url", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.NewSubscription = &ImplicitSubscriptionParameters{UssBaseURL: "http://a"}
		}, create: true, msg: "new_subscription.uss_base_url"},
		{name: "invalid state", mutate: func(p *PutOperationalIntentReferenceParameters) { p.State = "Ended" }, create: true, msg: "invalid state"},
		{name: "empty state", mutate: func(p *PutOperationalIntentReferenceParameters) { p.State = "" }, create: true, msg: "invalid state"},
		{name: "lowercase state", mutate: func(p *PutOperationalIntentReferenceParameters) { p.State = "accepted" }, create: true, msg: "invalid state"},
		{name: "missing extents", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents = nil }, create: true, msg: "missing extents"},
		{name: "empty extents", body: `{"extents":[],"state":"Accepted","uss_base_url":"https://a"}`, create: true, msg: "extents is empty"},
		{name: "missing volume", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume = nil }, create: true, msg: "extents[0]: missing volume"},
		{name: "bad time", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].TimeStart.Value = "2025-03-01 13:00:00" }, create: true, msg: "extents[0].time_start"},
		{name: "empty time", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].TimeEnd.Value = "" }, create: true, msg: "extents[0].time_end"},
		{name: "start after end", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].TimeStart, p.Extents[0].TimeEnd = p.Extents[0].TimeEnd, p.Extents[0].TimeStart
		}, create: true, msg: "is after time_end"},
		{name: "altitude units", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume.AltitudeLower.Units = "FT" }, create: true, msg: "altitude_lower.units"},
		{name: "altitude units case", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume.AltitudeUpper.Units = "m" }, create: true, msg: "altitude_upper.units"},
		{name: "altitude reference", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.AltitudeUpper.Reference = "EGM96"
		}, create: true, msg: "altitude_upper.reference"},
		{name: "altitude overflow", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume.AltitudeUpper.Value = 1e300 }, create: true, msg: "out of range"},
		{name: "lower above upper", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume.AltitudeLower.Value = 300 }, create: true, msg: "is above altitude_upper"},
		{name: "both outlines", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlineCircle = &Circle{Center: &LatLngPoint{46, 7}, Radius: &Radius{Value: 10}}
		}, create: true, msg: "both outline_circle and outline_polygon"},
		{name: "no outline", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume.OutlinePolygon = nil }, create: true, msg: "missing outline"},
		{name: "circle without center", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = nil
			p.Extents[0].Volume.OutlineCircle = &Circle{Radius: &Radius{Value: 10, Units: "M"}}
		}, create: true, msg: "missing center"},
		{name: "circle without radius", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = nil
			p.Extents[0].Volume.OutlineCircle = &Circle{Center: &LatLngPoint{46, 7}}
		}, create: true, msg: "missing radius"},
		{name: "circle zero radius", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = nil
			p.Extents[0].Volume.OutlineCircle = &Circle{Center: &LatLngPoint{46, 7}, Radius: &Radius{Value: 0}}
		}, create: true, msg: "radius must be > 0"},
		{name: "circle negative radius", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = nil
			p.Extents[0].Volume.OutlineCircle = &Circle{Center: &LatLngPoint{46, 7}, Radius: &Radius{Value: -5}}
		}, create: true, msg: "radius must be > 0"},
		{name: "circle latitude", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = nil
			p.Extents[0].Volume.OutlineCircle = &Circle{Center: &LatLngPoint{91, 7}, Radius: &Radius{Value: 5}}
		}, create: true, msg: "outline_circle.center: latitude"},
		{name: "vertex longitude", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon.Vertices[2].Lng = -180.5
		}, create: true, msg: "outline_polygon.vertices[2]: longitude"},
		{name: "union lacks start", mutate: func(p *PutOperationalIntentReferenceParameters) {
			v := vol4(testNow, testNow.Add(time.Hour), 0, 10)
			v.TimeStart = nil
			p.Extents = append(p.Extents, v)
		}, create: true, msg: "time_start is required"},
		{name: "union lacks end", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].TimeEnd = nil }, create: true, msg: "time_end is required"},
		{name: "union lacks lower", mutate: func(p *PutOperationalIntentReferenceParameters) { p.Extents[0].Volume.AltitudeLower = nil }, create: true, msg: "altitude_lower is required"},
		{name: "union lacks upper", mutate: func(p *PutOperationalIntentReferenceParameters) {
			v := vol4(testNow, testNow.Add(time.Hour), 0, 10)
			v.Volume.AltitudeUpper = nil
			p.Extents = append(p.Extents, v)
		}, create: true, msg: "altitude_upper is required"},
		{name: "end in past", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0] = vol4(testNow.Add(-2*time.Hour), testNow.Add(-time.Nanosecond), 0, 10)
		}, create: true, msg: "in the past"},
		{name: "two vertices", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon.Vertices = p.Extents[0].Volume.OutlinePolygon.Vertices[:2]
		}, create: true, msg: "extents[0]: polygon has 2 vertices"},
		{name: "area too large", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents = append(p.Extents, vol4(testNow, testNow.Add(time.Hour), 0, 10))
			p.Extents[1].Volume.OutlinePolygon = square(40, 0, 2)
		}, create: true, code: models.CodeAreaTooLarge, msg: "extents[1]"},
		{name: "create activated", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.State = "Activated"
			p.SubscriptionID = testSubID
		}, create: true, msg: "created in state Accepted"},
		{name: "suffix not uuid", mutate: func(p *PutOperationalIntentReferenceParameters) { p.RequestedOVNSuffix = ptr("abc") }, create: true, msg: "requested_ovn_suffix"},
		{name: "suffix v4", mutate: func(p *PutOperationalIntentReferenceParameters) { p.RequestedOVNSuffix = ptr(testSubID) }, create: true, msg: "version 7"},
		{name: "suffix variant", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.RequestedOVNSuffix = ptr(strings.Replace(uuidV7(testNow), "-9def-", "-7def-", 1))
		}, create: true, msg: "variant"},
		{name: "suffix too old", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.RequestedOVNSuffix = ptr(uuidV7(testNow.Add(-5*time.Minute - time.Second)))
		}, create: true, msg: "from server time"},
		{name: "suffix too new", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.RequestedOVNSuffix = ptr(uuidV7(testNow.Add(5*time.Minute + time.Second)))
		}, create: true, msg: "from server time"},
		{name: "activated without subscription", mutate: func(p *PutOperationalIntentReferenceParameters) { p.State = "Activated" }, ovn: "some-ovn-value-1234", msg: "requires subscription_id or new_subscription"},
		{name: "contingent without subscription", mutate: func(p *PutOperationalIntentReferenceParameters) { p.State = "Contingent" }, ovn: "some-ovn-value-1234", msg: "requires subscription_id"},
		// Order: the first failing check decides.
		{name: "order: url before state", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.UssBaseURL = ""
			p.State = "Ended"
		}, create: true, msg: "missing uss_base_url"},
		{name: "order: state before extents", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.State = "Ended"
			p.Extents = nil
		}, create: true, msg: "invalid state"},
		{name: "order: past before area", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.Extents[0] = vol4(testNow.Add(-2*time.Hour), testNow.Add(-time.Hour), 0, 10)
			p.Extents[0].Volume.OutlinePolygon = square(40, 0, 2)
		}, create: true, msg: "in the past"},
		{name: "order: area before create state", mutate: func(p *PutOperationalIntentReferenceParameters) {
			p.State = "Activated"
			p.Extents[0].Volume.OutlinePolygon = square(40, 0, 2)
		}, create: true, code: models.CodeAreaTooLarge, msg: "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			if c.mutate != nil {
				p := baseOIR()
				c.mutate(&p)
				body = mustJSON(t, p)
			}
			id := c.id
			switch id {
			case "":
				id = testID
			case "-":
				id = ""
			}
			ri := testRI
			if c.ri != nil {
				ri = *c.ri
			}
			code := c.code
			if code == models.CodeInternal {
				code = models.CodeBadRequest
			}
			op, err := ParsePutOperationalIntent(ri, id, c.ovn, c.create, body)
			if op != nil {
				t.Fatalf("op = %+v, want nil", op)
			}
			wantErr(t, err, code, c.msg)
		})
	}
}

func TestParsePutOperationalIntentSuccess(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 30, 0, 123456789, time.FixedZone("CET", 3600))
	p := baseOIR()
	p.Extents = []Volume4D{
		vol4(start, start.Add(time.Hour), 100.5, 200),
		vol4(start.Add(-time.Hour), start.Add(30*time.Minute), 50, 150),
		{Volume: &Volume3D{OutlineCircle: &Circle{Center: &LatLngPoint{47.1, 7.6}, Radius: &Radius{Value: 300, Units: "M"}},
			AltitudeLower: alt(120), AltitudeUpper: alt(250.25)}, TimeStart: tm(start), TimeEnd: tm(start.Add(3*time.Hour + 7))},
	}
	// The past volume 2 is fine: only the union end is checked (§3.4).
	p.Extents[1].TimeStart = tm(testNow.Add(-24 * time.Hour))
	p.State = "Activated"
	p.Key = []string{"ovn-a-0123456789", "ovn-b-0123456789"}
	p.SubscriptionID = strings.ToUpper(testSubID)
	p.RequestedOVNSuffix = ptr(strings.ToUpper(uuidV7(testNow.Add(4 * time.Minute))))
	body := mustJSON(t, p)

	op, err := ParsePutOperationalIntent(testRI, testID, "the-old-ovn-0123", false, body)
	if err != nil {
		t.Fatal(err)
	}
	wantStart, wantEnd := testNow.Add(-24*time.Hour), start.Add(3*time.Hour+7).UTC()
	if op.Caller != "uss1" || !op.Now.Equal(testNow) || op.ID != testIDLow || op.OVN != "the-old-ovn-0123" ||
		op.State != models.StateActivated || op.USSBaseURL != p.UssBaseURL || op.SubscriptionID != models.ID(testSubID) ||
		op.NewSubscription != nil || op.NewSubscriptionID != "" {
		t.Fatalf("op = %+v", op)
	}
	if !slices.Equal(op.Key, []models.OVN{"ovn-a-0123456789", "ovn-b-0123456789"}) {
		t.Errorf("Key = %v", op.Key)
	}
	if want := models.OVN(string(testIDLow) + "_" + uuidV7(testNow.Add(4*time.Minute))); op.RequestedOVN != want {
		t.Errorf("RequestedOVN = %q, want %q", op.RequestedOVN, want)
	}
	e := op.Extents
	if e.StartTime == nil || !e.StartTime.Equal(wantStart) || e.StartTime.Location() != time.UTC ||
		e.EndTime == nil || !e.EndTime.Equal(wantEnd) || e.EndTime.Nanosecond() != 123456796 {
		t.Errorf("union times = %v, %v; want %v, %v", e.StartTime, e.EndTime, wantStart, wantEnd)
	}
	if e.AltitudeLower == nil || *e.AltitudeLower != 50 || e.AltitudeUpper == nil || *e.AltitudeUpper != 250.25 {
		t.Errorf("union altitudes = %v, %v", e.AltitudeLower, e.AltitudeUpper)
	}
	sq, err := geo.CoverPolygon([]models.LatLng{{Lat: 46.97, Lng: 7.47}, {Lat: 46.97, Lng: 7.48}, {Lat: 46.98, Lng: 7.48}, {Lat: 46.98, Lng: 7.47}})
	if err != nil {
		t.Fatal(err)
	}
	circ, err := geo.CoverCircle(models.LatLng{Lat: 47.1, Lng: 7.6}, 300)
	if err != nil {
		t.Fatal(err)
	}
	if want := models.UnionCells(sq, circ); len(want) == 0 || !slices.Equal(e.Cells, want) {
		t.Errorf("cells = %v, want %v", e.Cells, want)
	}
	if !models.CellsContainAll(e.Cells, circ) || models.CellsContainAll(sq, circ) {
		t.Error("cells should contain both footprints, which are disjoint")
	}
}

func TestParsePutOperationalIntentVariants(t *testing.T) {
	// Create: path ovn is ignored; an empty subscription_id is absent;
	// new_subscription travels; http allowed by the flag.
	p := baseOIR()
	p.UssBaseURL = "http://uss1.local"
	p.NewSubscription = &ImplicitSubscriptionParameters{UssBaseURL: "http://uss1.local/n", NotifyForConstraints: true}
	body := mustJSON(t, p)
	if _, err := ParsePutOperationalIntent(testRI, testID, "", true, body); err == nil {
		t.Fatal("http accepted without AllowHTTPBaseURLs")
	}
	ri := testRI
	ri.AllowHTTPBaseURLs = true
	op, err := ParsePutOperationalIntent(ri, testID, "ignored", true, body)
	if err != nil {
		t.Fatal(err)
	}
	want := scd.NewSubscription{USSBaseURL: "http://uss1.local/n", NotifyForConstraints: true}
	if op.OVN != "" || op.NewSubscription == nil || *op.NewSubscription != want || op.SubscriptionID != "" ||
		op.RequestedOVN != "" || op.Key != nil || op.State != models.StateAccepted {
		t.Fatalf("op = %+v", op)
	}

	// Unknown fields, camelCase extras and an explicit empty subscription_id
	// are fine; Nonconforming with new_subscription passes step A.
	raw := strings.Replace(string(mustJSON(t, baseOIR())), `"state":"Accepted"`,
		`"state":"Nonconforming","subscription_id":"","new_subscription":{"uss_base_url":"https://n"},"old_version":3,"ussBaseUrl":"x"`, 1)
	op, err = ParsePutOperationalIntent(testRI, testID, "ovn-0123456789abcdef", false, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if op.State != models.StateNonconforming || op.NewSubscription == nil || op.SubscriptionID != "" {
		t.Fatalf("op = %+v", op)
	}

	// An end exactly at now is not in the past.
	p = baseOIR()
	p.Extents[0].TimeEnd = tm(testNow)
	p.Extents[0].TimeStart = tm(testNow)
	if _, err := ParsePutOperationalIntent(testRI, testID, "", true, mustJSON(t, p)); err != nil {
		t.Fatalf("end == now: %v", err)
	}
}

func TestParseDeleteAndGet(t *testing.T) {
	if op, err := ParseDeleteOperationalIntent(testRI, testID, "ovn1"); err != nil || op.ID != testIDLow || op.OVN != "ovn1" || op.Caller != "uss1" {
		t.Fatalf("delete OIR = %+v, %v", op, err)
	}
	_, err := ParseDeleteOperationalIntent(testRI, testID, "")
	wantErr(t, err, models.CodeBadRequest, "missing ovn")
	_, err = ParseDeleteOperationalIntent(testRI, "", "")
	wantErr(t, err, models.CodeBadRequest, "missing entityid")
	if op, err := ParseDeleteConstraint(testRI, testID, "ovn2"); err != nil || op.ID != testIDLow || op.OVN != "ovn2" || op.Caller != "uss1" {
		t.Fatalf("delete CR = %+v, %v", op, err)
	}
	_, err = ParseDeleteConstraint(testRI, testID, "")
	wantErr(t, err, models.CodeBadRequest, "missing ovn")
	_, err = ParseDeleteConstraint(testRI, "x", "o")
	wantErr(t, err, models.CodeBadRequest, "entityid")
	if op, err := ParseDeleteSubscription(testRI, testID, "v1"); err != nil || op.ID != testIDLow || op.Version != "v1" || op.Caller != "uss1" {
		t.Fatalf("delete sub = %+v, %v", op, err)
	}
	_, err = ParseDeleteSubscription(testRI, testID, "")
	wantErr(t, err, models.CodeBadRequest, "missing version")
	_, err = ParseDeleteSubscription(testRI, "x", "v")
	wantErr(t, err, models.CodeBadRequest, "subscriptionid")

	if op, err := ParseGetOperationalIntent(testRI, testID); err != nil || op.ID != testIDLow || op.Caller != "uss1" {
		t.Fatalf("get OIR = %+v, %v", op, err)
	}
	if op, err := ParseGetConstraint(testRI, testID); err != nil || op.ID != testIDLow || op.Caller != "uss1" {
		t.Fatalf("get CR = %+v, %v", op, err)
	}
	if op, err := ParseGetSubscription(testRI, testID); err != nil || op.ID != testIDLow || op.Caller != "uss1" {
		t.Fatalf("get sub = %+v, %v", op, err)
	}
	for _, bad := range []string{"", "3f2a4c1e8b7d4e3a9c1b2d4e6f8a0b1c", "3f2a4c1e-8b7d-4e3a-7c1b-2d4e6f8a0b1c"} {
		_, err := ParseGetOperationalIntent(testRI, bad)
		wantErr(t, err, models.CodeBadRequest, "entityid")
		_, err = ParseGetConstraint(testRI, bad)
		wantErr(t, err, models.CodeBadRequest, "entityid")
		_, err = ParseGetSubscription(testRI, bad)
		wantErr(t, err, models.CodeBadRequest, "subscriptionid")
	}
}
