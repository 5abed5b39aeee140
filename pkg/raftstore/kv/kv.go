// Package kv is a key-value StateMachine for the Raft store: the store's own
// tests and the cmds/raftkv demo use it.
//
// It owns the map and its encoding; it must never do I/O or read clocks:
// Apply is a pure function of the state and the command.
package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/raftdss/dss/pkg/raftstore"
)

// Command opcodes.
const (
	opPut    byte = 1
	opDelete byte = 2
)

// EncodePut returns the Transact payload that sets key to value.
func EncodePut(key string, value []byte) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(key)+len(value))
	b = append(b, opPut)
	b = appendBytes(b, []byte(key))
	return appendBytes(b, value)
}

// EncodeDelete returns the Transact payload that deletes key.
func EncodeDelete(key string) []byte {
	return appendBytes([]byte{opDelete}, []byte(key))
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func readBytes(b []byte) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errors.New("truncated field")
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}

// Machine is the key-value state. Apply/Restore take the write lock; Get and
// Snapshot take the read lock, so reads run concurrently with each other.
type Machine struct {
	mu   sync.RWMutex
	data map[string][]byte
}

var (
	_ raftstore.StateMachine = (*Machine)(nil)
	_ raftstore.ResultCodec  = (*Machine)(nil)
)

// New returns an empty Machine.
func New() *Machine { return &Machine{data: map[string][]byte{}} }

// Apply executes a Put (result nil) or Delete (result bool: whether the key
// existed). An undecodable command wraps raftstore.ErrUndecodable and
// changes nothing.
func (m *Machine) Apply(_ uint64, cmd []byte) (any, error) {
	if len(cmd) == 0 {
		return nil, fmt.Errorf("%w: empty kv command", raftstore.ErrUndecodable)
	}
	key, rest, err := readBytes(cmd[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: kv key: %v", raftstore.ErrUndecodable, err)
	}
	switch cmd[0] {
	case opPut:
		val, rest, err := readBytes(rest)
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: kv put value", raftstore.ErrUndecodable)
		}
		m.mu.Lock()
		m.data[string(key)] = slices.Clone(val)
		m.mu.Unlock()
		return nil, nil
	case opDelete:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: kv delete has trailing bytes", raftstore.ErrUndecodable)
		}
		m.mu.Lock()
		_, ok := m.data[string(key)]
		delete(m.data, string(key))
		m.mu.Unlock()
		return ok, nil
	default:
		return nil, fmt.Errorf("%w: kv opcode %d", raftstore.ErrUndecodable, cmd[0])
	}
}

// Get returns a copy of key's value. Callers that need linearizability call
// it inside raftstore.Store.Read.
func (m *Machine) Get(key string) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[key]
	return slices.Clone(v), ok
}

// Len returns the number of keys.
func (m *Machine) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.data)
}

// Snapshot encodes the map sorted by key (deterministic bytes).
func (m *Machine) Snapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b := binary.AppendUvarint(nil, uint64(len(m.data)))
	for _, k := range slices.Sorted(maps.Keys(m.data)) {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, m.data[k])
	}
	return b, nil
}

// Restore replaces the map with a Snapshot's contents. On error the state is
// unchanged.
func (m *Machine) Restore(snap []byte) error {
	data := map[string][]byte{}
	if len(snap) > 0 {
		n, k := binary.Uvarint(snap)
		if k <= 0 || n > uint64(len(snap)) {
			return errors.New("kv: corrupt snapshot header")
		}
		rest := snap[k:]
		for i := uint64(0); i < n; i++ {
			var key, val []byte
			var err error
			if key, rest, err = readBytes(rest); err != nil {
				return fmt.Errorf("kv: corrupt snapshot entry %d: %w", i, err)
			}
			if val, rest, err = readBytes(rest); err != nil {
				return fmt.Errorf("kv: corrupt snapshot entry %d: %w", i, err)
			}
			data[string(key)] = slices.Clone(val)
		}
		if len(rest) != 0 {
			return errors.New("kv: trailing bytes in snapshot")
		}
	}
	m.mu.Lock()
	m.data = data
	m.mu.Unlock()
	return nil
}

// EncodeResult implements raftstore.ResultCodec: 0 = nil, 1 = false,
// 2 = true. kv operations never fail, so err is always nil.
func (m *Machine) EncodeResult(result any, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("kv: unexpected operation error %v", err)
	}
	switch r := result.(type) {
	case nil:
		return []byte{0}, nil
	case bool:
		if r {
			return []byte{2}, nil
		}
		return []byte{1}, nil
	default:
		return nil, fmt.Errorf("kv: unexpected result type %T", result)
	}
}

// DecodeResult implements raftstore.ResultCodec.
func (m *Machine) DecodeResult(b []byte) (any, error, error) {
	if len(b) != 1 || b[0] > 2 {
		return nil, nil, errors.New("kv: bad encoded result")
	}
	switch b[0] {
	case 0:
		return nil, nil, nil
	default:
		return b[0] == 2, nil, nil
	}
}
