package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// Binary codec of the SCD operations, the payload of every log entry.
//
// Why not encoding/json: a JSON time decodes into a zone chosen by the
// decoding host's local zone, and decoding a PUT OIR costs tens of µs and
// dozens of allocations on every replica; why not gob: its encoding is not
// stable across Go versions. This format is canonical: every value has
// exactly one encoding, and Decode rejects anything else (non-minimal
// varints, booleans other than 0/1, trailing bytes), so re-encoding a decoded
// entry reproduces it byte for byte (FuzzDecode checks it).
//
//	string       uvarint length + bytes
//	bool         1 byte, 0 or 1
//	time         varint Unix seconds + uvarint nanoseconds (< 1e9), decoded
//	             as UTC (exact for every time.Time; the zone is not kept)
//	optional X   1 byte presence (0 or 1) + X when present
//	float32      4 bytes IEEE bits, big endian
//	cells        uvarint count + varint each
//	OVN list     uvarint count + strings
//	Volume4D     cells, optional time start, optional time end,
//	             optional float32 lower, optional float32 upper
//
// Fields follow in the order they are declared in pkg/scd/operations.go.
// Adding a field to an operation changes its encoding: give the operation a
// new OpType (a replica running the old code must refuse the new entries,
// which it does: it cannot decode them and stops) rather than reinterpret
// entries already in logs. TestCodecCoversEveryField fails until the codec
// handles a new field.
//
// The per-USS quotas are such fields. A PUT whose quota is 0 keeps its
// original type and exactly its original encoding (the quota is not
// written), so entries logged before quotas existed decode as PUTs without
// a quota, which is how they were applied. A PUT with a quota has a type of
// its own (Op...WithQuota): the original encoding followed by the quota as
// a uvarint, which must not be 0 there (0 has exactly one encoding: the
// original type).

// maxDecodeCount bounds a decoded count before allocating, on top of the
// check that the remaining input can hold that many elements.
const maxDecodeCount = 1 << 24

// Register adds every SCD operation type to reg.
func Register(reg *store.Registry[repos.Repo]) {
	for _, c := range append(codecs[:len(codecs):len(codecs)], poolCodecs...) {
		reg.Register(c.t, store.Codec[repos.Repo]{Name: c.name, Encode: c.encode, Decode: c.decode})
	}
}

// NewRegistry returns a registry holding every SCD operation type.
func NewRegistry() *store.Registry[repos.Repo] {
	reg := store.NewRegistry[repos.Repo]()
	Register(reg)
	return reg
}

type opCodec struct {
	t      store.OpType
	name   string
	encode func(scd.Operation) ([]byte, error)
	decode func([]byte) (scd.Operation, error)
}

// codecOf builds the codec of operation type *T from its field encoder and
// decoder; the casts are checked so a mis-registered type is an error.
func codecOf[T any, P interface {
	*T
	scd.Operation
}](name string, enc func(*encoder, *T), dec func(*decoder, *T)) opCodec {
	var zero P = new(T)
	return codecOfType[T, P](zero.Type(), name, enc, dec)
}

// codecOfType is codecOf for a type other than the zero value's (the
// quota variants of the PUTs).
func codecOfType[T any, P interface {
	*T
	scd.Operation
}](t store.OpType, name string, enc func(*encoder, *T), dec func(*decoder, *T)) opCodec {
	return opCodec{
		t:    t,
		name: name,
		encode: func(op scd.Operation) ([]byte, error) {
			v, ok := op.(P)
			if !ok || v == nil {
				return nil, fmt.Errorf("codec %s: got %T", name, op)
			}
			e := &encoder{}
			enc(e, (*T)(v))
			return e.b, nil
		},
		decode: func(b []byte) (scd.Operation, error) {
			d := &decoder{b: b}
			var v T
			dec(d, &v)
			if d.err == nil && len(d.b) > 0 {
				d.fail("%d trailing bytes", len(d.b))
			}
			if d.err != nil {
				return nil, fmt.Errorf("codec %s: %w", name, d.err)
			}
			return P(&v), nil
		},
	}
}

