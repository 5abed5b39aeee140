package models

import (
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// ID is an entity ID: a UUIDv4 in canonical lowercase 8-4-4-4-12 form.
type ID string

// NullSubscriptionID is returned for an OIR that has no subscription (spec §3.6).
const NullSubscriptionID ID = "00000000-0000-4000-8000-000000000000"

// ParseID accepts a UUID version 4 with the RFC 4122 variant in the dashed
// 8-4-4-4-12 form, any case, and returns it in lowercase (spec §3.1).
func ParseID(s string) (ID, error) {
	if len(s) != 36 {
		return "", Errorf(CodeBadRequest, "invalid ID %q: want a UUIDv4 like 3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c", truncate(s))
	}
	b := []byte(s)
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", Errorf(CodeBadRequest, "invalid ID %q: want a UUIDv4 in 8-4-4-4-12 form", s)
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + ('a' - 'A')
		default:
			return "", Errorf(CodeBadRequest, "invalid ID %q: not hexadecimal", s)
		}
	}
	if b[14] != '4' {
		return "", Errorf(CodeBadRequest, "invalid ID %q: not a version 4 UUID", s)
	}
	switch b[19] {
	case '8', '9', 'a', 'b':
	default:
		return "", Errorf(CodeBadRequest, "invalid ID %q: not an RFC 4122 variant UUID", s)
	}
	return ID(b), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// OVN is an opaque version of an OIR or constraint (spec §3.6).
type OVN string

// ScrubbedOVN is what non-managers see instead of an entity's OVN.
const ScrubbedOVN OVN = "Available from USS"

// Minimum and maximum OVN lengths (spec §3.6).
const (
	MinOVNLength = 16
	MaxOVNLength = 128
)

// DeriveVersion computes the opaque version string for key written at t:
// base64(sha256(key + t in RFC 3339 with nanoseconds)) with the URL-unsafe
// characters replaced as the reference DSS does. OVNs of OIRs and CRs,
// subscription versions and USS availability versions all use it, so every
// replica derives the same value from the same write time.
//
// It runs for every OIR a key check meets, inside every replica's apply, so
// it builds the hash input and the encoding in stack buffers and allocates
// only the result; the output is byte for byte that of the formula above.
func DeriveVersion(key string, t time.Time) string {
	var in [128]byte
	b := append(in[:0], key...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	sum := sha256.Sum256(b)
	var out [44]byte // base64.StdEncoding.EncodedLen(sha256.Size)
	base64.StdEncoding.Encode(out[:], sum[:])
	for i, c := range out {
		switch c {
		case '+':
			out[i] = '-'
		case '/':
			out[i] = '.'
		case '=':
			out[i] = '_'
		}
	}
	return string(out[:])
}
