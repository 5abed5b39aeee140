package differential

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/api"
	"github.com/raftdss/dss/pkg/auth"
	poolserver "github.com/raftdss/dss/pkg/pool/server"
)

// Scopes (spec §1) and literals (spec §3.6).
const (
	sc   = auth.ScopeStrategicCoordination
	cm   = auth.ScopeConstraintManagement
	cp   = auth.ScopeConstraintProcessing
	cmsa = auth.ScopeConformanceMonitoringSA
	aa   = auth.ScopeAvailabilityArbitration
	psr  = poolserver.ScopePoolStatusRead
	hbw  = poolserver.ScopeHeartbeatWrite

	scrubbedOVN    = "Available from USS"
	placeholderSub = "00000000-0000-4000-8000-000000000000"

	oirPath   = "/dss/v1/operational_intent_references"
	crPath    = "/dss/v1/constraint_references"
	subPath   = "/dss/v1/subscriptions"
	availPath = "/dss/v1/uss_availability"
)

// t0 is the injected clock's start. Fixed, so that a printed sequence
// reproduces exactly.
var t0 = time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)

// uss is a client of the small world. The scope sets differ so that every
// scope rule is exercised: uss-a plans and processes constraints, uss-b plans
// and may declare non-conformance (CMSA), uss-c manages constraints, uss-d
// arbitrates availability and plans.
type uss struct {
	name   string
	scopes []string
}

var usss = []uss{
	{"uss-a", []string{sc, cp}},
	{"uss-b", []string{sc, cmsa}},
	{"uss-c", []string{cm, cp}},
	{"uss-d", []string{aa, sc, psr, hbw}},
}

// ID pools: small, so that creates collide with existing entities and
// updates and deletes hit both existing and missing ones. Implicit
// subscriptions get IDs from env.NewID (prefix 9).
var (
	oirIDs = poolIDs("11111111", 6)
	crIDs  = poolIDs("22222222", 4)
	subIDs = poolIDs("33333333", 5)
)

func poolIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-0000-4000-8000-%012d", prefix, i+1)
	}
	return out
}

// places are anchors 1–2 km apart, of the order of a level-13 S2 cell, so
// that volumes around them overlap some of the time and not always.
var places = [][2]float64{{0, 0}, {1500, 300}, {-400, 1700}, {1300, 2100}}

const baseLat, baseLng = 46.95, 7.45

// tokenKind selects a valid or a broken access token.
type tokenKind int

const (
	tokValid tokenKind = iota
	tokNone
	tokExpired
	tokWrongAudience
	tokTooLong // exp more than 1 h ahead (spec §2)
	tokGarbage
)

var tokenNames = []string{"", "no token", "expired token", "wrong audience", "token lives > 1 h", "garbage token"}

// request is one generated HTTP request. Everything a target needs is in it:
// replaying the same requests replays the same run.
type request struct {
	Seq      int       // number in the generated sequence; names the IDs env.NewID hands out
	At       time.Time // the injected clock while it is served
	Caller   string    // token subject
	Scopes   []string  // token scopes
	Token    tokenKind
	Endpoint string // what the generator meant, e.g. "oir.put" (for learning and printing)
	Method   string
	Path     string
	Body     []byte // nil: no body
}

func (rq *request) authorization() string {
	iat := rq.At.Truncate(time.Minute) // few distinct tokens: they are cached
	switch rq.Token {
	case tokNone:
		return ""
	case tokGarbage:
		return "Bearer not.a.jwt"
	case tokExpired:
		return "Bearer " + token(rq.Caller, rq.Scopes, iat.Add(-2*time.Hour), 30*time.Minute, "")
	case tokWrongAudience:
		return "Bearer " + token(rq.Caller, rq.Scopes, iat, 30*time.Minute, "someone-else.example")
	case tokTooLong:
		return "Bearer " + token(rq.Caller, rq.Scopes, iat, 3*time.Hour, "")
	default:
		return "Bearer " + token(rq.Caller, rq.Scopes, iat, 30*time.Minute, "")
	}
}

var scopeAbbrev = strings.NewReplacer(sc, "SC", cm, "CM", cp, "CP", cmsa, "CMSA", aa, "AA")

// String is the request as one readable line.
func (rq *request) String() string {
	who := rq.Caller + "[" + scopeAbbrev.Replace(strings.Join(rq.Scopes, " ")) + "]"
	if rq.Token != tokValid {
		who += "(" + tokenNames[rq.Token] + ")"
	}
	line := fmt.Sprintf("#%-4d t0+%-14s %-26s %s %s", rq.Seq, rq.At.Sub(t0), who, rq.Method, rq.Path)
	if rq.Body != nil {
		line += "  " + string(rq.Body)
	}
	return line
}

// entity is what the generator knows of an entity from earlier answers.
type entity struct {
	owner string
	ovn   string // OIR/CR OVN or subscription version; "" unknown
	sub   string // OIR: its subscription
}

