package memstore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// Canonical snapshot format, version 1. Equal states encode to identical
// bytes on every node, so Hash can compare replicas.
//
//	magic      8 bytes "RDSSSCD\x00"
//	version    uint32 (big endian) = 1
//	last write time   the newest applied write time (store.Timestamped)
//	availabilities  count, then per record in USS order:
//	                USS, Availability, UpdatedAt
//	subscriptions   count, then per entity in ID order:
//	                ID, Manager, NotificationIndex, USSBaseURL, flags,
//	                StartTime, EndTime, Cells, UpdatedAt
//	constraints     count, then in ID order: ID, Manager, Version, USSBaseURL,
//	                StartTime, EndTime, AltitudeLower?, AltitudeUpper?,
//	                Cells, UpdatedAt
//	operational intents  count, then in ID order: ID, Manager, Version, State,
//	                RequestedOVN, PastOVNs, USSBaseURL, SubscriptionID,
//	                StartTime, EndTime, AltitudeLower, AltitudeUpper, Cells,
//	                UpdatedAt
//	DSS instances   version 2 only: count (at least 1), then in ID order:
//	                ID, PublicEndpoint, Timestamp, Reporter, Source, Index,
//	                NextExpectedBefore? (presence byte + time)
//	crc        uint32 CRC-32C (Castagnoli) of every preceding byte
//
// Version 2 adds the pool's DSS instances (docs/spec/aux.md). A state
// without any is written as version 1, byte for byte as before, so its hash
// is unchanged and nodes of a build without the pool section still read it;
// ReadSnapshot reads both versions.
//
// Encodings: count/length = uvarint; string = length + bytes; int32 =
// 4 bytes; float32 = 4 bytes of IEEE bits; optional float32 = 1 byte
// presence (0 or 1) + value when present; time = int64 Unix seconds + uint32
// nanoseconds (exact for every time.Time, unlike int64 Unix nanoseconds
// which overflow outside 1678–2262), decoded as UTC; cells = count + int64
// each, strictly increasing; subscription flags = bit 0 notify for OIRs,
// bit 1 notify for constraints, bit 2 implicit. All fixed-width integers are
// big endian.
const (
	snapshotMagic   = "RDSSSCD\x00"
	snapshotVersion = 1
	// snapshotVersionPool is the format with the DSS instances section.
	snapshotVersionPool = 2

	subFlagNotifyOIRs = 1 << 0
	subFlagNotifyCRs  = 1 << 1
	subFlagImplicit   = 1 << 2
	subFlagsKnown     = subFlagNotifyOIRs | subFlagNotifyCRs | subFlagImplicit
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot writes the canonical encoding of the state to w.
//
// Entities are sorted by ID a little at a time as they are encoded (see
// emitInIDOrder), not up front. If w is a Pauser, WriteSnapshot calls its
// Pause every few hundred entities it sorts or encodes, between its writes
// (of up to ~60 KB each), so that a writer that paces the work can step in
// at short intervals, sorting included. The bytes do not depend on w.
func (s *State) WriteSnapshot(w io.Writer) error {
	e := &encoder{w: w, buf: make([]byte, 0, 64<<10)}
	e.pauser, _ = w.(Pauser)
	e.raw([]byte(snapshotMagic))
	if len(s.instances) == 0 {
		e.u32(snapshotVersion)
	} else {
		e.u32(snapshotVersionPool)
	}
	e.time(s.lastWrite)

	avail := make([]*models.UssAvailability, 0, len(s.avail))
	for _, a := range s.avail {
		avail = append(avail, a)
	}
	sortByKey(avail, func(a *models.UssAvailability) string { return a.USS })
	e.uvarint(uint64(len(avail)))
	for _, a := range avail {
		e.str(a.USS)
		e.str(string(a.Availability))
		e.time(a.UpdatedAt)
	}

	subs := s.subs.idKeys(e.pause)
	e.uvarint(uint64(subs.len()))
	emitInIDOrder(subs, idOrderLeaf, e.pause, func(sub *models.Subscription) {
		e.str(string(sub.ID))
		e.str(sub.Manager)
		e.u32(uint32(sub.NotificationIndex))
		e.str(sub.USSBaseURL)
		var flags byte
		if sub.NotifyForOperationalIntents {
			flags |= subFlagNotifyOIRs
		}
		if sub.NotifyForConstraints {
			flags |= subFlagNotifyCRs
		}
		if sub.Implicit {
			flags |= subFlagImplicit
		}
		e.byte(flags)
		e.time(sub.StartTime)
		e.time(sub.EndTime)
		e.cells(sub.Cells)
		e.time(sub.UpdatedAt)
	})

	crs := s.crs.idKeys(e.pause)
	e.uvarint(uint64(crs.len()))
	emitInIDOrder(crs, idOrderLeaf, e.pause, func(c *models.Constraint) {
		e.str(string(c.ID))
		e.str(c.Manager)
		e.u32(uint32(c.Version))
		e.str(c.USSBaseURL)
		e.time(c.StartTime)
		e.time(c.EndTime)
		e.optF32(c.AltitudeLower)
		e.optF32(c.AltitudeUpper)
		e.cells(c.Cells)
		e.time(c.UpdatedAt)
	})

	oirs := s.oirs.idKeys(e.pause)
	e.uvarint(uint64(oirs.len()))
	emitInIDOrder(oirs, idOrderLeaf, e.pause, func(o *models.OperationalIntent) {
		e.str(string(o.ID))
		e.str(o.Manager)
		e.u32(uint32(o.Version))
		e.str(string(o.State))
		e.str(string(o.RequestedOVN))
		e.uvarint(uint64(len(o.PastOVNs)))
		for _, p := range o.PastOVNs {
			e.str(string(p))
		}
		e.str(o.USSBaseURL)
		e.str(string(o.SubscriptionID))
		e.time(o.StartTime)
		e.time(o.EndTime)
		e.u32(math.Float32bits(o.AltitudeLower))
		e.u32(math.Float32bits(o.AltitudeUpper))
		e.cells(o.Cells)
		e.time(o.UpdatedAt)
	})

	if len(s.instances) > 0 {
		insts := sortedInstances(s.instances, false)
		e.uvarint(uint64(len(insts)))
		for _, inst := range insts {
			e.str(inst.ID)
			e.str(inst.PublicEndpoint)
			hb := &inst.Heartbeat
			e.time(hb.Timestamp)
			e.str(hb.Reporter)
			e.str(hb.Source)
			e.uvarint(uint64(hb.Index))
			if hb.NextExpectedBefore.IsZero() {
				e.byte(0)
			} else {
				e.byte(1)
				e.time(hb.NextExpectedBefore)
			}
		}
	}
	return e.finish()
}

// Hash returns the SHA-256 of the canonical encoding: replicas that applied
// the same operations have equal hashes.
func (s *State) Hash() [32]byte {
	h := sha256.New()
	// Writing to a hash never fails.
	_ = s.WriteSnapshot(h)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// ReadSnapshot decodes a snapshot written by WriteSnapshot and rebuilds the
// indexes. Corrupt, truncated, trailing or unknown-version input is an error.
// Memory use is bounded by the input's size: every count and length is
// checked against the bytes that remain before anything is allocated.
func ReadSnapshot(r io.Reader) (*State, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("memstore: reading snapshot: %w", err)
	}
	if len(data) < len(snapshotMagic)+4+4 {
		return nil, errors.New("memstore: snapshot truncated")
	}
	if string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("memstore: not a memstore snapshot (bad magic)")
	}
	version := binary.BigEndian.Uint32(data[len(snapshotMagic):])
	if version != snapshotVersion && version != snapshotVersionPool {
		return nil, fmt.Errorf("memstore: unsupported snapshot format version %d (want %d or %d)",
			version, snapshotVersion, snapshotVersionPool)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("memstore: snapshot checksum mismatch (corrupt or truncated)")
	}
	d := &decoder{b: body[len(snapshotMagic)+4:]}
	s, err := d.state(version == snapshotVersionPool)
	if err != nil {
		return nil, fmt.Errorf("memstore: corrupt snapshot: %w", err)
	}
	return s, nil
}

