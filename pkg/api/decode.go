package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/raftdss/dss/pkg/geo"
	"github.com/raftdss/dss/pkg/models"
)

// badRequest builds the 400-class error every stateless check returns.
func badRequest(format string, args ...any) error {
	return models.Errorf(models.CodeBadRequest, format, args...)
}

// decodeBody unmarshals a request body into v. Spec §1: unknown fields are
// ignored (encoding/json's default), while a missing or blank body, malformed
// JSON, trailing bytes after the value and wrong JSON types are bad requests.
// json.Unmarshal validates the whole input before decoding, so trailing
// garbage is rejected without a Decoder's extra buffering.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("missing request body")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("malformed JSON request body at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "request body"
		}
		return badRequest("wrong JSON type for %s: got %s, want %s", field, typ.Value, jsonKind(typ.Type.Kind().String()))
	default:
		return badRequest("invalid JSON request body: %v", err)
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "struct", "map", "ptr":
		return "object"
	case "slice", "array":
		return "array"
	case "float32", "float64", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "number"
	case "bool":
		return "boolean"
	}
	return k
}

// path names a member of the request in error messages. It is formatted
// only when a check fails, so the success path builds no strings.
type path struct {
	name  string // e.g. "extents", "area_of_interest"
	index int    // array index, or -1
}

func (p path) String() string {
	if p.index < 0 {
		return p.name
	}
	return p.name + "[" + strconv.Itoa(p.index) + "]"
}

// volume is a Volume4D that passed the non-geometric checks of spec
// §3.2–3.4; cover turns its outline into cells.
type volume struct {
	where              path
	start, end         time.Time
	hasStart, hasEnd   bool
	lower, upper       float32
	hasLower, hasUpper bool
	circle             *Circle
	polygon            *Polygon
}

// parseVolume4D applies spec §3.2–3.4 to one Volume4D: times, altitudes, and
// exactly one well-formed outline (every caller needs a footprint, §3.4).
func parseVolume4D(v *Volume4D, where path) (volume, error) {
	out := volume{where: where}
	if v == nil {
		return out, badRequest("missing %s", where)
	}
	var err error
	if v.TimeStart != nil {
		if out.start, err = parseTime(v.TimeStart, where, "time_start"); err != nil {
			return out, err
		}
		out.hasStart = true
	}
	if v.TimeEnd != nil {
		if out.end, err = parseTime(v.TimeEnd, where, "time_end"); err != nil {
			return out, err
		}
		out.hasEnd = true
	}
	// Strictly after: equal bounds are a valid instant window (§3.4).
	if out.hasStart && out.hasEnd && out.start.After(out.end) {
		return out, badRequest("%s: time_start %s is after time_end %s", where, v.TimeStart.Value, v.TimeEnd.Value)
	}
	vol := v.Volume
	if vol == nil {
		return out, badRequest("%s: missing volume", where)
	}
	if vol.AltitudeLower != nil {
		if out.lower, err = parseAltitude(vol.AltitudeLower, where, "altitude_lower"); err != nil {
			return out, err
		}
		out.hasLower = true
	}
	if vol.AltitudeUpper != nil {
		if out.upper, err = parseAltitude(vol.AltitudeUpper, where, "altitude_upper"); err != nil {
			return out, err
		}
		out.hasUpper = true
	}
	if out.hasLower && out.hasUpper && out.lower > out.upper {
		return out, badRequest("%s: altitude_lower %v is above altitude_upper %v", where, vol.AltitudeLower.Value, vol.AltitudeUpper.Value)
	}
	switch {
	case vol.OutlineCircle != nil && vol.OutlinePolygon != nil:
		return out, badRequest("%s: both outline_circle and outline_polygon given; want exactly one", where)
	case vol.OutlineCircle != nil:
		c := vol.OutlineCircle
		if c.Center == nil {
			return out, badRequest("%s: outline_circle is missing center", where)
		}
		if c.Radius == nil {
			return out, badRequest("%s: outline_circle is missing radius", where)
		}
		if !(c.Radius.Value > 0) {
			return out, badRequest("%s: outline_circle radius must be > 0, got %v", where, c.Radius.Value)
		}
		if err := checkLatLng(*c.Center, where, "outline_circle.center", -1); err != nil {
			return out, err
		}
		out.circle = c
	case vol.OutlinePolygon != nil:
		// The vertex limit comes first: it bounds the loop below and every
		// later step (pkg/geo charges the request's total as it covers).
		if n := len(vol.OutlinePolygon.Vertices); n > geo.MaxVerticesPerPolygon {
			return out, badRequest("%s: outline_polygon has %d vertices; at most %d are allowed", where, n, geo.MaxVerticesPerPolygon)
		}
		for i := range vol.OutlinePolygon.Vertices {
			if err := checkLatLng(vol.OutlinePolygon.Vertices[i], where, "outline_polygon.vertices", i); err != nil {
				return out, err
			}
		}
		out.polygon = vol.OutlinePolygon
	default:
		return out, badRequest("%s: missing outline: want outline_circle or outline_polygon", where)
	}
	return out, nil
}

