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
	// lost is set for an outcome restored from a snapshot whose result the
	// StateMachine could not encode (it does not implement ResultCodec).
	lost bool
}

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
// Outcomes are kept when codec can encode them; otherwise they are marked
// lost.
func (t *dedupeTable) encode(codec ResultCodec) []byte {
	var b []byte
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
				ok = err == nil
			}
			if !ok {
				b = append(b, 0)
				continue
			}
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(len(enc)))
			b = append(b, enc...)
		}
	}
	return b
}

var errShortTable = errors.New("truncated dedupe table")

// decodeDedupeTable parses encode's output.
func decodeDedupeTable(b []byte, codec ResultCodec) (*dedupeTable, error) {
	r := reader{b: b}
	t := newDedupeTable()
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		node, epoch, wm, count := r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		if r.err != nil {
			break
		}
		if count > uint64(len(r.b)) {
			return nil, errShortTable
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
				s.results[seq] = outcome{lost: true}
			case 1:
				enc := r.bytes()
				if r.err != nil {
					break
				}
				o := outcome{lost: true}
				if codec != nil {
					res, resErr, err := codec.DecodeResult(enc)
					if err != nil {
						return nil, fmt.Errorf("decoding result of %d.%d.%d: %w", node, epoch, seq, err)
					}
					o = outcome{result: res, err: resErr}
				}
				s.results[seq] = o
			default:
				return nil, fmt.Errorf("bad outcome flag %d", flag)
			}
		}
		t.sessions[node] = s
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after dedupe table", len(r.b))
	}
	return t, nil
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
