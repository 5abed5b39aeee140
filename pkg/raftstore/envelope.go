package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// proposalID identifies a proposal for all time: the proposing node's raft ID,
// the node's boot epoch (persisted, incremented on every start) and a counter
// within the boot.
type proposalID struct {
	node, epoch, seq uint64
}

func (p proposalID) String() string { return fmt.Sprintf("%d.%d.%d", p.node, p.epoch, p.seq) }

// envelope is what a log entry carries.
//
//	version byte (1) | uvarint node | uvarint epoch | uvarint seq |
//	uvarint minPending | payload...
//
// minPending is the lowest seq the proposer still had pending when it
// encoded the envelope: every seq below it is finished on the proposer
// (applied, or abandoned with ErrIndeterminate), so the dedupe table can
// forget their results and reject any late duplicates of them.
type envelope struct {
	id         proposalID
	minPending uint64
	payload    []byte
}

const envelopeVersion = 1

func (e envelope) encode() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+len(e.payload))
	b = append(b, envelopeVersion)
	b = binary.AppendUvarint(b, e.id.node)
	b = binary.AppendUvarint(b, e.id.epoch)
	b = binary.AppendUvarint(b, e.id.seq)
	b = binary.AppendUvarint(b, e.minPending)
	return append(b, e.payload...)
}

var errShortEnvelope = errors.New("truncated envelope")

func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) == 0 {
		return e, errShortEnvelope
	}
	if b[0] != envelopeVersion {
		return e, fmt.Errorf("unknown envelope version %d", b[0])
	}
	b = b[1:]
	fields := []*uint64{&e.id.node, &e.id.epoch, &e.id.seq, &e.minPending}
	for _, f := range fields {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return e, errShortEnvelope
		}
		*f = v
		b = b[n:]
	}
	if e.id.node == 0 {
		return e, errors.New("envelope has node ID 0")
	}
	if e.minPending > e.id.seq {
		return e, fmt.Errorf("envelope minPending %d above its own seq %d", e.minPending, e.id.seq)
	}
	e.payload = b
	return e, nil
}