// checkLatLng is the coordinate range rule of spec §3.4 (pkg/geo checks it
// too; checking here lets the message name the request member). index is
// the vertex index, or -1.
func checkLatLng(p LatLngPoint, where path, member string, index int) error {
	if p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180 {
		return nil
	}
	m := path{where.String() + ".volume." + member, index}
	if !(p.Lat >= -90 && p.Lat <= 90) {
		return badRequest("%s: latitude %v is outside [-90, 90]", m, p.Lat)
	}
	return badRequest("%s: longitude %v is outside [-180, 180]", m, p.Lng)
}

// parseTime reads a Time (spec §3.2): RFC 3339 with up to nanosecond
// precision and any offset; format is not validated (reference parity).
// Times are kept in UTC so that operations encode identically on every
// replica whatever offset the client used.
func parseTime(t *Time, where path, member string) (time.Time, error) {
	v, err := time.Parse(time.RFC3339Nano, t.Value)
	if err != nil {
		return time.Time{}, badRequest("%s.%s: value %q is not an RFC 3339 time", where, member, truncate(t.Value))
	}
	return v.UTC(), nil
}

// parseAltitude reads an Altitude (spec §3.3): units "M" and reference "W84"
// exactly. The value is stored as float32 (reference parity); a value that
// does not fit would become ±Inf, so it is rejected.
func parseAltitude(a *Altitude, where path, member string) (float32, error) {
	if a.Units != "M" {
		return 0, badRequest("%s.volume.%s.units: %q is not supported; want \"M\"", where, member, truncate(a.Units))
	}
	if a.Reference != "W84" {
		return 0, badRequest("%s.volume.%s.reference: %q is not supported; want \"W84\"", where, member, truncate(a.Reference))
	}
	f := float32(a.Value)
	if math.IsInf(float64(f), 0) || math.IsNaN(a.Value) {
		return 0, badRequest("%s.volume.%s.value: %v is out of range", where, member, a.Value)
	}
	return f, nil
}

// cover returns the level-13 cells of a parsed volume's outline through
// pkg/geo (spec §4), charged to the request's budget b. geo's coded errors
// keep their code (CodeAreaTooLarge must survive: the subscription query
// turns it into 413; CodeUnavailable is the request's deadline passing
// during the covering) and gain the member's name.
func (v *volume) cover(b *geo.Budget) ([]models.CellID, error) {
	var cells []models.CellID
	var err error
	if v.circle != nil {
		c := v.circle
		cells, err = b.CoverCircle(models.LatLng{Lat: c.Center.Lat, Lng: c.Center.Lng}, c.Radius.Value)
	} else {
		verts := make([]models.LatLng, len(v.polygon.Vertices))
		for i, p := range v.polygon.Vertices {
			verts[i] = models.LatLng{Lat: p.Lat, Lng: p.Lng}
		}
		cells, err = b.CoverPolygon(verts)
	}
	if err != nil {
		code := models.CodeOf(err)
		if code != models.CodeAreaTooLarge && code != models.CodeUnavailable {
			code = models.CodeBadRequest
		}
		msg := err.Error()
		var me *models.Error
		if errors.As(err, &me) {
			msg = me.Message
		}
		return nil, &models.Error{Code: code, Message: v.where.String() + ": " + msg, Cause: errors.Unwrap(err)}
	}
	if len(cells) == 0 {
		// Defensive: a footprint always touches at least one cell; an empty
		// covering would make the entity invisible to every search.
		return nil, badRequest("%s: outline covers no area", v.where)
	}
	return cells, nil
}

