package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// outcome is what applying one proposal produced.
type outcome struct {
	result any
	err    error
	// lost is set for an outcome restored from a snapshot that does not
	// carry its result: the StateMachine does not implement ResultCodec, its
	// EncodeResult refused the result, the snapshot's results budget was
	// spent (maxSnapshotResultBytes), or DecodeResult refused the bytes.
	lost bool
	// restored is set for an outcome decoded from a snapshot's table.
	restored bool
}

// maxSnapshotResultBytes bounds the encoded results one snapshot carries.
// The table holds only outcomes their proposers may still wait for, but a
// proposer stuck on one proposal keeps every later outcome of its session in
// the table until it proposes again; the outcomes past this budget are
// carried as lost, so a snapshot never grows by more than this.
const maxSnapshotResultBytes = 16 << 20

// dedupeTable is the replicated record of which proposals were applied. It
// is mutated only by Apply and Restore (one at a time, see StateMachine), is
// part of every snapshot, and is a deterministic function of the log, so
// every replica skips exactly the same duplicates.
//
// Bound: one session per proposing node ID (a newer boot epoch replaces the
// older session, whose process is gone), and in a session only the outcomes
// of proposals at or above the proposer's minPending watermark: at most the
// number of proposals that node had in flight at once, plus the ones
// applied since its last proposal.
type dedupeTable struct {
	sessions map[uint64]*session // by proposing node ID
}

type session struct {
	epoch     uint64
	watermark uint64             // every seq below it is finished on the proposer
	results   map[uint64]outcome // applied seqs ≥ watermark
}

func newDedupeTable() *dedupeTable { return &dedupeTable{sessions: map[uint64]*session{}} }

type verdict int

const (
	verdictApply     verdict = iota // first time: apply it
	verdictDuplicate                // applied before: return the recorded outcome
	verdictStale                    // from a dead epoch or below the watermark: skip
)

// admit decides what to do with env and advances the session's watermark.
func (t *dedupeTable) admit(env envelope) (verdict, outcome) {
	id := env.id
	s := t.sessions[id.node]
	switch {
	case s == nil || id.epoch > s.epoch:
		// The first proposal of a new boot of that node: the older boot's
		// process is gone, nobody waits for its proposals, and any of its
		// late duplicates are rejected from now on.
		s = &session{epoch: id.epoch, results: map[uint64]outcome{}}
		t.sessions[id.node] = s
	case id.epoch < s.epoch:
		return verdictStale, outcome{}
	}
	if env.minPending > s.watermark {
		s.watermark = env.minPending
		for seq := range s.results {
			if seq < s.watermark {
				delete(s.results, seq)
			}
		}
	}
	if id.seq < s.watermark {
		// Finished on the proposer (applied, or abandoned as
		// indeterminate): a late copy must not apply.
		return verdictStale, outcome{}
	}
	if o, ok := s.results[id.seq]; ok {
		return verdictDuplicate, o
	}
	return verdictApply, outcome{}
}

// record notes that id was applied with outcome o. admit must have returned
// verdictApply for id.
func (t *dedupeTable) record(id proposalID, o outcome) {
	t.sessions[id.node].results[id.seq] = o
}

// encode serialises the table deterministically (sorted by node, seq).
// Outcomes are kept when codec can encode them and the results encoded so
// far, with this one, fit in budget bytes; otherwise they are marked lost.
func (t *dedupeTable) encode(codec ResultCodec, budget int) []byte {
	var b []byte
	used := 0
	b = binary.AppendUvarint(b, uint64(len(t.sessions)))
	for _, node := range slices.Sorted(maps.Keys(t.sessions)) {
		s := t.sessions[node]
		b = binary.AppendUvarint(b, node)
		b = binary.AppendUvarint(b, s.epoch)
		b = binary.AppendUvarint(b, s.watermark)
		b = binary.AppendUvarint(b, uint64(len(s.results)))
		for _, seq := range slices.Sorted(maps.Keys(s.results)) {
			o := s.results[seq]
			b = binary.AppendUvarint(b, seq)
			var enc []byte
			ok := false
			if codec != nil && !o.lost {
				var err error
				enc, err = codec.EncodeResult(o.result, o.err)
				ok = err == nil && len(enc) <= budget-used
			}
			if !ok {
				b = append(b, 0)
				continue
			}
			used += len(enc)
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(len(enc)))
			b = append(b, enc...)
		}
	}
	return b
}

var errShortTable = errors.New("truncated dedupe table")

// decodeDedupeTable parses encode's output. An outcome whose bytes codec
// refuses is kept as lost, and counted in undecodable, rather than failing
// the whole table: the result matters to one waiter at most, and a build
// that meets a result encoding of a newer one (a rolling upgrade) must still
// install the snapshot.
func decodeDedupeTable(b []byte, codec ResultCodec) (t *dedupeTable, undecodable int, err error) {
	r := reader{b: b}
	t = newDedupeTable()
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		node, epoch, wm, count := r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		if r.err != nil {
			break
		}
		if count > uint64(len(r.b)) {
			return nil, 0, errShortTable
		}
		s := &session{epoch: epoch, watermark: wm, results: make(map[uint64]outcome, count)}
		for j := uint64(0); j < count && r.err == nil; j++ {
			seq := r.uvarint()
			flag := r.byte()
			if r.err != nil {
				break
			}
			switch flag {
			case 0:
				s.results[seq] = outcome{lost: true, restored: true}
			case 1:
				enc := r.bytes()
				if r.err != nil {
					break
				}
				o := outcome{lost: true, restored: true}
				if codec != nil {
					if res, resErr, err := codec.DecodeResult(enc); err != nil {
						undecodable++
					} else {
						o = outcome{result: res, err: resErr, restored: true}
					}
				}
				s.results[seq] = o
			default:
				return nil, 0, fmt.Errorf("bad outcome flag %d", flag)
			}
		}
		t.sessions[node] = s
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	if len(r.b) != 0 {
		return nil, 0, fmt.Errorf("%d trailing bytes after dedupe table", len(r.b))
	}
	return t, undecodable, nil
}

// reader decodes varint-framed data, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortTable
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errShortTable
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShortTable
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
