package conformance

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// Black-box tests of the auxiliary API (/aux/v1, docs/spec/aux.md). On a
// cluster target consecutive requests land on different nodes, so a
// heartbeat PUT on one node is read back from another.

const (
	auxPrefix        = "/aux/v1"
	scopeISARead     = "dss.read.identification_service_areas"
	scopeISAWrite    = "dss.write.identification_service_areas"
	scopePoolRead    = "interuss.pool_status.read"
	scopeHBWrite     = "interuss.pool_status.heartbeat.write"
	heartbeatPath    = auxPrefix + "/pool/dss_instances/heartbeat"
	dssInstancesPath = auxPrefix + "/pool/dss_instances"
)

type heartbeatW struct {
	Timestamp                   string  `json:"timestamp"`
	Reporter                    string  `json:"reporter"`
	Source                      string  `json:"source"`
	Index                       *int64  `json:"index"`
	NextHeartbeatExpectedBefore *string `json:"next_heartbeat_expected_before"`
}

type dssInstanceW struct {
	ID                  string      `json:"id"`
	PublicEndpoint      string      `json:"public_endpoint"`
	MostRecentHeartbeat *heartbeatW `json:"most_recent_heartbeat"`
}

type dssInstancesW struct {
	DSSInstances []dssInstanceW `json:"dss_instances"`
}

// withSource returns the instance whose latest heartbeat has source src.
func withSource(t *testing.T, r *resp, src string) dssInstanceW {
	t.Helper()
	var l dssInstancesW
	r.decode(t, &l)
	for _, inst := range l.DSSInstances {
		if inst.ID == "" {
			t.Fatalf("instance without id: %s", r)
		}
		if hb := inst.MostRecentHeartbeat; hb != nil && hb.Source == src {
			return inst
		}
	}
	t.Fatalf("no instance with a heartbeat of source %q: %s", src, r)
	return dssInstanceW{}
}

// TestAuxVersion: aux.md A1 (no token needed, a non-empty version).
func TestAuxVersion(t *testing.T) {
	t.Parallel()
	var v struct {
		Version *string `json:"version"`
	}
	call(t, http.MethodGet, auxPrefix+"/version", "", nil).expect(t, http.StatusOK).decode(t, &v)
	if v.Version == nil || *v.Version == "" {
		t.Fatal("version missing or empty")
	}
	call(t, http.MethodPost, auxPrefix+"/version", "", nil).expect(t, http.StatusNotFound)
}

// TestAuxValidateOauth: aux.md V1–V3.
func TestAuxValidateOauth(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "aux", scopeISARead)
	p := auxPrefix + "/validate_oauth?owner=" + url.QueryEscape(u.sub)
	u.do(t, http.MethodGet, p, nil).expect(t, http.StatusOK)
	u.as(t, scopeISAWrite).do(t, http.MethodGet, p, nil).expect(t, http.StatusOK)
	u.do(t, http.MethodGet, auxPrefix+"/validate_oauth?owner=someone-else", nil).expectError(t, http.StatusForbidden)
	u.do(t, http.MethodGet, auxPrefix+"/validate_oauth", nil).expectError(t, http.StatusBadRequest)
	u.do(t, http.MethodGet, p+"&owner=x", nil).expectError(t, http.StatusBadRequest)
	u.do(t, http.MethodGet, auxPrefix+"/validate_oauth?owner=%zz", nil).expectError(t, http.StatusBadRequest)
	u.as(t, scopePoolRead).do(t, http.MethodGet, p, nil).expectError(t, http.StatusForbidden)
	call(t, http.MethodGet, p, "", nil).expectError(t, http.StatusUnauthorized)
}

// TestAuxAuthAndScopes: aux.md A2 (401 without a token, 403 without the
// endpoint's scope, on every authenticated endpoint).
func TestAuxAuthAndScopes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method, path, scope string
	}{
		{http.MethodGet, auxPrefix + "/pool", scopePoolRead},
		{http.MethodGet, dssInstancesPath, scopePoolRead},
		{http.MethodPut, heartbeatPath + "?source=scopes", scopeHBWrite},
		{http.MethodGet, auxPrefix + "/configuration/global_options", scopePoolRead},
	} {
		call(t, c.method, c.path, "", nil).expectError(t, http.StatusUnauthorized)
		other := scopePoolRead
		if c.scope == scopePoolRead {
			other = scopeHBWrite
		}
		newUSS(t, "aux", other, scopeISARead, sc).do(t, c.method, c.path, nil).expectError(t, http.StatusForbidden)
	}
}

// TestAuxPool: aux.md P1 (a non-empty dar_id, the same on every node).
func TestAuxPool(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "aux", scopePoolRead)
	var first string
	for i := range 2 * len(tgt.urls) {
		var p struct {
			DarID *string `json:"dar_id"`
		}
		u.do(t, http.MethodGet, auxPrefix+"/pool", nil).expect(t, http.StatusOK).decode(t, &p)
		if p.DarID == nil || *p.DarID == "" {
			t.Fatal("dar_id missing or empty")
		}
		if i == 0 {
			first = *p.DarID
		} else if *p.DarID != first {
			t.Fatalf("dar_id %q, earlier %q: nodes of one pool disagree", *p.DarID, first)
		}
	}
}