// toModel covers a single parsed volume into a models.Volume4D carrying
// exactly the bounds the request gave (absent bounds do not filter, §4).
func (v *volume) toModel(b *geo.Budget) (models.Volume4D, error) {
	cells, err := v.cover(b)
	if err != nil {
		return models.Volume4D{}, err
	}
	out := models.Volume4D{Cells: cells}
	if v.hasStart {
		t := v.start
		out.StartTime = &t
	}
	if v.hasEnd {
		t := v.end
		out.EndTime = &t
	}
	if v.hasLower {
		f := v.lower
		out.AltitudeLower = &f
	}
	if v.hasUpper {
		f := v.upper
		out.AltitudeUpper = &f
	}
	return out, nil
}

// extents is the union of an extents array (spec §3.4) before covering.
type extents struct {
	vols []volume
	u    volume // union bounds; where/outline unused
}

// parseExtents parses every volume of an OIR/CR extents array and computes
// the union bounds: earliest start, latest end, lowest lower and highest
// upper altitude, each absent as soon as one volume lacks it.
func parseExtents(in []Volume4D) (extents, error) {
	if in == nil {
		return extents{}, badRequest("missing extents")
	}
	if len(in) == 0 {
		// §3.4: an empty array has no times, so the union lacks them.
		return extents{}, badRequest("extents is empty: at least one volume with time_start and time_end is required")
	}
	// The request-wide vertex limit is checked before any volume is parsed
	// or covered: summing lengths is cheap, covering is not.
	vertices := 0
	for i := range in {
		if vol := in[i].Volume; vol != nil {
			if vol.OutlinePolygon != nil {
				vertices += len(vol.OutlinePolygon.Vertices)
			} else if vol.OutlineCircle != nil {
				vertices += geo.CircleVertices
			}
		}
	}
	if vertices > geo.MaxVerticesPerRequest {
		return extents{}, badRequest("extents: the outlines have %d vertices in all; at most %d are allowed per request", vertices, geo.MaxVerticesPerRequest)
	}
	e := extents{vols: make([]volume, len(in))}
	for i := range in {
		v, err := parseVolume4D(&in[i], path{"extents", i})
		if err != nil {
			return extents{}, err
		}
		e.vols[i] = v
	}
	e.u = e.vols[0]
	for _, v := range e.vols[1:] {
		e.u.hasStart = e.u.hasStart && v.hasStart
		if e.u.hasStart && v.start.Before(e.u.start) {
			e.u.start = v.start
		}
		e.u.hasEnd = e.u.hasEnd && v.hasEnd
		if e.u.hasEnd && v.end.After(e.u.end) {
			e.u.end = v.end
		}
		e.u.hasLower = e.u.hasLower && v.hasLower
		if e.u.hasLower && v.lower < e.u.lower {
			e.u.lower = v.lower
		}
		e.u.hasUpper = e.u.hasUpper && v.hasUpper
		if e.u.hasUpper && v.upper > e.u.upper {
			e.u.upper = v.upper
		}
	}
	return e, nil
}

// checkTimes applies the union time rules of OIR and CR PUTs: start and end
// present, end not in the past (spec §6.1 A, §6.2 A).
func (e *extents) checkTimes(now time.Time) error {
	if !e.u.hasStart {
		return badRequest("extents: time_start is required in every volume")
	}
	if !e.u.hasEnd {
		return badRequest("extents: time_end is required in every volume")
	}
	if e.u.end.Before(now) {
		return badRequest("extents: time_end %s is in the past", e.u.end.Format(time.RFC3339Nano))
	}
	return nil
}

// cells covers every volume and returns the union of the cell sets. The
// area limit applies to each outline separately (§4 rule 5); the cell,
// vertex and work limits of b to all of them together.
func (e *extents) cells(b *geo.Budget) ([]models.CellID, error) {
	var all []models.CellID
	for i := range e.vols {
		c, err := e.vols[i].cover(b)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = c
		} else {
			all = models.UnionCells(all, c)
		}
	}
	return all, nil
}