var codecs = []opCodec{
	codecOf("QueryOperationalIntents",
		func(e *encoder, o *scd.QueryOperationalIntents) { e.str(o.Caller); e.volume(&o.Area) },
		func(d *decoder, o *scd.QueryOperationalIntents) { o.Caller = d.str(); d.volume(&o.Area) }),
	codecOf("GetOperationalIntent",
		func(e *encoder, o *scd.GetOperationalIntent) { e.str(o.Caller); e.str(string(o.ID)) },
		func(d *decoder, o *scd.GetOperationalIntent) { o.Caller = d.str(); o.ID = models.ID(d.str()) }),
	codecOf("PutOperationalIntent", encodePutOIR, decodePutOIR),
	codecOf("DeleteOperationalIntent",
		func(e *encoder, o *scd.DeleteOperationalIntent) {
			e.str(o.Caller)
			e.str(string(o.ID))
			e.str(string(o.OVN))
		},
		func(d *decoder, o *scd.DeleteOperationalIntent) {
			o.Caller = d.str()
			o.ID = models.ID(d.str())
			o.OVN = models.OVN(d.str())
		}),
	codecOf("QueryConstraints",
		func(e *encoder, o *scd.QueryConstraints) { e.str(o.Caller); e.volume(&o.Area) },
		func(d *decoder, o *scd.QueryConstraints) { o.Caller = d.str(); d.volume(&o.Area) }),
	codecOf("GetConstraint",
		func(e *encoder, o *scd.GetConstraint) { e.str(o.Caller); e.str(string(o.ID)) },
		func(d *decoder, o *scd.GetConstraint) { o.Caller = d.str(); o.ID = models.ID(d.str()) }),
	codecOf("PutConstraint", encodePutConstraint, decodePutConstraint),
	codecOf("DeleteConstraint",
		func(e *encoder, o *scd.DeleteConstraint) {
			e.str(o.Caller)
			e.str(string(o.ID))
			e.str(string(o.OVN))
		},
		func(d *decoder, o *scd.DeleteConstraint) {
			o.Caller = d.str()
			o.ID = models.ID(d.str())
			o.OVN = models.OVN(d.str())
		}),
	codecOf("QuerySubscriptions",
		func(e *encoder, o *scd.QuerySubscriptions) { e.str(o.Caller); e.time(o.Now); e.volume(&o.Area) },
		func(d *decoder, o *scd.QuerySubscriptions) { o.Caller = d.str(); o.Now = d.time(); d.volume(&o.Area) }),
	codecOf("GetSubscription",
		func(e *encoder, o *scd.GetSubscription) { e.str(o.Caller); e.str(string(o.ID)) },
		func(d *decoder, o *scd.GetSubscription) { o.Caller = d.str(); o.ID = models.ID(d.str()) }),
	codecOf("PutSubscription", encodePutSubscription, decodePutSubscription),
	codecOf("DeleteSubscription",
		func(e *encoder, o *scd.DeleteSubscription) {
			e.str(o.Caller)
			e.str(string(o.ID))
			e.str(o.Version)
		},
		func(d *decoder, o *scd.DeleteSubscription) {
			o.Caller = d.str()
			o.ID = models.ID(d.str())
			o.Version = d.str()
		}),
	codecOf("GetUssAvailability",
		func(e *encoder, o *scd.GetUssAvailability) { e.str(o.USS) },
		func(d *decoder, o *scd.GetUssAvailability) { o.USS = d.str() }),
	codecOf("PutUssAvailability",
		func(e *encoder, o *scd.PutUssAvailability) {
			e.time(o.Now)
			e.str(o.USS)
			e.str(o.OldVersion)
			e.str(string(o.Availability))
		},
		func(d *decoder, o *scd.PutUssAvailability) {
			o.Now = d.time()
			o.USS = d.str()
			o.OldVersion = d.str()
			o.Availability = models.Availability(d.str())
		}),
	codecOfType(scd.OpPutOperationalIntentWithQuota, "PutOperationalIntentWithQuota",
		func(e *encoder, o *scd.PutOperationalIntent) { encodePutOIR(e, o); e.quota(o.MaxEntitiesPerCell) },
		func(d *decoder, o *scd.PutOperationalIntent) { decodePutOIR(d, o); o.MaxEntitiesPerCell = d.quota() }),
	codecOfType(scd.OpPutConstraintWithQuota, "PutConstraintWithQuota",
		func(e *encoder, o *scd.PutConstraint) { encodePutConstraint(e, o); e.quota(o.MaxEntitiesPerCell) },
		func(d *decoder, o *scd.PutConstraint) { decodePutConstraint(d, o); o.MaxEntitiesPerCell = d.quota() }),
	codecOfType(scd.OpPutSubscriptionWithQuota, "PutSubscriptionWithQuota",
		func(e *encoder, o *scd.PutSubscription) {
			encodePutSubscription(e, o)
			e.quota(o.MaxSubscriptionsPerCell)
		},
		func(d *decoder, o *scd.PutSubscription) {
			decodePutSubscription(d, o)
			o.MaxSubscriptionsPerCell = d.quota()
		}),
	codecOf("EvictExpired",
		func(e *encoder, o *scd.EvictExpired) { e.time(o.Before); e.uvarint(uint64(o.Limit)) },
		func(d *decoder, o *scd.EvictExpired) { o.Before = d.time(); o.Limit = d.u32() }),
	codecOf("PreviewEviction",
		func(e *encoder, o *scd.PreviewEviction) { e.time(o.Before) },
		func(d *decoder, o *scd.PreviewEviction) { o.Before = d.time() }),
}