// TestAuxHeartbeats: aux.md H1–H3 and L1: a heartbeat is answered 201 with
// the instance list holding it, as given, and every later list (from any
// node) holds it too; an instance's index grows by one per heartbeat.
// Heartbeats share the instance list, so this test is not parallel with
// itself, and each of its heartbeats has a source of its own.
func TestAuxHeartbeats(t *testing.T) {
	writer := newUSS(t, "aux-hb", scopeHBWrite)
	reader := newUSS(t, "aux-read", scopePoolRead)
	ts := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond).Add(123 * time.Nanosecond)
	next := ts.Add(10 * time.Minute)
	lastIndex := map[string]int64{}
	for i := range len(tgt.urls) + 1 {
		src := "conformance-" + suffix()
		q := url.Values{"source": {src}, "timestamp": {ts.Format(time.RFC3339Nano)},
			"next_heartbeat_expected_before": {next.Format(time.RFC3339Nano)}}
		r := writer.do(t, http.MethodPut, heartbeatPath+"?"+q.Encode(), nil).expect(t, http.StatusCreated)
		inst := withSource(t, r, src)
		hb := inst.MostRecentHeartbeat
		if hb.Reporter != writer.sub || hb.Timestamp != ts.Format(time.RFC3339Nano) ||
			hb.NextHeartbeatExpectedBefore == nil || *hb.NextHeartbeatExpectedBefore != next.Format(time.RFC3339Nano) ||
			hb.Index == nil || *hb.Index < 1 {
			t.Fatalf("heartbeat %d recorded as %+v (next %v)", i, hb, hb.NextHeartbeatExpectedBefore)
		}
		if prev, ok := lastIndex[inst.ID]; ok && *hb.Index <= prev {
			t.Fatalf("instance %s: index %d after %d", inst.ID, *hb.Index, prev)
		} else if ok && len(tgt.urls) == 1 && *hb.Index != prev+1 {
			t.Fatalf("instance %s: index %d after %d, want +1", inst.ID, *hb.Index, prev)
		}
		lastIndex[inst.ID] = *hb.Index
		// Read back, on the next node of a cluster.
		l := reader.do(t, http.MethodGet, dssInstancesPath, nil).expect(t, http.StatusOK)
		if got := withSource(t, l, src); !reflect.DeepEqual(got, inst) {
			t.Fatalf("listed %+v, PUT answered %+v", got, inst)
		}
	}

	// Without a timestamp the heartbeat is for the request time; without a
	// next time none is reported.
	src := "conformance-now-" + suffix()
	before := time.Now().UTC().Add(-time.Minute)
	r := writer.do(t, http.MethodPut, heartbeatPath+"?source="+src, nil).expect(t, http.StatusCreated)
	hb := withSource(t, r, src).MostRecentHeartbeat
	got, err := time.Parse(time.RFC3339Nano, hb.Timestamp)
	if err != nil || got.Before(before) || got.After(time.Now().Add(time.Minute)) {
		t.Fatalf("default timestamp %q (%v), want about now", hb.Timestamp, err)
	}
	if hb.NextHeartbeatExpectedBefore != nil {
		t.Fatalf("next_heartbeat_expected_before %q without one given", *hb.NextHeartbeatExpectedBefore)
	}
}

// TestAuxHeartbeatBadInput: aux.md H4–H6.
func TestAuxHeartbeatBadInput(t *testing.T) {
	t.Parallel()
	u := newUSS(t, "aux", scopeHBWrite)
	long := make([]byte, 1025)
	for i := range long {
		long[i] = 'x'
	}
	for _, q := range []string{
		"",
		"source=",
		"source=%20",
		"source=a&source=b",
		"source=" + string(long),
		"source=a&timestamp=yesterday",
		"source=a&timestamp=2026-01-01",
		"source=a&timestamp=0001-01-01T00:00:00Z",
		"source=a&next_heartbeat_expected_before=soon",
		"source=a&timestamp=2026-01-01T00:00:00Z&timestamp=2026-01-01T00:00:00Z",
		"source=%zz",
		"source=a%00b",
		"source=%ff",
		"source=a%0Ab",
	} {
		u.do(t, http.MethodPut, heartbeatPath+"?"+q, nil).expectError(t, http.StatusBadRequest)
	}
}

// TestAuxCACerts: aux.md C1–C2: both CA lists are answered without a token,
// are equal, and hold PEM certificates (none when peer TLS is off).
func TestAuxCACerts(t *testing.T) {
	t.Parallel()
	var lists [2][]string
	for i, p := range []string{"/configuration/accepted_ca_certs", "/configuration/ca_certs"} {
		var v struct {
			CAs []string `json:"CAs"`
		}
		r := call(t, http.MethodGet, auxPrefix+p, "", nil).expect(t, http.StatusOK)
		r.decode(t, &v)
		if v.CAs == nil {
			t.Fatalf("CAs missing or null: %s", r)
		}
		for _, c := range v.CAs {
			b, rest := pem.Decode([]byte(c))
			if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
				t.Fatalf("%s: not one PEM certificate: %q", p, c)
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
		lists[i] = v.CAs
	}
	if !reflect.DeepEqual(lists[0], lists[1]) {
		t.Fatalf("accepted %v, instance %v", lists[0], lists[1])
	}
}

// TestAuxGlobalOptions: aux.md O1 (the three options, as booleans).
func TestAuxGlobalOptions(t *testing.T) {
	t.Parallel()
	m := newUSS(t, "aux", scopePoolRead).do(t, http.MethodGet, auxPrefix+"/configuration/global_options", nil).
		expect(t, http.StatusOK).object(t)
	for _, k := range []string{"scd_global_lock", "scd_hash_lock", "time_based_notification_index"} {
		if _, ok := m[k].(bool); !ok {
			t.Fatalf("%s missing or not a boolean: %v", k, m)
		}
	}
}