// checkBaseURL is spec §3.5: non-empty; unless http is allowed, it must parse
// as a URL with scheme https.
func checkBaseURL(field, s string, allowHTTP bool) error {
	if s == "" {
		return badRequest("missing %s", field)
	}
	if allowHTTP {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return badRequest("%s %q is not a valid URL", field, truncate(s))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		return badRequest("%s %q must use TLS (https)", field, truncate(s))
	}
	return badRequest("%s %q must be an https URL", field, truncate(s))
}

// parseID wraps models.ParseID, treating "" as missing (spec §1 Deviation).
func parseID(field, s string) (models.ID, error) {
	if s == "" {
		return "", badRequest("missing %s", field)
	}
	id, err := models.ParseID(s)
	if err != nil {
		var me *models.Error
		if errors.As(err, &me) {
			return "", badRequest("%s: %s", field, me.Message)
		}
		return "", badRequest("%s: %v", field, err)
	}
	return id, nil
}

// ovnSuffixSkew is the clock skew allowed between a requested OVN suffix's
// embedded timestamp and the request time (spec §3.6, §14).
const ovnSuffixSkew = 5 * time.Minute

// parseOVNSuffix validates requested_ovn_suffix (spec §3.6): a UUIDv7 in the
// dashed 8-4-4-4-12 form with the RFC 4122 variant, whose 48-bit Unix
// millisecond timestamp lies within ±5 minutes of now. It returns the suffix
// in lowercase, the canonical form the reference prints.
func parseOVNSuffix(s string, now time.Time) (string, error) {
	if s == "" {
		// Present but empty is a bad value, not an absent member: a client
		// that means "derived OVN" omits the member or sends null.
		return "", badRequest("requested_ovn_suffix is empty: want a UUIDv7, or omit the member for a derived OVN")
	}
	if len(s) != 36 {
		return "", badRequest("requested_ovn_suffix %q is not a UUIDv7 in 8-4-4-4-12 form", truncate(s))
	}
	b := []byte(s)
	var ms int64
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", badRequest("requested_ovn_suffix %q is not a UUIDv7 in 8-4-4-4-12 form", s)
			}
			continue
		}
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
			b[i] = c + ('a' - 'A')
		default:
			return "", badRequest("requested_ovn_suffix %q is not hexadecimal", s)
		}
		// The first 12 hex digits (8 + 4, skipping the dash) are the
		// big-endian Unix time in milliseconds (RFC 9562 §5.7).
		if i < 13 {
			ms = ms<<4 | int64(d)
		}
	}
	if b[14] != '7' {
		return "", badRequest("requested_ovn_suffix %q is not a version 7 UUID", s)
	}
	switch b[19] {
	case '8', '9', 'a', 'b':
	default:
		return "", badRequest("requested_ovn_suffix %q is not an RFC 4122 variant UUID", s)
	}
	ts := time.UnixMilli(ms)
	if d := ts.Sub(now); d > ovnSuffixSkew || d < -ovnSuffixSkew {
		return "", badRequest("requested_ovn_suffix %q has timestamp %s, more than %v from server time %s",
			s, ts.UTC().Format(time.RFC3339Nano), ovnSuffixSkew, now.UTC().Format(time.RFC3339Nano))
	}
	return string(b), nil
}

// truncate bounds client strings echoed in error messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// parseKey checks the entries of an OIR PUT's key (spec §7; utm.yaml Key =
// array of EntityOVN, 16 to 128 characters). Absent, null and [] are all
// the empty key. A "" or null entry (null decodes to "") and an entry of
// the wrong length are rejected: no OVN can have that form (§3.6), so the
// entry is a client bug that would otherwise surface as a puzzling 409.
// The length is counted in characters, as JSON Schema's minLength does.
func parseKey(in []string) ([]models.OVN, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]models.OVN, len(in))
	for i, k := range in {
		if k == "" {
			return nil, badRequest("key[%d] is empty or null: want an OVN of %d to %d characters",
				i, models.MinOVNLength, models.MaxOVNLength)
		}
		if c := utf8.RuneCountInString(k); c < models.MinOVNLength || c > models.MaxOVNLength {
			return nil, badRequest("key[%d] %q has %d characters: want an OVN of %d to %d characters",
				i, truncate(k), c, models.MinOVNLength, models.MaxOVNLength)
		}
		out[i] = models.OVN(k)
	}
	return out, nil
}
