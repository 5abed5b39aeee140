package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/scd"
)

// benchOIRBody is a realistic ~2 KB OIR PUT: four volumes with polygon
// outlines, a key and a subscription.
func benchOIRBody(b *testing.B) []byte {
	p := baseOIR()
	p.Extents = nil
	for i := range 4 {
		v := vol4(testNow.Add(time.Duration(i)*time.Minute), testNow.Add(time.Hour+time.Duration(i)*time.Minute), 100, 200)
		v.Volume.OutlinePolygon = square(46.97+float64(i)*0.002, 7.47, 0.004)
		v.Volume.OutlinePolygon.Vertices = append(v.Volume.OutlinePolygon.Vertices[:2],
			LatLngPoint{46.975 + float64(i)*0.002, 7.476}, v.Volume.OutlinePolygon.Vertices[2], v.Volume.OutlinePolygon.Vertices[3])
		p.Extents = append(p.Extents, v)
	}
	p.Key = []string{"OaG2RcvUKI6ctTQhBv0xWGMcGeSZ9gIEPDqOVyaiqlE_", "zWgl2ohMlOnnP61Ro1zkOB.RVUI6sdwcXYtDmJDr1dE_", "Hs6wUfzYUUvMufaTZ0LXSMd0drAuqCF5BZ8WyE0GpRg_"}
	p.SubscriptionID = testSubID
	p.State = "Activated"
	body, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecodePutOperationalIntent measures JSON decoding alone.
func BenchmarkDecodePutOperationalIntent(b *testing.B) {
	body := benchOIRBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var p PutOperationalIntentReferenceParameters
		if err := decodeBody(body, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePutOperationalIntent is the whole step A, including the
// S2 coverings of pkg/geo.
func BenchmarkParsePutOperationalIntent(b *testing.B) {
	body := benchOIRBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePutOperationalIntent(testRI, testID, "ovn-0123456789abcdef", false, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderOperationalIntent covers the response side.
func BenchmarkRenderOperationalIntent(b *testing.B) {
	o := testOIR()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(RenderOperationalIntent("uss2", scd.OperationalIntentView{OIR: o})); err != nil {
			b.Fatal(err)
		}
	}
}
