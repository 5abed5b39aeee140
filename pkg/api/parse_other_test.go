package api

import (
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

func TestParsePutConstraint(t *testing.T) {
	base := func() PutConstraintReferenceParameters {
		v := vol4(testNow.Add(time.Hour), testNow.Add(2*time.Hour), 0, 0)
		v.Volume.AltitudeLower, v.Volume.AltitudeUpper = nil, nil // optional for CRs
		return PutConstraintReferenceParameters{Extents: []Volume4D{v}, UssBaseURL: "https://cm.example.com"}
	}
	cases := []struct {
		name   string
		body   string
		mutate func(*PutConstraintReferenceParameters)
		id     string
		ovn    string
		create bool
		code   models.Code
		msg    string
	}{
		{name: "empty body", create: true, msg: "missing request body"},
		{name: "extents object", body: `{"extents":{"volume":{}},"uss_base_url":"https://a"}`, create: true, msg: "wrong JSON type for extents"},
		{name: "bad id", mutate: func(*PutConstraintReferenceParameters) {}, id: "abc", create: true, msg: "entityid"},
		{name: "update without ovn", mutate: func(*PutConstraintReferenceParameters) {}, msg: "missing ovn"},
		{name: "missing url", mutate: func(p *PutConstraintReferenceParameters) { p.UssBaseURL = "" }, create: true, msg: "missing uss_base_url"},
		{name: "http url", mutate: func(p *PutConstraintReferenceParameters) { p.UssBaseURL = "http://x" }, create: true, msg: "must use TLS"},
		{name: "missing extents", mutate: func(p *PutConstraintReferenceParameters) { p.Extents = nil }, create: true, msg: "missing extents"},
		{name: "empty extents", mutate: func(p *PutConstraintReferenceParameters) { p.Extents = []Volume4D{} }, create: true, msg: "extents is empty"},
		{name: "lacks start", mutate: func(p *PutConstraintReferenceParameters) { p.Extents[0].TimeStart = nil }, create: true, msg: "time_start is required"},
		{name: "lacks end", mutate: func(p *PutConstraintReferenceParameters) { p.Extents[0].TimeEnd = nil }, create: true, msg: "time_end is required"},
		{name: "in the past", mutate: func(p *PutConstraintReferenceParameters) {
			p.Extents[0].TimeStart, p.Extents[0].TimeEnd = tm(testNow.Add(-time.Hour)), tm(testNow.Add(-time.Minute))
		}, create: true, msg: "in the past"},
		{name: "bow tie", mutate: func(p *PutConstraintReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = &Polygon{Vertices: []LatLngPoint{{46, 7}, {46.01, 7.01}, {46, 7.01}, {46.01, 7}}}
		}, create: true, msg: "extents[0]"},
		{name: "area too large", mutate: func(p *PutConstraintReferenceParameters) {
			p.Extents[0].Volume.OutlinePolygon = square(10, 10, 1)
		}, create: true, code: models.CodeAreaTooLarge, msg: "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			if c.mutate != nil {
				p := base()
				c.mutate(&p)
				body = mustJSON(t, p)
			}
			id := c.id
			if id == "" {
				id = testID
			}
			code := c.code
			if code == models.CodeInternal {
				code = models.CodeBadRequest
			}
			_, err := ParsePutConstraint(testRI, id, c.ovn, c.create, body)
			wantErr(t, err, code, c.msg)
		})
	}

	p := base()
	p.Extents = append(p.Extents, vol4(testNow.Add(-time.Hour), testNow.Add(time.Minute), 10, 20))
	op, err := ParsePutConstraint(testRI, testID, "cr-ovn-0123456789", false, mustJSON(t, p))
	if err != nil {
		t.Fatal(err)
	}
	e := op.Extents
	if op.Caller != "uss1" || !op.Now.Equal(testNow) || op.ID != testIDLow || op.OVN != "cr-ovn-0123456789" || op.USSBaseURL != p.UssBaseURL ||
		len(e.Cells) == 0 || !e.StartTime.Equal(testNow.Add(-time.Hour)) || !e.EndTime.Equal(testNow.Add(2*time.Hour)) ||
		e.AltitudeLower != nil || e.AltitudeUpper != nil {
		t.Fatalf("op = %+v, extents %+v", op, e)
	}
	if op, err := ParsePutConstraint(testRI, testID, "x", true, mustJSON(t, base())); err != nil || op.OVN != "" {
		t.Fatalf("create = %+v, %v", op, err)
	}
}

