package auth

import (
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/models"
)

const (
	sc   = ScopeStrategicCoordination
	cm   = ScopeConstraintManagement
	cp   = ScopeConstraintProcessing
	cmsa = ScopeConformanceMonitoringSA
	aa   = ScopeAvailabilityArbitration
)

func TestSatisfiesAndAuthorize(t *testing.T) {
	// Rows of the spec §1 table.
	oirPut := Requirement{{sc}, {sc, cp}, {cmsa}}
	crPut := Requirement{{cm}}
	subAny := Requirement{{cp}, {sc}}
	report := Requirement{{cm}, {cp}, {sc}, {cmsa}, {aa}}
	bothNeeded := Requirement{{sc, cp}}

	tests := []struct {
		name   string
		scopes []string
		req    Requirement
		want   bool
	}{
		{"SC alone satisfies OIR PUT", []string{sc}, oirPut, true},
		{"SC+CP satisfies OIR PUT", []string{cp, sc}, oirPut, true},
		{"CMSA satisfies OIR PUT", []string{cmsa}, oirPut, true},
		{"CP alone does not satisfy OIR PUT", []string{cp}, oirPut, false},
		{"CM alone does not satisfy OIR PUT", []string{cm}, oirPut, false},
		{"no scopes", nil, oirPut, false},
		{"CM satisfies CR PUT", []string{cm}, crPut, true},
		{"SC does not satisfy CR PUT", []string{sc, cp, cmsa, aa}, crPut, false},
		{"CP satisfies subscription", []string{cp}, subAny, true},
		{"AA satisfies report", []string{aa}, report, true},
		{"AND needs both: only SC", []string{sc}, bothNeeded, false},
		{"AND needs both: only CP", []string{cp}, bothNeeded, false},
		{"AND needs both: both", []string{sc, cp}, bothNeeded, true},
		{"scope compare is exact", []string{"UTM.STRATEGIC_COORDINATION", "utm.strategic_coordination2"}, oirPut, false},
		{"empty requirement never satisfied", []string{sc}, Requirement{}, false},
		{"empty alternative always satisfied", nil, Requirement{{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Claims{Subject: "uss1", Scopes: tt.scopes}
			if got := c.Satisfies(tt.req); got != tt.want {
				t.Fatalf("Satisfies = %v, want %v", got, tt.want)
			}
			err := Authorize(c, tt.req)
			if tt.want {
				if err != nil {
					t.Fatalf("Authorize = %v, want nil", err)
				}
				return
			}
			if models.CodeOf(err) != models.CodePermissionDenied {
				t.Fatalf("Authorize code = %v (%v), want PermissionDenied", models.CodeOf(err), err)
			}
			for _, alt := range tt.req {
				for _, s := range alt {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("message %q does not name scope %s", err, s)
					}
				}
			}
		})
	}
}

func TestAuthorizeNilClaimsIsUnauthenticated(t *testing.T) {
	if got := models.CodeOf(Authorize(nil, Requirement{{sc}})); got != models.CodeUnauthenticated {
		t.Fatalf("code = %v, want Unauthenticated", got)
	}
	var c *Claims
	if c.HasScope(sc) || c.Satisfies(Requirement{{}}) {
		t.Fatal("nil claims must satisfy nothing")
	}
}

func TestRequirementString(t *testing.T) {
	got := Requirement{{sc}, {sc, cp}, {cmsa}}.String()
	want := `"utm.strategic_coordination", or "utm.strategic_coordination" and "utm.constraint_processing", or "utm.conformance_monitoring_sa"`
	if got != want {
		t.Fatalf("String() = %s\nwant %s", got, want)
	}
}
