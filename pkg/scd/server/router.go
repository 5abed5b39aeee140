package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// router matches a request against path templates such as
// "/dss/v1/operational_intent_references/{entityid}/{ovn}".
//
// net/http's ServeMux is not used because the spec (§1 routing rules) wants
// behaviour it does not have: a wrong method on a known path is a 404, not a
// 405; a parameter is exactly one path segment and may be empty (a trailing
// slash yields an empty last parameter, which parsing rejects with 400
// rather than the mux redirecting or answering 404).
//
// Only canonical paths match (canonical): a path with an empty segment
// inside it ("//"), a "." or ".." segment, spelled plainly or
// percent-encoded ("%2e%2E"), or a broken escape is a 404 like any unknown
// path, never a redirect to its cleaned form, which would point a client
// somewhere else than it asked. Literal segments are compared in their
// escaped form, so "%71uery" is not "query" and "a%2Fb" is one segment:
// percent-encoding can name a parameter value, never another route.
type router struct {
	routes []compiledRoute
	// maxSlashes is the number of "/" in the longest template plus one
	// (a trailing slash); a path with more is refused before it is split.
	maxSlashes int
}

type compiledRoute struct {
	method   string
	segments []segment
	index    int // position in the route table
}

// segment is one path segment of a template: a literal, or a parameter
// (name != "") that matches any single segment, including an empty one.
type segment struct {
	literal string
	param   string
}

func newRouter(methods []string, patterns []string) (*router, error) {
	if len(methods) != len(patterns) {
		return nil, fmt.Errorf("server: %d methods for %d patterns", len(methods), len(patterns))
	}
	rt := &router{}
	seen := map[string]bool{}
	for i, p := range patterns {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("server: pattern %q does not start with /", p)
		}
		var segs []segment
		var shape strings.Builder
		for _, s := range strings.Split(p[1:], "/") {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && len(s) > 2 {
				segs = append(segs, segment{param: s[1 : len(s)-1]})
				shape.WriteString("/{}")
				continue
			}
			if s == "" || strings.ContainsAny(s, "{}") {
				return nil, fmt.Errorf("server: pattern %q has an invalid segment %q", p, s)
			}
			segs = append(segs, segment{literal: s})
			shape.WriteString("/" + s)
		}
		// Two templates of one method with the same shape would make the
		// table's order decide silently; refuse it at start-up instead.
		key := methods[i] + " " + shape.String()
		if seen[key] {
			return nil, fmt.Errorf("server: duplicate route %s", key)
		}
		seen[key] = true
		rt.routes = append(rt.routes, compiledRoute{method: methods[i], segments: segs, index: i})
		rt.maxSlashes = max(rt.maxSlashes, len(segs)+1)
	}
	return rt, nil
}

// match returns the index of the route for method and the escaped path, and
// the unescaped values of its parameters in template order. A literal
// segment wins over a parameter (so POST .../query is the query endpoint
// while GET .../query asks for an entity with id "query", which is 400).
func (rt *router) match(method, escapedPath string) (int, []string, bool) {
	// Counting first bounds the split: a 1 MiB path of slashes would
	// otherwise allocate half a million segments.
	if !strings.HasPrefix(escapedPath, "/") || strings.Count(escapedPath, "/") > rt.maxSlashes {
		return 0, nil, false
	}
	parts := strings.Split(escapedPath[1:], "/")
	if !canonical(parts) {
		return 0, nil, false
	}
	best, bestLiterals := -1, -1
	var bestParams []string
	for _, r := range rt.routes {
		if r.method != method || len(r.segments) != len(parts) {
			continue
		}
		literals := 0
		var params []string
		ok := true
		for i, s := range r.segments {
			if s.param == "" {
				if parts[i] != s.literal {
					ok = false
					break
				}
				literals++
				continue
			}
			v, err := url.PathUnescape(parts[i])
			if err != nil {
				ok = false
				break
			}
			params = append(params, v)
		}
		if ok && literals > bestLiterals {
			best, bestLiterals, bestParams = r.index, literals, params
		}
	}
	if best < 0 {
		return 0, nil, false
	}
	return best, bestParams, true
}

// canonical reports whether the segments of an escaped path (without its
// leading "/") are in canonical form: no empty segment but the last one (a
// trailing slash, which §1 maps to an empty parameter), no segment that is
// or decodes to "." or "..", and only valid percent-escapes.
func canonical(parts []string) bool {
	for i, p := range parts {
		if p == "" {
			if i < len(parts)-1 {
				return false
			}
			continue
		}
		if p != "." && p != ".." && strings.IndexByte(p, '%') < 0 {
			continue // no escape, not a dot segment: the common case
		}
		v, err := url.PathUnescape(p)
		if err != nil || v == "." || v == ".." {
			return false
		}
	}
	return true
}

// notFound answers like Go's default mux: text/plain "404 page not found"
// (spec §1: non-JSON body, no 405).
func notFound(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