func encodePutConstraint(e *encoder, o *scd.PutConstraint) {
	e.str(o.Caller)
	e.time(o.Now)
	e.str(string(o.ID))
	e.str(string(o.OVN))
	e.volume(&o.Extents)
	e.str(o.USSBaseURL)
}

func decodePutConstraint(d *decoder, o *scd.PutConstraint) {
	o.Caller = d.str()
	o.Now = d.time()
	o.ID = models.ID(d.str())
	o.OVN = models.OVN(d.str())
	d.volume(&o.Extents)
	o.USSBaseURL = d.str()
}

func encodePutSubscription(e *encoder, o *scd.PutSubscription) {
	e.str(o.Caller)
	e.time(o.Now)
	e.str(string(o.ID))
	e.str(o.Version)
	e.volume(&o.Extents)
	e.str(o.USSBaseURL)
	e.bool(o.NotifyForOperationalIntents)
	e.bool(o.NotifyForConstraints)
}

func decodePutSubscription(d *decoder, o *scd.PutSubscription) {
	o.Caller = d.str()
	o.Now = d.time()
	o.ID = models.ID(d.str())
	o.Version = d.str()
	d.volume(&o.Extents)
	o.USSBaseURL = d.str()
	o.NotifyForOperationalIntents = d.bool()
	o.NotifyForConstraints = d.bool()
}

func encodePutOIR(e *encoder, o *scd.PutOperationalIntent) {
	e.str(o.Caller)
	e.time(o.Now)
	e.str(string(o.ID))
	e.str(string(o.OVN))
	e.str(string(o.State))
	e.volume(&o.Extents)
	e.ovns(o.Key)
	e.str(o.USSBaseURL)
	e.str(string(o.SubscriptionID))
	e.bool(o.NewSubscription != nil)
	if o.NewSubscription != nil {
		e.str(o.NewSubscription.USSBaseURL)
		e.bool(o.NewSubscription.NotifyForConstraints)
	}
	e.str(string(o.NewSubscriptionID))
	e.str(string(o.RequestedOVN))
}

func decodePutOIR(d *decoder, o *scd.PutOperationalIntent) {
	o.Caller = d.str()
	o.Now = d.time()
	o.ID = models.ID(d.str())
	o.OVN = models.OVN(d.str())
	o.State = models.OperationalIntentState(d.str())
	d.volume(&o.Extents)
	o.Key = d.ovns()
	o.USSBaseURL = d.str()
	o.SubscriptionID = models.ID(d.str())
	if d.bool() {
		o.NewSubscription = &scd.NewSubscription{USSBaseURL: d.str(), NotifyForConstraints: d.bool()}
	}
	o.NewSubscriptionID = models.ID(d.str())
	o.RequestedOVN = models.OVN(d.str())
}

