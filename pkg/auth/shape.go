package auth

import (
	"encoding/base64"
	"strings"
)

// Bounds on the JSON of a token's header and claims, checked before the JWT
// library decodes them (and so before the signature is checked). The size
// cap alone bounds that work linearly, but JSON can make a 16 KiB token cost
// 25 times a real verification: 8,000 nested arrays in the header decode into
// 12,000 allocations (~0.85 ms), thousands of audiences into half a MiB. Real
// tokens nest two or three levels (an object of roles holding an array) and
// carry tens of members; issuers that list groups stop at about 200 of them.
const (
	// maxTokenJSONDepth bounds the nesting of objects and arrays.
	maxTokenJSONDepth = 16
	// maxTokenJSONMembers bounds the commas outside strings, that is the
	// object members plus array elements beyond the first of each.
	maxTokenJSONMembers = 1024
)

// checkTokenShape refuses a token whose header or claims JSON passes the
// bounds above. Anything it cannot decode it leaves to the JWT parser, which
// reports it as malformed; it only ever refuses, never accepts.
func checkTokenShape(raw string) error {
	header, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil
	}
	claims, _, ok := strings.Cut(rest, ".")
	if !ok {
		return nil
	}
	for _, seg := range [...]struct{ name, b64 string }{{"header", header}, {"claims", claims}} {
		data, err := base64.RawURLEncoding.DecodeString(seg.b64)
		if err != nil {
			return nil
		}
		depth, members := jsonShape(data)
		if depth > maxTokenJSONDepth {
			return unauthenticated(nil, "access token %s nests JSON %d levels deep, more than the %d accepted",
				seg.name, depth, maxTokenJSONDepth)
		}
		if members > maxTokenJSONMembers {
			return unauthenticated(nil, "access token %s holds more than %d JSON members and elements",
				seg.name, maxTokenJSONMembers)
		}
	}
	return nil
}

// jsonShape returns the deepest nesting of objects and arrays in data and
// the number of commas outside strings. It does not validate the JSON (the
// decoder does); it only measures it, in one pass without allocating.
func jsonShape(data []byte) (maxDepth, commas int) {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			maxDepth = max(maxDepth, depth)
		case '}', ']':
			depth--
		case ',':
			commas++
		}
	}
	return maxDepth, commas
}