// matching returns the sorted IDs of m's entities for which keep holds.
func matching(m map[string]*entity, keep func(id string, e *entity) bool) []string {
	var out []string
	for _, id := range sortedKeys(m) {
		if keep(id, m[id]) {
			out = append(out, id)
		}
	}
	return out
}

// model is the generator's knowledge of the world, learned from the first
// target's answers. It only steers the generator towards interesting
// requests (right OVNs, existing IDs); it is never an oracle.
type model struct {
	oirs, crs, subs map[string]*entity
	avail           map[string]string // USS → availability version
	stale           []string          // OVNs and versions that were current once
	suffixes        []string          // requested OVN suffixes used
}

// generator produces the request sequence of one seed.
type generator struct {
	rnd   *rand.Rand
	now   time.Time
	seq   int
	m     model
	times []time.Time // recent instants in bodies: near-collisions are made from them
}

func newGenerator(seed uint64) *generator {
	return &generator{
		rnd: rand.New(rand.NewPCG(seed, 0x5eed)),
		now: t0,
		m: model{oirs: map[string]*entity{}, crs: map[string]*entity{}, subs: map[string]*entity{},
			avail: map[string]string{}},
	}
}

func (g *generator) chance(p float64) bool { return g.rnd.Float64() < p }

func pick[T any](g *generator, xs []T) T { return xs[g.rnd.IntN(len(xs))] }

// sortedKeys: map order is random, and the generator must be deterministic.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// endpoint kinds with their weights and the scope alternatives of spec §1
// (any one of the inner lists, all of its scopes).
type endpointKind struct {
	name   string
	weight int
	scopes [][]string
	build  func(g *generator, rq *request)
}

var endpoints = []endpointKind{
	{"oir.query", 7, [][]string{{sc}, {cmsa}}, (*generator).oirQuery},
	{"oir.get", 4, [][]string{{sc}, {cmsa}}, (*generator).oirGet},
	{"oir.create", 12, [][]string{{sc}, {cmsa}}, func(g *generator, rq *request) { g.oirPut(rq, false) }},
	{"oir.update", 12, [][]string{{sc}, {cmsa}}, func(g *generator, rq *request) { g.oirPut(rq, true) }},
	{"oir.delete", 5, [][]string{{sc}, {cmsa}}, (*generator).oirDelete},
	{"cr.query", 4, [][]string{{cm}, {cp}}, (*generator).crQuery},
	{"cr.get", 3, [][]string{{cm}, {cp}}, (*generator).crGet},
	{"cr.create", 5, [][]string{{cm}}, func(g *generator, rq *request) { g.crPut(rq, false) }},
	{"cr.update", 4, [][]string{{cm}}, func(g *generator, rq *request) { g.crPut(rq, true) }},
	{"cr.delete", 3, [][]string{{cm}}, (*generator).crDelete},
	{"sub.query", 4, [][]string{{cp}, {sc}}, (*generator).subQuery},
	{"sub.get", 4, [][]string{{cp}, {sc}}, (*generator).subGet},
	{"sub.create", 6, [][]string{{cp}, {sc}}, func(g *generator, rq *request) { g.subPut(rq, false) }},
	{"sub.update", 5, [][]string{{cp}, {sc}}, func(g *generator, rq *request) { g.subPut(rq, true) }},
	{"sub.delete", 4, [][]string{{cp}, {sc}}, (*generator).subDelete},
	{"report", 1, [][]string{{cm}, {cp}, {sc}, {cmsa}, {aa}}, (*generator).report},
	{"avail.get", 3, [][]string{{aa}, {sc}, {cmsa}}, (*generator).availGet},
	{"avail.put", 4, [][]string{{aa}}, (*generator).availPut},
	{"evict", 2, [][]string{{sc}}, (*generator).evict},
	{"aux.heartbeat", 2, [][]string{{hbw}}, (*generator).heartbeat},
	{"aux.instances", 1, [][]string{{psr}}, func(_ *generator, rq *request) {
		rq.Method, rq.Path = "GET", "/aux/v1/pool/dss_instances"
	}},
}

var totalWeight = func() int {
	n := 0
	for _, e := range endpoints {
		n += e.weight
	}
	return n
}()

// next returns the next request, knowing the answers to all earlier ones
// (learn).
func (g *generator) next() *request {
	g.seq++
	// A few ms per request, with nanoseconds (write times must survive to
	// the nanosecond: they make OVNs); now and then minutes, so that
	// entities and subscriptions expire during a run.
	g.now = g.now.Add(time.Duration(1+g.rnd.IntN(20))*time.Millisecond + time.Duration(g.rnd.IntN(1000)))
	if g.chance(0.02) {
		g.now = g.now.Add(time.Duration(1+g.rnd.IntN(12)) * time.Minute)
	}
	// -diff.clockback: proposers whose clocks disagree (several DSS nodes).
	// The Raft log raises such write times (store.Timestamped); whether a
	// SQL store must too is a question this option asks, not the default.
	if p := *flagClockBack; p > 0 && g.chance(p) {
		g.now = g.now.Add(-time.Duration(g.rnd.IntN(50)) * time.Millisecond)
	}
	rq := &request{Seq: g.seq, At: g.now}
	w := g.rnd.IntN(totalWeight)
	for _, e := range endpoints {
		if w -= e.weight; w < 0 {
			rq.Endpoint = e.name
			e.build(g, rq)
			if rq.Caller == "" {
				g.setCaller(rq, e.scopes, "")
			}
			break
		}
	}
	g.maybeBreak(rq)
	return rq
}