func TestParsePutSubscription(t *testing.T) {
	base := func() PutSubscriptionParameters {
		return PutSubscriptionParameters{
			Extents:                     &Volume4D{Volume: &Volume3D{OutlineCircle: &Circle{Center: &LatLngPoint{46.9, 7.4}, Radius: &Radius{Value: 1000, Units: "M"}}}},
			UssBaseURL:                  "https://uss1.example.com",
			NotifyForOperationalIntents: true,
		}
	}
	cases := []struct {
		name    string
		body    string
		mutate  func(*PutSubscriptionParameters)
		id      string
		version string
		create  bool
		ri      RequestInfo
		code    models.Code
		msg     string
	}{
		{name: "empty body", create: true, msg: "missing request body"},
		{name: "malformed", body: `{"extents":`, create: true, msg: "malformed"},
		{name: "extents array", body: `{"extents":[],"uss_base_url":"https://a","notify_for_constraints":true}`, create: true, msg: "wrong JSON type for extents"},
		{name: "flag as string", body: `{"notify_for_constraints":"yes"}`, create: true, msg: "notify_for_constraints"},
		{name: "bad id", mutate: func(*PutSubscriptionParameters) {}, id: "zz", create: true, msg: "subscriptionid"},
		{name: "update without version", mutate: func(*PutSubscriptionParameters) {}, msg: "missing version"},
		{name: "empty url", mutate: func(p *PutSubscriptionParameters) { p.UssBaseURL = "" }, create: true, msg: "missing uss_base_url"},
		{name: "empty url with http flag", mutate: func(p *PutSubscriptionParameters) { p.UssBaseURL = "" }, ri: RequestInfo{AllowHTTPBaseURLs: true}, create: true, msg: "missing uss_base_url"},
		{name: "http url", mutate: func(p *PutSubscriptionParameters) { p.UssBaseURL = "http://a" }, create: true, msg: "must use TLS"},
		{name: "missing extents", mutate: func(p *PutSubscriptionParameters) { p.Extents = nil }, create: true, msg: "missing extents"},
		{name: "missing volume", mutate: func(p *PutSubscriptionParameters) { p.Extents.Volume = nil }, create: true, msg: "missing volume"},
		{name: "start after end", mutate: func(p *PutSubscriptionParameters) {
			p.Extents.TimeStart, p.Extents.TimeEnd = tm(testNow.Add(time.Hour)), tm(testNow)
		}, create: true, msg: "is after time_end"},
		{name: "altitude units", mutate: func(p *PutSubscriptionParameters) {
			p.Extents.Volume.AltitudeLower = &Altitude{Value: 1, Reference: "W84", Units: "FT"}
		}, create: true, msg: "units"},
		{name: "lower above upper", mutate: func(p *PutSubscriptionParameters) {
			p.Extents.Volume.AltitudeLower, p.Extents.Volume.AltitudeUpper = alt(10), alt(5)
		}, create: true, msg: "is above"},
		{name: "no outline", mutate: func(p *PutSubscriptionParameters) { p.Extents.Volume.OutlineCircle = nil }, create: true, msg: "missing outline"},
		{name: "area too large", mutate: func(p *PutSubscriptionParameters) { p.Extents.Volume.OutlineCircle.Radius.Value = 100000 }, create: true, code: models.CodeAreaTooLarge, msg: "extents"},
		{name: "no flags", mutate: func(p *PutSubscriptionParameters) { p.NotifyForOperationalIntents = false }, create: true, msg: "at least one of"},
		{name: "order: outline before flags", mutate: func(p *PutSubscriptionParameters) {
			p.NotifyForOperationalIntents = false
			p.Extents.Volume.OutlineCircle = nil
		}, create: true, msg: "missing outline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			if c.mutate != nil {
				p := base()
				c.mutate(&p)
				body = mustJSON(t, p)
			}
			id := c.id
			if id == "" {
				id = testID
			}
			code := c.code
			if code == models.CodeInternal {
				code = models.CodeBadRequest
			}
			_, err := ParsePutSubscription(c.ri, id, c.version, c.create, body)
			wantErr(t, err, code, c.msg)
		})
	}

	// Times and altitudes are optional and stay absent; the op normalises.
	op, err := ParsePutSubscription(testRI, testID, "v-old", false, mustJSON(t, base()))
	if err != nil {
		t.Fatal(err)
	}
	if op.Caller != "uss1" || !op.Now.Equal(testNow) || op.ID != testIDLow || op.Version != "v-old" || op.USSBaseURL != "https://uss1.example.com" ||
		!op.NotifyForOperationalIntents || op.NotifyForConstraints || len(op.Extents.Cells) == 0 ||
		op.Extents.StartTime != nil || op.Extents.EndTime != nil || op.Extents.AltitudeLower != nil || op.Extents.AltitudeUpper != nil {
		t.Fatalf("op = %+v", op)
	}
	p := base()
	p.NotifyForOperationalIntents, p.NotifyForConstraints = false, true
	p.UssBaseURL = "http://local"
	p.Extents.TimeStart = tm(testNow.Add(time.Minute))
	p.Extents.Volume.AltitudeUpper = alt(120)
	ri := testRI
	ri.AllowHTTPBaseURLs = true
	op, err = ParsePutSubscription(ri, testID, "ignored", true, mustJSON(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if op.Version != "" || !op.NotifyForConstraints || op.NotifyForOperationalIntents || op.Extents.StartTime == nil ||
		!op.Extents.StartTime.Equal(testNow.Add(time.Minute)) || op.Extents.EndTime != nil || *op.Extents.AltitudeUpper != 120 {
		t.Fatalf("op = %+v", op)
	}
}

func TestParseQueries(t *testing.T) {
	aoi := func(v Volume4D) []byte {
		return mustJSON(t, QueryOperationalIntentReferenceParameters{AreaOfInterest: &v})
	}
	good := vol4(testNow, testNow, 10, 20) // equal times are fine for queries
	huge := good
	huge.Volume = &Volume3D{OutlinePolygon: square(0, 0, 1)}
	noOutline := good
	noOutline.Volume = &Volume3D{}
	bad := []struct {
		name string
		body []byte
		code models.Code
		msg  string
	}{
		{"empty", nil, models.CodeBadRequest, "missing request body"},
		{"no aoi", []byte(`{"other":1}`), models.CodeBadRequest, "missing area_of_interest"},
		{"null aoi", []byte(`{"area_of_interest":null}`), models.CodeBadRequest, "missing area_of_interest"},
		{"aoi array", []byte(`{"area_of_interest":[]}`), models.CodeBadRequest, "wrong JSON type for area_of_interest"},
		{"trailing", append(aoi(good), "}"...), models.CodeBadRequest, "malformed"},
		{"no outline", aoi(noOutline), models.CodeBadRequest, "area_of_interest: missing outline"},
		{"bad time", []byte(`{"area_of_interest":{"volume":{"outline_circle":{"center":{"lat":1,"lng":1},"radius":{"value":5}}},"time_end":{"value":"tomorrow"}}}`), models.CodeBadRequest, "area_of_interest.time_end"},
		{"too large", aoi(huge), models.CodeAreaTooLarge, "area_of_interest"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseQueryOperationalIntents(testRI, c.body)
			wantErr(t, err, c.code, c.msg)
			_, err = ParseQueryConstraints(testRI, c.body)
			wantErr(t, err, c.code, c.msg)
			_, err = ParseQuerySubscriptions(testRI, c.body)
			wantErr(t, err, c.code, c.msg) // AreaTooLarge kept: the handler makes it 413
		})
	}

	q, err := ParseQueryOperationalIntents(testRI, aoi(good))
	if err != nil {
		t.Fatal(err)
	}
	a := q.Area
	if q.Caller != "uss1" || len(a.Cells) == 0 || !a.StartTime.Equal(testNow) || !a.EndTime.Equal(testNow) || *a.AltitudeLower != 10 || *a.AltitudeUpper != 20 {
		t.Fatalf("query = %+v", q)
	}
	open := good
	open.TimeStart, open.TimeEnd, open.Volume.AltitudeLower = nil, nil, nil
	c, err := ParseQueryConstraints(testRI, aoi(open))
	if err != nil || c.Caller != "uss1" || c.Area.StartTime != nil || c.Area.EndTime != nil || c.Area.AltitudeLower != nil || *c.Area.AltitudeUpper != 20 {
		t.Fatalf("constraint query = %+v, %v", c, err)
	}
	s, err := ParseQuerySubscriptions(testRI, aoi(good))
	if err != nil || s.Caller != "uss1" || !s.Now.Equal(testNow) || len(s.Area.Cells) == 0 {
		t.Fatalf("subscription query = %+v, %v", s, err)
	}
}