// encoder appends to b; it cannot fail.
type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) time(t time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

func (e *encoder) optTime(t *time.Time) {
	e.bool(t != nil)
	if t != nil {
		e.time(*t)
	}
}

func (e *encoder) optF32(f *float32) {
	e.bool(f != nil)
	if f != nil {
		e.b = binary.BigEndian.AppendUint32(e.b, math.Float32bits(*f))
	}
}

func (e *encoder) ovns(l []models.OVN) {
	e.uvarint(uint64(len(l)))
	for _, o := range l {
		e.str(string(o))
	}
}

// quota writes a non-zero quota (a zero one is never encoded).
func (e *encoder) quota(q uint32) { e.uvarint(uint64(q)) }

func (e *encoder) volume(v *models.Volume4D) {
	e.uvarint(uint64(len(v.Cells)))
	for _, c := range v.Cells {
		e.b = binary.AppendVarint(e.b, int64(c))
	}
	e.optTime(v.StartTime)
	e.optTime(v.EndTime)
	e.optF32(v.AltitudeLower)
	e.optF32(v.AltitudeUpper)
}

// decoder consumes b. The first error sticks: later reads return zero
// values, so decode functions need no error checks between fields.
type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		if n < 0 {
			d.err = errors.New("uvarint overflows 64 bits")
		}
		return 0
	}
	// Canonical: exactly the length AppendUvarint would produce.
	if n != uvarintLen(v) {
		d.fail("non-minimal uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint() // zig-zag, as binary.AppendVarint writes it
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// count reads a count of elements that take at least minSize bytes each and
// refuses counts the remaining input cannot hold, so corrupt input never
// makes the decoder allocate more than the input's size.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > maxDecodeCount || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("count %d exceeds the %d remaining bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = errTruncated
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string {
	return string(d.take(d.count(1)))
}

func (d *decoder) bool() bool {
	p := d.take(1)
	if p == nil {
		return false
	}
	switch p[0] {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("boolean byte %d", p[0])
	return false
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail("nanoseconds %d out of range", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) optTime() *time.Time {
	if !d.bool() {
		return nil
	}
	t := d.time()
	if d.err != nil {
		return nil
	}
	return &t
}

func (d *decoder) optF32() *float32 {
	if !d.bool() {
		return nil
	}
	p := d.take(4)
	if p == nil {
		return nil
	}
	f := math.Float32frombits(binary.BigEndian.Uint32(p))
	return &f
}

func (d *decoder) ovns() []models.OVN {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	l := make([]models.OVN, n)
	for i := range l {
		l[i] = models.OVN(d.str())
	}
	if d.err != nil {
		return nil
	}
	return l
}

// u32 reads a uvarint that must fit 32 bits (its range beyond that is the
// operation's to check, in Execute).
func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > math.MaxUint32 {
		d.fail("value %d out of range (0 to %d)", v, uint64(math.MaxUint32))
		return 0
	}
	return uint32(v)
}

// quota reads the quota of a ...WithQuota entry: 1 to 2^32-1.
func (d *decoder) quota() uint32 {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v == 0 || v > math.MaxUint32 {
		d.fail("quota %d out of range (1 to %d)", v, uint64(math.MaxUint32))
		return 0
	}
	return uint32(v)
}

func (d *decoder) volume(v *models.Volume4D) {
	if n := d.count(1); n > 0 {
		v.Cells = make([]models.CellID, n)
		for i := range v.Cells {
			v.Cells[i] = models.CellID(d.varint())
		}
	}
	v.StartTime = d.optTime()
	v.EndTime = d.optTime()
	v.AltitudeLower = d.optF32()
	v.AltitudeUpper = d.optF32()
}
