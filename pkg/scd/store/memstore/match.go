package memstore

import (
	"math"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// stamp is an instant as Unix seconds and nanoseconds: exact for every
// time.Time (Unix nanoseconds in an int64 are not, outside 1678–2262), and
// compared without touching the time.Time.
type stamp struct {
	sec  int64
	nsec int32
}

func stampOf(t time.Time) stamp { return stamp{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

func (a stamp) after(b stamp) bool { return a.sec > b.sec || (a.sec == b.sec && a.nsec > b.nsec) }

// bounds are the time and altitude bounds of a stored entity. Entities
// without altitudes (subscriptions, constraints, which §4 matches without
// altitude anyway) get infinite ones.
//
// A copy sits in every cell index entry of the entity, so the fields are
// laid out by hand in 32 bytes: two stamps would take 16 bytes each, with
// padding.
type bounds struct {
	startSec, endSec   int64
	startNsec, endNsec int32
	lower, upper       float32
}

func newBounds(start, end time.Time, lower, upper float32) bounds {
	return bounds{startSec: start.Unix(), endSec: end.Unix(),
		startNsec: int32(start.Nanosecond()), endNsec: int32(end.Nanosecond()), lower: lower, upper: upper}
}

func (b *bounds) start() stamp { return stamp{sec: b.startSec, nsec: b.startNsec} }
func (b *bounds) end() stamp   { return stamp{sec: b.endSec, nsec: b.endNsec} }

func oirBounds(o *models.OperationalIntent) bounds {
	return newBounds(o.StartTime, o.EndTime, o.AltitudeLower, o.AltitudeUpper)
}

func subBounds(s *models.Subscription) bounds {
	return newBounds(s.StartTime, s.EndTime, float32(math.Inf(-1)), float32(math.Inf(1)))
}

func crBounds(c *models.Constraint) bounds {
	return newBounds(c.StartTime, c.EndTime, float32(math.Inf(-1)), float32(math.Inf(1)))
}

// filter is a query volume's bounds, prepared once per search.
type filter struct {
	hasStart, hasEnd bool
	start, end       stamp
	hasLower         bool
	hasUpper         bool
	lower, upper     float32
}

// newFilter prepares the §4 rules for v; withAltitude is true for OIRs
// only: constraints and subscriptions ignore altitude (reference parity).
func newFilter(v *models.Volume4D, withAltitude bool) filter {
	var f filter
	if v.StartTime != nil {
		f.hasStart, f.start = true, stampOf(*v.StartTime)
	}
	if v.EndTime != nil {
		f.hasEnd, f.end = true, stampOf(*v.EndTime)
	}
	if withAltitude && v.AltitudeLower != nil {
		f.hasLower, f.lower = true, *v.AltitudeLower
	}
	if withAltitude && v.AltitudeUpper != nil {
		f.hasUpper, f.upper = true, *v.AltitudeUpper
	}
	return f
}

// accepts applies spec §4: time `entity.start ≤ query.end && entity.end ≥
// query.start`, altitude `entity.upper ≥ query.lower && entity.lower ≤
// query.upper`, all inclusive, an absent query bound not filtering.
func (f *filter) accepts(b *bounds) bool {
	if f.hasEnd && b.start().after(f.end) {
		return false
	}
	if f.hasStart && f.start.after(b.end()) {
		return false
	}
	if f.hasLower && !(b.upper >= f.lower) {
		return false
	}
	if f.hasUpper && !(b.lower <= f.upper) {
		return false
	}
	return true
}