func (d *decoder) state(withPool bool) (*State, error) {
	s := NewState()
	s.lastWrite = d.time()
	// The entities come in ID order, each ID once (checkOrder): index them
	// unsorted and sort each cell's list once at the end.
	s.subs.unsorted, s.crs.unsorted, s.oirs.unsorted = true, true, true

	n := d.count(1 + 1 + 12) // shortest record: two empty strings + a time
	var prev string
	for i := 0; i < n && d.err == nil; i++ {
		a := &models.UssAvailability{USS: d.str(), Availability: models.Availability(d.str()), UpdatedAt: d.time()}
		if d.err == nil && (a.USS == "" || (i > 0 && a.USS <= prev)) {
			return nil, errors.New("availability records not in strictly increasing USS order")
		}
		prev = a.USS
		s.putAvail(a)
	}

	n = d.count(1 + 1 + 4 + 1 + 1 + 12 + 12 + 1 + 12)
	s.subs.reserve(n)
	for i := 0; i < n && d.err == nil; i++ {
		sub := &models.Subscription{ID: models.ID(d.str()), Manager: d.str(),
			NotificationIndex: int32(d.u32()), USSBaseURL: d.str()}
		flags := d.byte()
		if d.err == nil && flags&^subFlagsKnown != 0 {
			return nil, fmt.Errorf("subscription %s: unknown flags %#x", sub.ID, flags)
		}
		sub.NotifyForOperationalIntents = flags&subFlagNotifyOIRs != 0
		sub.NotifyForConstraints = flags&subFlagNotifyCRs != 0
		sub.Implicit = flags&subFlagImplicit != 0
		sub.StartTime, sub.EndTime, sub.Cells, sub.UpdatedAt = d.time(), d.time(), d.cells(), d.time()
		if err := d.checkOrder(string(sub.ID), &prev, i); err != nil {
			return nil, fmt.Errorf("subscriptions: %w", err)
		}
		s.putSub(sub)
	}

	n = d.count(1 + 1 + 4 + 1 + 12 + 12 + 1 + 1 + 1 + 12)
	s.crs.reserve(n)
	for i := 0; i < n && d.err == nil; i++ {
		c := &models.Constraint{ID: models.ID(d.str()), Manager: d.str(), Version: int32(d.u32()),
			USSBaseURL: d.str(), StartTime: d.time(), EndTime: d.time()}
		c.AltitudeLower, c.AltitudeUpper = d.optF32(), d.optF32()
		c.Cells, c.UpdatedAt = d.cells(), d.time()
		if err := d.checkOrder(string(c.ID), &prev, i); err != nil {
			return nil, fmt.Errorf("constraints: %w", err)
		}
		s.putCR(c)
	}

	n = d.count(1 + 1 + 4 + 1 + 1 + 1 + 1 + 1 + 12 + 12 + 4 + 4 + 1 + 12)
	s.oirs.reserve(n)
	s.oirOVNs = make([]models.OVN, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		o := &models.OperationalIntent{ID: models.ID(d.str()), Manager: d.str(), Version: int32(d.u32()),
			State: models.OperationalIntentState(d.str()), RequestedOVN: models.OVN(d.str())}
		if np := d.count(1); np > 0 {
			o.PastOVNs = make([]models.OVN, np)
			for j := range o.PastOVNs {
				o.PastOVNs[j] = models.OVN(d.str())
			}
		}
		o.USSBaseURL, o.SubscriptionID = d.str(), models.ID(d.str())
		o.StartTime, o.EndTime = d.time(), d.time()
		o.AltitudeLower, o.AltitudeUpper = math.Float32frombits(d.u32()), math.Float32frombits(d.u32())
		o.Cells, o.UpdatedAt = d.cells(), d.time()
		if err := d.checkOrder(string(o.ID), &prev, i); err != nil {
			return nil, fmt.Errorf("operational intents: %w", err)
		}
		if o.SubscriptionID != "" {
			sub := s.subs.get(o.SubscriptionID)
			if sub == nil {
				return nil, fmt.Errorf("operational intent %s references unknown subscription %s", o.ID, o.SubscriptionID)
			}
			o.SubscriptionID = sub.ID
		}
		s.putOIR(o)
	}
	if withPool {
		if err := d.instances(s); err != nil {
			return nil, err
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the last section", len(d.b))
	}
	s.subs.sortCells()
	s.crs.sortCells()
	s.oirs.sortCells()
	return s, nil
}

// instances decodes the DSS instances section of a version 2 snapshot: at
// least one (a state without any is written as version 1), in strictly
// increasing ID order.
func (d *decoder) instances(s *State) error {
	n := d.count(1 + 1 + 12 + 1 + 1 + 1 + 1)
	if d.err == nil && n == 0 {
		return errors.New("DSS instances section of a version 2 snapshot is empty")
	}
	var prev string
	for i := 0; i < n && d.err == nil; i++ {
		inst := &models.DSSInstance{ID: d.str(), PublicEndpoint: d.str()}
		hb := &inst.Heartbeat
		hb.Timestamp, hb.Reporter, hb.Source = d.time(), d.str(), d.str()
		idx := d.uvarint()
		if d.err == nil && idx > math.MaxInt64 {
			return fmt.Errorf("DSS instance %q: heartbeat index %d out of range", inst.ID, idx)
		}
		hb.Index = int64(idx)
		switch p := d.byte(); {
		case d.err != nil:
		case p == 1:
			if hb.NextExpectedBefore = d.time(); d.err == nil && hb.NextExpectedBefore.IsZero() {
				return fmt.Errorf("DSS instance %q: zero time marked present", inst.ID)
			}
		case p != 0:
			return fmt.Errorf("DSS instance %q: presence byte %d", inst.ID, p)
		}
		if err := d.checkOrder(inst.ID, &prev, i); err != nil {
			return fmt.Errorf("DSS instances: %w", err)
		}
		s.instances[inst.ID] = inst
	}
	return nil
}

// checkOrder rejects empty IDs and IDs out of strictly increasing order
// (duplicates included), which a canonical snapshot never contains.
func (d *decoder) checkOrder(id string, prev *string, i int) error {
	if d.err != nil {
		return d.err
	}
	if id == "" || (i > 0 && id <= *prev) {
		return fmt.Errorf("ID %q empty or not in strictly increasing order", id)
	}
	*prev = id
	return nil
}

func sortByKey[T any](xs []*T, key func(*T) string) {
	slices.SortFunc(xs, func(a, b *T) int { return strings.Compare(key(a), key(b)) })
}

// encoder buffers output and keeps the running CRC. The first write error is
// sticky and returned by finish.
type encoder struct {
	w      io.Writer
	buf    []byte
	crc    uint32
	err    error
	pauser Pauser // w, if it is one
}

// A Pauser is a snapshot writer that wants to be called at regular points of
// the work, not only when bytes are ready: the Raft store's pacing writer
// sleeps there as long as the work since its last pause took, so that a
// background snapshot takes about half a core. The clock is read there,
// never in this package.
type Pauser interface {
	Pause()
}

func (e *encoder) flushIfFull() {
	if len(e.buf) >= 60<<10 {
		e.flush()
	}
}

func (e *encoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		e.crc = crc32.Update(e.crc, castagnoli, e.buf)
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

// pause calls the writer's Pause, if it has one. Long computations call it
// regularly (every few hundred elements).
func (e *encoder) pause() {
	if e.pauser != nil && e.err == nil {
		e.pauser.Pause()
	}
}

func (e *encoder) finish() error {
	e.flush()
	if e.err != nil {
		return fmt.Errorf("memstore: writing snapshot: %w", e.err)
	}
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], e.crc)
	if _, err := e.w.Write(tail[:]); err != nil {
		return fmt.Errorf("memstore: writing snapshot: %w", err)
	}
	return nil
}