// setCaller picks the caller: usually pref (the owner of the entity the
// request is about) or a USS holding the endpoint's scopes, sometimes
// anyone; usually with its full scope set and a valid token.
func (g *generator) setCaller(rq *request, alts [][]string, pref string) {
	var u uss
	switch {
	case pref != "" && g.chance(0.8):
		for _, x := range usss {
			if x.name == pref {
				u = x
			}
		}
	case g.chance(0.9):
		var ok []uss
		for _, x := range usss {
			for _, alt := range alts {
				if hasAll(x.scopes, alt) {
					ok = append(ok, x)
					break
				}
			}
		}
		u = pick(g, ok)
	default:
		u = pick(g, usss)
	}
	if u.name == "" {
		u = pick(g, usss)
	}
	rq.Caller, rq.Scopes = u.name, u.scopes
	if g.chance(0.04) { // too few or foreign scopes: 403, or allowed by another alternative
		rq.Scopes = []string{pick(g, []string{sc, cm, cp, cmsa, aa})}
	}
	if g.chance(0.03) {
		rq.Token = tokenKind(1 + g.rnd.IntN(len(tokenNames)-1))
	}
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// maybeBreak turns a few requests into malformed ones: routing, ID and body
// errors (spec §1, §3.1). They never reach a store, but they must be
// answered alike too, and they must not disturb what follows.
func (g *generator) maybeBreak(rq *request) {
	if !g.chance(0.05) {
		return
	}
	segs := strings.Split(rq.Path, "/") // "", "dss", "v1", collection, params...
	switch g.rnd.IntN(7) {
	case 0:
		if rq.Body != nil {
			rq.Body = []byte(pick(g, []string{"{", "", "[]", `{"extents": {}}`, `{"area_of_interest": 5}`, "null"}))
		}
	case 1:
		if len(segs) > 4 {
			segs[4] = pick(g, []string{"not-a-uuid", "11111111-0000-1000-8000-000000000001", "11111111000040008000000000000001"})
		}
	case 2:
		segs = append(segs, "")
	case 3:
		segs[3] = "operation_references"
	case 4:
		rq.Method = pick(g, []string{"PATCH", "POST", "GET"})
	case 5:
		segs = append(segs, "extra", "segment")
	case 6:
		if len(segs) > 4 {
			segs[4] = strings.ToUpper(segs[4])
		}
	}
	rq.Path = strings.Join(segs, "/")
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// --- geometry and time ---------------------------------------------------

// point returns a point near a random anchor, up to 500 m off.
func (g *generator) point() api.LatLngPoint {
	p := pick(g, places)
	return offset(baseLat, baseLng, p[0]+g.rnd.Float64()*1000-500, p[1]+g.rnd.Float64()*1000-500)
}

func offset(lat, lng, northM, eastM float64) api.LatLngPoint {
	const mPerDeg = 111320.0
	return api.LatLngPoint{Lat: lat + northM/mPerDeg, Lng: lng + eastM/(mPerDeg*math.Cos(lat*math.Pi/180))}
}

// outline is a circle or a convex polygon (either winding) of 100 m–1.5 km.
func (g *generator) outline(v *api.Volume3D) {
	c := g.point()
	r := 100 + g.rnd.Float64()*1400
	if g.chance(0.4) {
		v.OutlineCircle = &api.Circle{Center: &c, Radius: &api.Radius{Value: r, Units: "M"}}
		return
	}
	n := 3 + g.rnd.IntN(4)
	var vs []api.LatLngPoint
	for i := range n {
		a := 2 * math.Pi * (float64(i) + 0.8*g.rnd.Float64()) / float64(n)
		vs = append(vs, offset(c.Lat, c.Lng, r*math.Sin(a), r*math.Cos(a)))
	}
	if g.chance(0.3) {
		slices.Reverse(vs)
	}
	v.OutlinePolygon = &api.Polygon{Vertices: vs}
}

func alt(v float64) *api.Altitude { return &api.Altitude{Value: v, Reference: "W84", Units: "M"} }

// at returns now+d: often on a 5-minute grid, so that one volume's end is
// exactly another's start (matching is inclusive, §4); sometimes a
// nanosecond or a microsecond away from an earlier time, where a store that
// compared at microsecond precision would disagree; else with random
// microseconds and sometimes nanoseconds (times must survive exactly,
// §3.2). Some are written with a zone offset (any offset is valid input).
func (g *generator) at(d time.Duration) *api.Time {
	t := g.now.Add(d)
	switch r := g.rnd.Float64(); {
	case r < 0.12 && len(g.times) > 0:
		t = pick(g, g.times).Add(pick(g, []time.Duration{-time.Nanosecond, 0, time.Nanosecond, -time.Microsecond, time.Microsecond}))
	case r < 0.42:
		t = t.Truncate(5 * time.Minute)
	default:
		t = t.Truncate(time.Second).Add(time.Duration(g.rnd.IntN(1_000_000)) * time.Microsecond)
		if g.chance(0.1) {
			t = t.Add(time.Duration(1 + g.rnd.IntN(999)))
		}
	}
	if g.times = append(g.times, t); len(g.times) > 30 {
		g.times = g.times[1:]
	}
	if g.chance(0.1) {
		t = t.In(pick(g, zones))
	}
	return &api.Time{Value: t.Format(time.RFC3339Nano), Format: "RFC3339"}
}

var zones = []*time.Location{time.FixedZone("", 5*3600+1800), time.FixedZone("", -8*3600)}

// Extreme instants of RFC 3339 (§3.2 puts no range on times).
var (
	farPast   = &api.Time{Value: "0001-01-01T00:00:00Z", Format: "RFC3339"}
	farFuture = &api.Time{Value: "9999-12-31T23:59:59.999999999Z", Format: "RFC3339"}
)

// altitudeGrid: values shared between volumes, so that altitude ranges
// touch exactly (matching is inclusive, §4), most of them not exactly
// representable as the 32-bit floats the stores keep (§3.3): a store that
// compared a float64 bound with a float32 column would disagree here.
var altitudeGrid = []float64{0, 12.3, 33.3, 50, 66.7, 100.1, 120, 150.9, 200, 233.3, 300.7, 410.1}

func (g *generator) altitude() float64 {
	if g.chance(0.5) {
		return pick(g, altitudeGrid)
	}
	return g.rnd.Float64() * 400
}

func minutes(g *generator, lo, hi int) time.Duration {
	return time.Duration(lo)*time.Minute + time.Duration(g.rnd.Int64N(int64(hi-lo)*int64(time.Minute)))
}

// volume4 is a Volume4D starting in [startLo, startHi] minutes from now and
// lasting [durLo, durHi] minutes; altP is the chance of each altitude bound.
func (g *generator) volume4(startLo, startHi, durLo, durHi int, altP float64) api.Volume4D {
	v := &api.Volume3D{}
	g.outline(v)
	lo, hi := g.altitude(), g.altitude()
	if lo > hi {
		lo, hi = hi, lo
	}
	if g.chance(altP) {
		v.AltitudeLower = alt(lo)
	}
	if g.chance(altP) {
		v.AltitudeUpper = alt(hi)
	}
	start := minutes(g, startLo, startHi)
	return api.Volume4D{Volume: v, TimeStart: g.at(start), TimeEnd: g.at(start + minutes(g, durLo, durHi))}
}

// maybeBadVolume breaks a volume now and then (spec §3.2–3.4, §4).
func (g *generator) maybeBadVolume(v *api.Volume4D, p float64) {
	if !g.chance(p) {
		return
	}
	c := g.point()
	switch g.rnd.IntN(10) {
	case 0: // both outlines
		v.Volume.OutlineCircle = &api.Circle{Center: &c, Radius: &api.Radius{Value: 300, Units: "M"}}
		v.Volume.OutlinePolygon = &api.Polygon{Vertices: []api.LatLngPoint{c, offset(c.Lat, c.Lng, 300, 0), offset(c.Lat, c.Lng, 0, 300)}}
	case 1: // no outline
		v.Volume.OutlineCircle, v.Volume.OutlinePolygon = nil, nil
	case 2:
		v.Volume.OutlinePolygon = nil
		v.Volume.OutlineCircle = &api.Circle{Center: &c, Radius: &api.Radius{Value: 0, Units: "M"}}
	case 3: // two vertices
		v.Volume.OutlineCircle = nil
		v.Volume.OutlinePolygon = &api.Polygon{Vertices: []api.LatLngPoint{c, offset(c.Lat, c.Lng, 500, 500)}}
	case 4: // bow-tie
		v.Volume.OutlineCircle = nil
		v.Volume.OutlinePolygon = &api.Polygon{Vertices: []api.LatLngPoint{c, offset(c.Lat, c.Lng, 500, 500),
			offset(c.Lat, c.Lng, 500, 0), offset(c.Lat, c.Lng, 0, 500)}}
	case 5: // ~8000 km²: area too large
		v.Volume.OutlineCircle = nil
		v.Volume.OutlinePolygon = &api.Polygon{Vertices: []api.LatLngPoint{c, {Lat: c.Lat, Lng: c.Lng + 1},
			{Lat: c.Lat + 1, Lng: c.Lng + 1}, {Lat: c.Lat + 1, Lng: c.Lng}}}
	case 6:
		v.Volume.OutlinePolygon = nil
		v.Volume.OutlineCircle = &api.Circle{Center: &api.LatLngPoint{Lat: 91, Lng: c.Lng}, Radius: &api.Radius{Value: 300, Units: "M"}}
	case 7:
		v.Volume.AltitudeLower = &api.Altitude{Value: 10, Reference: "W84", Units: "FT"}
	case 8:
		v.Volume.AltitudeLower, v.Volume.AltitudeUpper = alt(300), alt(100)
	case 9:
		if g.chance(0.5) {
			v.TimeStart, v.TimeEnd = v.TimeEnd, v.TimeStart
		} else {
			v.TimeStart = &api.Time{Value: "yesterday", Format: "RFC3339"}
		}
	}
}

// area is a query's area of interest: sometimes without times or altitudes.
func (g *generator) area() map[string]any {
	v := g.volume4(-30, 60, 1, 180, 0.5)
	switch r := g.rnd.Float64(); {
	case r < 0.25:
		v.TimeStart = nil
	case r < 0.29:
		v.TimeStart = farPast
	}
	switch r := g.rnd.Float64(); {
	case r < 0.25:
		v.TimeEnd = nil
	case r < 0.29:
		v.TimeEnd = farFuture
	}
	g.maybeBadVolume(&v, 0.08)
	return map[string]any{"area_of_interest": v}
}

// --- picking IDs, OVNs, keys ----------------------------------------------

// existing picks a known entity; ok is false when none is known.
func (g *generator) existing(known map[string]*entity) (id string, e *entity, ok bool) {
	ids := sortedKeys(known)
	if len(ids) == 0 {
		return "", nil, false
	}
	id = pick(g, ids)
	return id, known[id], true
}

// targetID picks the ID a request is about: mostly a known entity, else any
// pool ID (which may or may not exist).
func (g *generator) targetID(pool []string, known map[string]*entity, pExisting float64) (string, string) {
	if g.chance(pExisting) {
		if id, e, ok := g.existing(known); ok {
			return id, e.owner
		}
	}
	id := pick(g, pool)
	if e, ok := known[id]; ok {
		return id, e.owner
	}
	return id, ""
}

// freshID prefers a pool ID not known to exist.
func (g *generator) freshID(pool []string, known map[string]*entity) (string, string) {
	var free []string
	for _, id := range pool {
		if known[id] == nil {
			free = append(free, id)
		}
	}
	if len(free) > 0 && g.chance(0.8) {
		return pick(g, free), ""
	}
	return g.targetID(pool, known, 0.5)
}

// version picks the OVN or version a write names: mostly the current one,
// else a stale one, another entity's, or garbage.
func (g *generator) version(e *entity, others map[string]*entity) string {
	r := g.rnd.Float64()
	switch {
	case e != nil && e.ovn != "" && r < 0.75:
		return e.ovn
	case r < 0.87 && len(g.m.stale) > 0:
		return pick(g, g.m.stale)
	case r < 0.94 && len(others) > 0:
		if _, o, _ := g.existing(others); o.ovn != "" {
			return o.ovn
		}
	}
	return fmt.Sprintf("wrong-version-%016x", g.rnd.Uint64())
}

// key is an OIR PUT key: complete (every current OVN the generator knows,
// relevant or not), incomplete, empty, or padded with stale OVNs.
func (g *generator) key() []string {
	var all []string
	for _, m := range []map[string]*entity{g.m.oirs, g.m.crs} {
		for _, id := range sortedKeys(m) {
			if m[id].ovn != "" {
				all = append(all, m[id].ovn)
			}
		}
	}
	r := g.rnd.Float64()
	switch {
	case r < 0.55:
		return all
	case r < 0.75 && len(all) > 0:
		i := g.rnd.IntN(len(all))
		return append(all[:i:i], all[i+1:]...)
	case r < 0.85:
		return nil
	case len(g.m.stale) > 0:
		return append(all, pick(g, g.m.stale))
	}
	return all
}

// --- endpoints ---------------------------------------------------------

func (g *generator) oirQuery(rq *request) {
	rq.Method, rq.Path, rq.Body = "POST", oirPath+"/query", mustJSON(g.area())
}

func (g *generator) oirGet(rq *request) {
	id, _ := g.targetID(oirIDs, g.m.oirs, 0.7)
	rq.Method, rq.Path = "GET", oirPath+"/"+id
}

func (g *generator) oirPut(rq *request, update bool) {
	var id, owner string
	if update {
		id, owner = g.targetID(oirIDs, g.m.oirs, 0.85)
		rq.Path = oirPath + "/" + id + "/" + g.version(g.m.oirs[id], g.m.oirs)
	} else {
		id, owner = g.freshID(oirIDs, g.m.oirs)
		rq.Path = oirPath + "/" + id
	}
	g.setCaller(rq, [][]string{{sc}, {cmsa}}, owner)
	rq.Method = "PUT"

	n := 1
	if g.chance(0.25) {
		n = 2
	}
	var extents []api.Volume4D
	for range n {
		v := g.volume4(-15, 60, 2, 120, 0.97)
		if g.chance(0.02) {
			v.TimeEnd = farFuture
		}
		g.maybeBadVolume(&v, 0.04)
		extents = append(extents, v)
	}
	state := "Accepted"
	if update || g.chance(0.08) {
		state = pick(g, []string{"Accepted", "Accepted", "Activated", "Activated", "Activated",
			"Nonconforming", "Contingent"})
	}
	if (state == "Nonconforming" || state == "Contingent") && !slices.Contains(rq.Scopes, cmsa) && g.chance(0.7) {
		state = "Activated" // else mostly 403
	}
	if g.chance(0.02) {
		state = "Ended" // 400
	}
	body := map[string]any{"extents": extents, "state": state, "uss_base_url": "https://" + rq.Caller + ".example/oir"}
	if g.chance(0.02) {
		body["uss_base_url"] = pick(g, []string{"", "http://" + rq.Caller + ".example/oir", "ftp://x"})
	}
	if k := g.key(); k != nil {
		body["key"] = k
	}
	// Non-Accepted states need a subscription (400 without): mostly give one.
	r := g.rnd.Float64()
	if state != "Accepted" {
		r *= 0.75
	}
	newSub := map[string]any{"uss_base_url": "https://" + rq.Caller + ".example/sub",
		"notify_for_constraints": g.chance(0.4)}
	switch {
	case r < 0.35:
		body["new_subscription"] = newSub
	case r < 0.7:
		sid, _ := g.targetID(subIDs, g.m.subs, 0.85)
		// Mostly one of the caller's own subscriptions.
		var own []string
		for _, id := range sortedKeys(g.m.subs) {
			if g.m.subs[id].owner == rq.Caller {
				own = append(own, id)
			}
		}
		if len(own) > 0 && g.chance(0.7) {
			sid = pick(g, own)
		}
		body["subscription_id"] = sid
		if g.chance(0.03) {
			body["new_subscription"] = newSub // both: 400
		}
	}
	if g.chance(0.06) {
		body["requested_ovn_suffix"] = g.suffix()
	}
	rq.Body = mustJSON(body)
}

// suffix is a requested OVN suffix (spec §3.6): a fresh UUIDv7 of now, a
// reused one (400 when it is the OIR's current or a past one), or one whose
// time is 10 minutes off (400).
func (g *generator) suffix() string {
	if len(g.m.suffixes) > 0 && g.chance(0.25) {
		return pick(g, g.m.suffixes)
	}
	t := g.now
	if g.chance(0.15) {
		t = t.Add(-10 * time.Minute)
	}
	ms := uint64(t.UnixMilli())
	s := fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x", ms>>16, ms&0xffff, g.rnd.IntN(0x1000),
		0x8000|g.rnd.IntN(0x4000), g.rnd.Uint64()&0xffffffffffff)
	g.m.suffixes = append(g.m.suffixes, s)
	return s
}

func (g *generator) oirDelete(rq *request) {
	id, owner := g.targetID(oirIDs, g.m.oirs, 0.85)
	g.setCaller(rq, [][]string{{sc}, {cmsa}}, owner)
	rq.Method, rq.Path = "DELETE", oirPath+"/"+id+"/"+g.version(g.m.oirs[id], g.m.oirs)
}

func (g *generator) crQuery(rq *request) {
	rq.Method, rq.Path, rq.Body = "POST", crPath+"/query", mustJSON(g.area())
}

func (g *generator) crGet(rq *request) {
	id, _ := g.targetID(crIDs, g.m.crs, 0.7)
	rq.Method, rq.Path = "GET", crPath+"/"+id
}

func (g *generator) crPut(rq *request, update bool) {
	var id, owner string
	if update {
		id, owner = g.targetID(crIDs, g.m.crs, 0.85)
		rq.Path = crPath + "/" + id + "/" + g.version(g.m.crs[id], g.m.crs)
	} else {
		id, owner = g.freshID(crIDs, g.m.crs)
		rq.Path = crPath + "/" + id
	}
	g.setCaller(rq, [][]string{{cm}}, owner)
	rq.Method = "PUT"
	var extents []api.Volume4D
	for range 1 + g.rnd.IntN(2) {
		v := g.volume4(-10, 60, 5, 180, 0.5) // altitudes optional for constraints
		if g.chance(0.03) {
			v.TimeStart, v.TimeEnd = pick(g, []*api.Time{v.TimeStart, farPast}), farFuture
		}
		g.maybeBadVolume(&v, 0.04)
		extents = append(extents, v)
	}
	rq.Body = mustJSON(map[string]any{"extents": extents, "uss_base_url": "https://" + rq.Caller + ".example/cr"})
}

func (g *generator) crDelete(rq *request) {
	id, owner := g.targetID(crIDs, g.m.crs, 0.85)
	g.setCaller(rq, [][]string{{cm}}, owner)
	rq.Method, rq.Path = "DELETE", crPath+"/"+id+"/"+g.version(g.m.crs[id], g.m.crs)
}

func (g *generator) subQuery(rq *request) {
	rq.Method, rq.Path, rq.Body = "POST", subPath+"/query", mustJSON(g.area())
}

func (g *generator) subGet(rq *request) {
	id, owner := g.targetID(subIDs, g.m.subs, 0.75)
	// Implicit subscriptions' versions are only learnt by reading them.
	if unknown := matching(g.m.subs, func(_ string, e *entity) bool { return e.ovn == "" }); len(unknown) > 0 && g.chance(0.5) {
		id = pick(g, unknown)
		owner = g.m.subs[id].owner
	}
	g.setCaller(rq, [][]string{{cp}, {sc}}, owner)
	rq.Method, rq.Path = "GET", subPath+"/"+id
}

func (g *generator) subPut(rq *request, update bool) {
	var id, owner string
	if update {
		id, owner = g.targetID(subIDs, g.m.subs, 0.85)
		rq.Path = subPath + "/" + id + "/" + g.version(g.m.subs[id], g.m.subs)
	} else {
		id, owner = g.freshID(subIDs, g.m.subs)
		rq.Path = subPath + "/" + id
	}
	g.setCaller(rq, [][]string{{cp}, {sc}}, owner)
	rq.Method = "PUT"
	// Start within the 5-minute past tolerance or later, sometimes too early
	// (400); 24 h at most, sometimes more (400); bounds sometimes absent.
	v := g.volume4(-4, 30, 10, 360, 0.3)
	if g.chance(0.05) {
		v.TimeStart = g.at(-10 * time.Minute)
	}
	if g.chance(0.04) {
		v.TimeEnd = g.at(25 * time.Hour)
	}
	if g.chance(0.2) {
		v.TimeStart = nil
	}
	if g.chance(0.15) {
		v.TimeEnd = nil
	}
	g.maybeBadVolume(&v, 0.04)
	nOps, nCons := g.chance(0.75), g.chance(0.5)
	if !nOps && !nCons {
		nOps = true
	}
	if g.chance(0.04) {
		nOps, nCons = false, false // 400
	}
	body := map[string]any{"extents": v, "uss_base_url": "https://" + rq.Caller + ".example/sub",
		"notify_for_operational_intents": nOps, "notify_for_constraints": nCons}
	rq.Body = mustJSON(body)
}

func (g *generator) subDelete(rq *request) {
	id, owner := g.targetID(subIDs, g.m.subs, 0.85)
	// Subscriptions with dependents cannot be deleted (400, §6.3).
	inUse := matching(g.m.subs, func(id string, _ *entity) bool {
		return len(matching(g.m.oirs, func(_ string, o *entity) bool { return o.sub == id })) > 0
	})
	if len(inUse) > 0 && g.chance(0.3) {
		id = pick(g, inUse)
		owner = g.m.subs[id].owner
	}
	g.setCaller(rq, [][]string{{cp}, {sc}}, owner)
	rq.Method, rq.Path = "DELETE", subPath+"/"+id+"/"+g.version(g.m.subs[id], g.m.subs)
}

func (g *generator) report(rq *request) {
	rq.Method, rq.Path = "POST", "/dss/v1/reports"
	rq.Body = mustJSON(map[string]any{"exchange": map[string]any{
		"url": "https://uss-b.example/uss/v1/operational_intents/" + pick(g, oirIDs), "method": "GET",
		"recorder_role": "Client", "request_time": g.at(0), "response_code": 500, "problem": "timeout",
	}})
}

// evict asks the target's store itself (evictPath, not an F3548 endpoint)
// to run one eviction batch, or a dry run, with a cut-off some retention
// before the request time: the same operation on every store must remove
// the same entities, which later requests then miss alike. A negative
// retention puts the cut-off ahead of the clock, so that live entities, with
// the keys and subscriptions they take part in, go too (as from a proposer
// whose clock runs ahead): entities rarely end within a run otherwise.
func (g *generator) evict(rq *request) {
	rq.Method, rq.Path = "POST", evictPath
	retention := pick(g, []time.Duration{0, time.Minute, time.Hour, -20 * time.Minute, -45 * time.Minute, -3 * time.Hour})
	rq.Body = mustJSON(map[string]any{"retention_ms": retention.Milliseconds(), "limit": pick(g, []int{1, 3, 50, 0}),
		"dry_run": g.chance(0.2)})
}

var ussIDs = []string{"uss-a", "uss-b", "uss-c", "uss-d", "uss-unknown"}

// heartbeat records a heartbeat (docs/spec/aux.md H1–H6), with or without
// explicit times, sometimes with a bad parameter.
func (g *generator) heartbeat(rq *request) {
	q := url.Values{"source": {pick(g, []string{"cron", "startup", "manual"})}}
	if g.chance(0.5) {
		q.Set("timestamp", g.now.Add(-time.Duration(g.rnd.IntN(1e9))).Format(time.RFC3339Nano))
	}
	if g.chance(0.5) {
		q.Set("next_heartbeat_expected_before", g.now.Add(time.Minute).Format(time.RFC3339Nano))
	}
	if g.chance(0.1) {
		q.Set(pick(g, []string{"source", "timestamp", "next_heartbeat_expected_before"}), "")
	}
	rq.Method, rq.Path = "PUT", "/aux/v1/pool/dss_instances/heartbeat?"+q.Encode()
}

func (g *generator) availGet(rq *request) {
	rq.Method, rq.Path = "GET", availPath+"/"+pick(g, ussIDs)
}

// availPut sets a USS Down or Normal: Down makes its Accepted OIRs drop out
// of others' key checks (spec §7), which is where availability meets SCD.
func (g *generator) availPut(rq *request) {
	u := pick(g, ussIDs)
	old := g.m.avail[u]
	switch r := g.rnd.Float64(); {
	case r < 0.15 && len(g.m.stale) > 0:
		old = pick(g, g.m.stale)
	case r < 0.22:
		old = ""
	case r < 0.25:
		old = "wrong-version"
	}
	rq.Method, rq.Path = "PUT", availPath+"/"+u
	rq.Body = mustJSON(map[string]any{"old_version": old,
		"availability": pick(g, []string{"Down", "Down", "Normal", "Normal", "Unknown", "down", "", "Bogus"})})
}

// --- learning ------------------------------------------------------------

// learn updates the model from the first target's answer to rq.
func (g *generator) learn(rq *request, res response) {
	segs := strings.Split(strings.TrimPrefix(rq.Path, "/dss/v1/"), "/")
	var m map[string]*entity
	switch segs[0] {
	case "operational_intent_references":
		m = g.m.oirs
	case "constraint_references":
		m = g.m.crs
	case "subscriptions":
		m = g.m.subs
	}
	if m != nil && len(segs) >= 2 {
		switch {
		case res.Status == 404 && (rq.Method == "GET" || rq.Method == "DELETE"):
			g.forget(m, segs[1]) // e.g. an implicit subscription deleted with its OIR
		case res.Status == 200 && rq.Method == "DELETE":
			g.forget(m, segs[1])
			return
		}
	}
	if res.Status >= 300 || !strings.HasPrefix(res.CType, "application/json") {
		return
	}
	var v any
	if err := json.Unmarshal([]byte(res.Body), &v); err != nil {
		return
	}
	if segs[0] == "uss_availability" {
		if o, ok := v.(map[string]any); ok {
			if ver, ok := o["version"].(string); ok && len(segs) > 1 {
				g.setVersion(&entity{ovn: g.m.avail[segs[1]]}, ver)
				g.m.avail[segs[1]] = ver
			}
		}
		return
	}
	g.walk(v, rq.Caller)
}

func (g *generator) forget(m map[string]*entity, id string) {
	if e := m[id]; e != nil {
		g.setVersion(e, "")
		delete(m, id)
	}
}

// setVersion records e's new OVN or version, keeping the old one as stale.
func (g *generator) setVersion(e *entity, v string) {
	if e.ovn != "" && e.ovn != v {
		g.m.stale = append(g.m.stale, e.ovn)
		if len(g.m.stale) > 40 {
			g.m.stale = g.m.stale[1:]
		}
	}
	e.ovn = v
}

// walk finds the entities in a JSON answer: OIR and CR references (id,
// manager, ovn; OIRs have a state) and subscriptions (id, version,
// notification_index: only ever shown to their manager, the caller).
func (g *generator) walk(v any, caller string) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			g.walk(e, caller)
		}
	case map[string]any:
		id, _ := x["id"].(string)
		mgr, _ := x["manager"].(string)
		ovn, hasOVN := x["ovn"].(string)
		switch {
		case id != "" && mgr != "" && hasOVN:
			m := g.m.crs
			sid := ""
			if _, ok := x["state"]; ok {
				m = g.m.oirs
				if sid, _ = x["subscription_id"].(string); sid != "" && sid != placeholderSub && g.m.subs[sid] == nil {
					g.m.subs[sid] = &entity{owner: mgr} // implicit: version learnt when seen
				}
			}
			e := m[id]
			if e == nil {
				e = &entity{}
				m[id] = e
			}
			e.sub = sid
			e.owner = mgr
			if ovn != scrubbedOVN {
				g.setVersion(e, ovn)
			}
		case id != "":
			if ver, ok := x["version"].(string); ok {
				if _, ok := x["notification_index"]; ok {
					e := g.m.subs[id]
					if e == nil {
						e = &entity{}
						g.m.subs[id] = e
					}
					e.owner = caller
					g.setVersion(e, ver)
				}
			}
		}
		for _, k := range sortedKeys(x) {
			g.walk(x[k], caller)
		}
	}
}
