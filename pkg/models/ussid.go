package models

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxUSSIDBytes bounds a USS identifier: the uss_id path parameter of the
// availability endpoints (spec §6.4) and the `sub` claim of an access token,
// which is the same value (utm.yaml: uss_id is the client ID "matching their
// `sub` in access tokens"; spec §5.4). OAuth client IDs, UUIDs, e-mail
// addresses (at most 254 bytes) and short URIs all fit; the bound keeps a
// stored identifier (an availability key, the manager of every entity) small
// and makes both stores behave alike: PostgreSQL refuses text with NUL bytes
// and primary keys over ~2.7 KB, which the in-memory store would accept.
const MaxUSSIDBytes = 255

// USSIDProblem returns why s is not a valid USS identifier, or "" when it is
// one. A USS identifier is 1 to MaxUSSIDBytes bytes of valid UTF-8 in which
// every character is printable as unicode.IsPrint defines it: letters, marks,
// numbers, punctuation, symbols and the ASCII space. Control characters
// (NUL, CR, LF, TAB, DEL …), format characters (zero-width and bidi
// controls) and other spaces are refused: they make identifiers that look
// equal but are not, and they corrupt logs.
func USSIDProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	return PrintableProblem(s, MaxUSSIDBytes)
}

// PrintableProblem returns why s is not at most maxBytes bytes of valid
// UTF-8 with every character printable (unicode.IsPrint), or "" when it is.
func PrintableProblem(s string, maxBytes int) string {
	switch {
	case len(s) > maxBytes:
		return fmt.Sprintf("is %d bytes long, more than the %d allowed", len(s), maxBytes)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for i, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Sprintf("contains the non-printable character %U at byte %d", r, i)
		}
	}
	return ""
}

// CheckUSSID returns nil when s is a valid USS identifier (USSIDProblem) and
// otherwise a CodeBadRequest error naming the problem, with s quoted and
// truncated so that a hostile value cannot flood the response or the log.
func CheckUSSID(s string) error {
	if p := USSIDProblem(s); p != "" {
		return Errorf(CodeBadRequest, "invalid uss_id %q: %s (a USS identifier is the `sub` of its access tokens: "+
			"1 to %d bytes of printable UTF-8)", truncate(s), p, MaxUSSIDBytes)
	}
	return nil
}