func (e *encoder) raw(p []byte) {
	e.buf = append(e.buf, p...)
	e.flushIfFull()
}

func (e *encoder) byte(b byte) { e.buf = append(e.buf, b) }

func (e *encoder) u32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }

func (e *encoder) uvarint(v uint64) {
	e.buf = binary.AppendUvarint(e.buf, v)
	e.flushIfFull()
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
	e.flushIfFull()
}

func (e *encoder) time(t time.Time) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(t.Unix()))
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(t.Nanosecond()))
}

func (e *encoder) optF32(f *float32) {
	if f == nil {
		e.byte(0)
		return
	}
	e.byte(1)
	e.u32(math.Float32bits(*f))
}

func (e *encoder) cells(cells []models.CellID) {
	e.uvarint(uint64(len(cells)))
	for _, c := range cells {
		e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(c))
		e.flushIfFull()
	}
}

// decoder reads from a byte slice; the first error is sticky and every later
// read returns zero values, so callers check d.err once per record.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated: need %d bytes, %d left", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		// Non-minimal encoding: accepting it would let two byte strings
		// stand for one state.
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count and rejects one that the remaining bytes
// cannot hold at minSize bytes per element, so a corrupt length never leads
// to a large allocation.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(len(d.b)/minSize) {
		d.fail("count %d exceeds the %d bytes left", v, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	n := d.count(1)
	return string(d.take(n))
}

func (d *decoder) time() time.Time {
	sec := int64(d.u64())
	nsec := d.u32()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.fail("nanoseconds %d out of range", nsec)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.Unix() != sec {
		// Beyond the range of time.Time: it would not encode back to sec.
		d.fail("time %d s out of range", sec)
		return time.Time{}
	}
	return t
}

func (d *decoder) optF32() *float32 {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		f := math.Float32frombits(d.u32())
		if d.err != nil {
			return nil
		}
		return &f
	default:
		d.fail("bad presence flag")
		return nil
	}
}

func (d *decoder) cells() []models.CellID {
	n := d.count(8)
	if n == 0 || d.err != nil {
		return nil
	}
	cells := make([]models.CellID, n)
	for i := range cells {
		cells[i] = models.CellID(d.u64())
		if i > 0 && cells[i] <= cells[i-1] && d.err == nil {
			d.fail("cells not strictly increasing")
		}
	}
	return cells
}
