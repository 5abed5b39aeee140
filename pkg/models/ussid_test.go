package models

import (
	"errors"
	"strings"
	"testing"
)

func TestUSSIDRules(t *testing.T) {
	tests := []struct {
		name, id string
		problem  string // "" = valid; else a substring of the problem
	}{
		{"client id", "uss1", ""},
		{"uuid", "3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c", ""},
		{"e-mail", "svc-uss@dss.example.com", ""},
		{"uri with slashes", "https://idp.example/clients/uss-7", ""},
		{"auth0 style", "auth0|5f7c8ec7c33c6c004bbafe82", ""},
		{"inner space", "USS One", ""},
		{"non-ascii letters", "ユーエスエス-1", ""},
		{"dots", "..", ""}, // a value, not a path: the router refuses dot segments
		{"exactly the limit", strings.Repeat("a", MaxUSSIDBytes), ""},
		{"multi-byte at the limit", strings.Repeat("é", MaxUSSIDBytes/2), ""},

		{"empty", "", "is empty"},
		{"one byte over", strings.Repeat("a", MaxUSSIDBytes+1), "256 bytes long"},
		{"50 KB", strings.Repeat("x", 50_000), "50000 bytes long"},
		{"NUL", "uss\x001", "U+0000 at byte 3"},
		{"newline", "uss1\n", "U+000A"},
		{"carriage return", "uss1\rinjected", "U+000D"},
		{"tab", "uss\t1", "U+0009"},
		{"DEL", "uss\x7f", "U+007F"},
		{"C1 control", "uss\u0085", "U+0085"},
		{"zero-width space", "uss\u200b1", "U+200B"},
		{"bidi override", "uss\u202e1", "U+202E"},
		{"no-break space", "uss\u00a01", "U+00A0"},
		{"invalid utf-8", "uss\xff", "not valid UTF-8"},
		{"truncated utf-8", "uss\xe3\x83", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := USSIDProblem(tt.id)
			err := CheckUSSID(tt.id)
			if tt.problem == "" {
				if p != "" || err != nil {
					t.Fatalf("%q refused: %q, %v", tt.id, p, err)
				}
				return
			}
			if !strings.Contains(p, tt.problem) {
				t.Fatalf("problem %q, want it to contain %q", p, tt.problem)
			}
			var me *Error
			if !errors.As(err, &me) || me.Code != CodeBadRequest || !strings.Contains(me.Message, p) {
				t.Fatalf("CheckUSSID = %v, want CodeBadRequest naming %q", err, p)
			}
			// The message quotes at most a prefix of the value.
			if len(me.Message) > 400 {
				t.Fatalf("message of %d bytes echoes the value: %.100q…", len(me.Message), me.Message)
			}
		})
	}
}
