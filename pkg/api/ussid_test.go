package api

import (
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/models"
)

// TestUssAvailabilityIDValidation: both availability endpoints refuse a
// uss_id that could not be a token subject (models.CheckUSSID) with 400,
// before the body is read, and accept every valid one verbatim.
func TestUssAvailabilityIDValidation(t *testing.T) {
	body := []byte(`{"old_version":"","availability":"Normal"}`)
	tests := []struct {
		name, id, want string // want "" = accepted
	}{
		{"plain", "uss2", ""},
		{"uri subject", "https://idp.example/uss/2", ""},
		{"at the limit", strings.Repeat("u", models.MaxUSSIDBytes), ""},
		{"empty", "", "missing uss_id"},
		{"too long", strings.Repeat("u", 50_000), "more than the 255 allowed"},
		{"NUL", "uss\x002", "U+0000"},
		{"newline", "uss2\nforged log line", "U+000A"},
		{"invalid utf-8", "\xc3(", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, gerr := ParseGetUssAvailability(testRI, tt.id)
			// A broken body must not matter when the id is already wrong.
			p, perr := ParsePutUssAvailability(testRI, tt.id, []byte(`{`))
			if tt.want == "" {
				if gerr != nil || g.USS != tt.id {
					t.Fatalf("get = %+v, %v", g, gerr)
				}
				if p, err := ParsePutUssAvailability(testRI, tt.id, body); err != nil || p.USS != tt.id {
					t.Fatalf("put = %+v, %v", p, err)
				}
				return
			}
			wantErr(t, gerr, models.CodeBadRequest, tt.want)
			wantErr(t, perr, models.CodeBadRequest, tt.want)
			if g != nil || p != nil {
				t.Fatalf("operations built for a bad uss_id: %+v %+v", g, p)
			}
		})
	}
}
