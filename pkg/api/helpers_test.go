package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// Shared fixtures: a request time and small footprints near Bern.
var (
	testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testRI  = RequestInfo{Caller: "uss1", Now: testNow}

	testID    = "3F2A4C1E-8B7D-4E3A-9C1B-2D4E6F8A0B1C"
	testIDLow = models.ID("3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c")
	testSubID = "78ea3fe8-71c2-4f5c-9b44-9c02f5563c6f"
)

func square(lat, lng, d float64) *Polygon {
	return &Polygon{Vertices: []LatLngPoint{{lat, lng}, {lat, lng + d}, {lat + d, lng + d}, {lat + d, lng}}}
}

func tm(t time.Time) *Time { return &Time{Value: t.Format(time.RFC3339Nano), Format: "RFC3339"} }

func alt(v float64) *Altitude { return &Altitude{Value: v, Reference: "W84", Units: "M"} }

// vol4 is a complete Volume4D with a polygon outline.
func vol4(start, end time.Time, lower, upper float64) Volume4D {
	return Volume4D{
		Volume:    &Volume3D{OutlinePolygon: square(46.97, 7.47, 0.01), AltitudeLower: alt(lower), AltitudeUpper: alt(upper)},
		TimeStart: tm(start),
		TimeEnd:   tm(end),
	}
}

func ptr[T any](v T) *T { return &v }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uuidV7 builds a UUIDv7 string whose timestamp is at.
func uuidV7(at time.Time) string {
	ms := at.UnixMilli()
	return fmt.Sprintf("%08x-%04x-7abc-9def-0123456789ab", ms>>16, ms&0xffff)
}

// wantErr checks err is a models.Error with code and a message containing
// substr (the substring pins which check fired: first failing check wins).
func wantErr(t *testing.T, err error, code models.Code, substr string) {
	t.Helper()
	var me *models.Error
	if !errors.As(err, &me) {
		t.Fatalf("error = %v (%T), want *models.Error %v containing %q", err, err, code, substr)
	}
	if me.Code != code || !strings.Contains(me.Message, substr) {
		t.Fatalf("error = %v, want code %v containing %q", err, code, substr)
	}
}

// checkFuzzErr is the fuzz contract: errors are models.Error with a client
// code only.
func checkFuzzErr(t *testing.T, err error) {
	t.Helper()
	var me *models.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *models.Error", err, err)
	}
	if me.Code != models.CodeBadRequest && me.Code != models.CodeAreaTooLarge {
		t.Fatalf("error %v has code %v, want BadRequest or AreaTooLarge", err, me.Code)
	}
	if me.Message == "" {
		t.Fatal("error has an empty message")
	}
}