func TestParseAvailabilityAndReport(t *testing.T) {
	if op, err := ParseGetUssAvailability(testRI, "uss2"); err != nil || op.USS != "uss2" {
		t.Fatalf("get = %+v, %v", op, err)
	}
	_, err := ParseGetUssAvailability(testRI, "")
	wantErr(t, err, models.CodeBadRequest, "missing uss_id")

	op, err := ParsePutUssAvailability(testRI, "uss2", []byte(`{"old_version":"v1","availability":"DOWN"}`))
	if err != nil || op.USS != "uss2" || op.OldVersion != "v1" || op.Availability != models.AvailabilityDown || !op.Now.Equal(testNow) {
		t.Fatalf("put = %+v, %v", op, err)
	}
	op, err = ParsePutUssAvailability(testRI, "uss2", []byte(`{"availability":""}`))
	if err != nil || op.Availability != models.AvailabilityUnknown || op.OldVersion != "" {
		t.Fatalf("put empty = %+v, %v", op, err)
	}
	_, err = ParsePutUssAvailability(testRI, "uss2", []byte(`{}`))
	wantErr(t, err, models.CodeBadRequest, "missing availability")
	_, err = ParsePutUssAvailability(testRI, "", []byte(`{`))
	wantErr(t, err, models.CodeBadRequest, "missing uss_id")
	_, err = ParsePutUssAvailability(testRI, "uss2", nil)
	wantErr(t, err, models.CodeBadRequest, "missing request body")
	_, err = ParsePutUssAvailability(testRI, "uss2", []byte(`{"availability":"Up"}`))
	wantErr(t, err, models.CodeBadRequest, "invalid availability")
	_, err = ParsePutUssAvailability(testRI, "uss2", []byte(`{"availability":1}`))
	wantErr(t, err, models.CodeBadRequest, "availability")

	r, err := ParseErrorReport([]byte(`{"report_id":"mine","exchange":{"url":"https://x/y","method":"GET","recorder_role":"Client",
		"request_time":{"value":"2025-01-01T00:00:00Z","format":"RFC3339"},"response_code":500,"extra":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportID != "" || r.Exchange.URL != "https://x/y" || r.Exchange.ResponseCode != 500 || r.Exchange.RequestTime.Value != "2025-01-01T00:00:00Z" {
		t.Fatalf("report = %+v", r)
	}
	r.ReportID = "4e5b0a9c-1d2e-4f3a-8b7c-6d5e4f3a2b1c"
	got := string(mustJSON(t, r))
	want := `{"report_id":"4e5b0a9c-1d2e-4f3a-8b7c-6d5e4f3a2b1c","exchange":{"url":"https://x/y","method":"GET","recorder_role":"Client","request_time":{"value":"2025-01-01T00:00:00Z","format":"RFC3339"},"response_code":500}}`
	if got != want {
		t.Errorf("report JSON =\n%s\nwant\n%s", got, want)
	}
	for body, msg := range map[string]string{"": "missing request body", "{}": "missing exchange", `{"exchange":[]}`: "wrong JSON type for exchange", `{"exchange":{}} {}`: "malformed"} {
		_, err := ParseErrorReport([]byte(body))
		wantErr(t, err, models.CodeBadRequest, msg)
	}
}

func TestParseOVNSuffix(t *testing.T) {
	s := uuidV7(testNow.Add(-5 * time.Minute))
	got, err := parseOVNSuffix(strings.ToUpper(s), testNow)
	if err != nil || got != s {
		t.Fatalf("parseOVNSuffix = %q, %v; want %q (edge of the window, lowercased)", got, err, s)
	}
	for _, bad := range []string{"", s[:35] + "g", strings.Replace(s, "-", "_", 1), s + "0"} {
		if _, err := parseOVNSuffix(bad, testNow); models.CodeOf(err) != models.CodeBadRequest {
			t.Errorf("parseOVNSuffix(%q) = %v, want BadRequest", bad, err)
		}
	}
}
