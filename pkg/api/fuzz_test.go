package api

import (
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every decoder of untrusted request bodies. Contract:
// never panic; every error is a *models.Error with CodeBadRequest or
// CodeAreaTooLarge; every success satisfies the operation's invariants.

func oirSeeds(f *testing.F) {
	p := baseOIR()
	f.Add(mustJSON(f, p))
	p.State = "Activated"
	p.NewSubscription = &ImplicitSubscriptionParameters{UssBaseURL: "https://n", NotifyForConstraints: true}
	p.Extents = append(p.Extents, Volume4D{Volume: &Volume3D{OutlineCircle: &Circle{Center: &LatLngPoint{46.9, 7.4}, Radius: &Radius{Value: 300}},
		AltitudeLower: alt(0), AltitudeUpper: alt(50)}, TimeStart: tm(testNow), TimeEnd: tm(testNow.Add(time.Minute))})
	p.RequestedOVNSuffix = ptr(uuidV7(testNow))
	f.Add(mustJSON(f, p))
	f.Add([]byte(`{"extents":{},"state":"Accepted"}`))
	f.Add([]byte(`{"extents":[{"volume":{"outline_polygon":{"vertices":[{"lat":0,"lng":0},{"lat":0,"lng":0},{"lat":1,"lng":1}]}}}]}`))
	f.Add([]byte(`null`))
}

func FuzzParsePutOperationalIntent(f *testing.F) {
	oirSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, create := range []bool{true, false} {
			op, err := ParsePutOperationalIntent(testRI, testID, "ovn-0123456789abcdef", create, body)
			if err != nil {
				checkFuzzErr(t, err)
				continue
			}
			e := op.Extents
			if len(e.Cells) == 0 || e.StartTime == nil || e.EndTime == nil || e.AltitudeLower == nil || e.AltitudeUpper == nil {
				t.Fatalf("accepted OIR without complete extents: %+v", e)
			}
			if e.EndTime.Before(testNow) || e.StartTime.After(*e.EndTime) || *e.AltitudeLower > *e.AltitudeUpper {
				t.Fatalf("accepted OIR with bad bounds: %+v", e)
			}
			if op.USSBaseURL == "" || (op.SubscriptionID != "" && op.NewSubscription != nil) {
				t.Fatalf("accepted bad OIR: %+v", op)
			}
		}
	})
}

func FuzzParsePutConstraint(f *testing.F) {
	v := vol4(testNow, testNow.Add(time.Hour), 0, 10)
	f.Add(mustJSON(f, PutConstraintReferenceParameters{Extents: []Volume4D{v}, UssBaseURL: "https://c"}))
	f.Add([]byte(`{"extents":[],"uss_base_url":"https://c"}`))
	f.Add([]byte(`{"extents":[{"volume":{"outline_circle":{"center":{"lat":89.9,"lng":180},"radius":{"value":1e-9}}},"time_start":{"value":"2025-03-01T12:00:00Z"},"time_end":{"value":"2099-01-01T00:00:00+14:00"}}],"uss_base_url":"https://c"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := ParsePutConstraint(testRI, testID, "", true, body)
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		e := op.Extents
		if len(e.Cells) == 0 || e.StartTime == nil || e.EndTime == nil || e.EndTime.Before(testNow) || op.USSBaseURL == "" {
			t.Fatalf("accepted bad CR: %+v", op)
		}
	})
}

func FuzzParsePutSubscription(f *testing.F) {
	f.Add([]byte(`{"extents":{"volume":{"outline_circle":{"center":{"lat":46.9,"lng":7.4},"radius":{"value":1000,"units":"M"}}}},"uss_base_url":"https://s","notify_for_constraints":true}`))
	f.Add([]byte(`{"extents":{"volume":{"outline_polygon":{"vertices":[{"lat":46,"lng":7},{"lat":46,"lng":7.1},{"lat":46.1,"lng":7.1}]},"altitude_lower":{"value":1,"reference":"W84","units":"M"}},"time_start":{"value":"2025-03-01T12:00:00.5Z","format":"RFC3339"}},"uss_base_url":"https://s","notify_for_operational_intents":true}`))
	f.Add([]byte(`{"extents":[],"uss_base_url":"https://s"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := ParsePutSubscription(testRI, testID, "v1", false, body)
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if len(op.Extents.Cells) == 0 || op.USSBaseURL == "" || !(op.NotifyForOperationalIntents || op.NotifyForConstraints) {
			t.Fatalf("accepted bad subscription: %+v", op)
		}
	})
}

func FuzzParseQueryOperationalIntents(f *testing.F) {
	f.Add([]byte(`{"area_of_interest":{"volume":{"outline_circle":{"center":{"lat":0,"lng":0},"radius":{"value":10}}}}}`))
	f.Add([]byte(`{"area_of_interest":{"volume":{"outline_polygon":{"vertices":[{"lat":-90,"lng":-180},{"lat":-90,"lng":180},{"lat":-89.99,"lng":0}]}},"time_start":{"value":"2025-03-01T12:00:00Z"},"time_end":{"value":"2025-03-01T12:00:00Z"}}}`))
	f.Add([]byte(`{"area_of_interest":[]}`))
	f.Add([]byte(strings.Repeat("[", 100)))
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := ParseQueryOperationalIntents(testRI, body)
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		a := op.Area
		if len(a.Cells) == 0 {
			t.Fatalf("query without cells: %+v", a)
		}
		if a.StartTime != nil && a.EndTime != nil && a.StartTime.After(*a.EndTime) {
			t.Fatalf("query with start after end: %+v", a)
		}
	})
}
