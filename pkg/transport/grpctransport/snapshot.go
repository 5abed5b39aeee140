package grpctransport

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/raftdss/dss/pkg/transport/transportpb"
)

// snapshotHeader returns a copy of MsgSnap m without its snapshot data,
// sharing every other field with m (it is only marshalled, never modified).
// The caller's message is never modified: raft may share its Snapshot with
// its storage.
func snapshotHeader(m *raftpb.Message) *raftpb.Message {
	src := m.ProtoReflect()
	hdr := src.Type().New()
	snapField := src.Descriptor().Fields().ByName("snapshot")
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != snapField {
			hdr.Set(fd, v)
		}
		return true
	})
	out := hdr.Interface().(*raftpb.Message)
	out.Snapshot = &raftpb.Snapshot{Metadata: m.GetSnapshot().GetMetadata()}
	return out
}

// splitSnapshot returns the chunks that carry MsgSnap m, for transfer seq.
// The chunks alias m's snapshot data.
func splitSnapshot(m *raftpb.Message, seq uint64, chunkSize int) ([]*transportpb.SnapshotChunk, error) {
	hdr, err := proto.Marshal(snapshotHeader(m))
	if err != nil {
		return nil, fmt.Errorf("marshal snapshot header: %w", err)
	}
	if len(hdr) > chunkSize {
		return nil, fmt.Errorf("snapshot header is %d bytes, more than a chunk (%d)", len(hdr), chunkSize)
	}
	data := m.GetSnapshot().GetData()
	n := max(1, (len(data)+chunkSize-1)/chunkSize)
	chunks := make([]*transportpb.SnapshotChunk, n)
	for i := range chunks {
		lo, hi := i*chunkSize, min((i+1)*chunkSize, len(data))
		c := &transportpb.SnapshotChunk{Seq: seq, Index: uint64(i), Data: data[lo:hi], Last: i == n-1}
		if i == 0 {
			c.Message = hdr
			c.TotalSize = uint64(len(data))
		}
		chunks[i] = c
	}
	return chunks, nil
}

// assembler rebuilds MsgSnap messages from the chunks of one stream. Chunks
// of one transfer arrive in order on one stream and transfers do not
// interleave (the sender's peer goroutine sends one at a time), so any
// deviation is a protocol error. Not safe for concurrent use.
type assembler struct {
	maxBytes int64

	active bool
	seq    uint64
	next   uint64
	total  uint64
	hdr    *raftpb.Message
	buf    []byte
}

// Errors from add; all mean the stream is broken or malicious.
var (
	errChunkOrder   = errors.New("snapshot chunk out of order")
	errChunkHeader  = errors.New("invalid snapshot chunk header")
	errSnapshotSize = errors.New("snapshot exceeds its declared or allowed size")
)

// initialBufBytes caps the up-front allocation for a declared snapshot size,
// so a peer cannot make us allocate MaxSnapshotBytes by declaring it; the
// buffer grows as data actually arrives.
const initialBufBytes = 64 << 20

// add consumes one chunk. It returns the whole message after the last chunk
// and nil before it. After an error the assembler is reset.
func (a *assembler) add(c *transportpb.SnapshotChunk) (*raftpb.Message, error) {
	m, err := a.addChunk(c)
	if err != nil {
		a.reset()
	}
	return m, err
}

func (a *assembler) reset() { *a = assembler{maxBytes: a.maxBytes} }

func (a *assembler) addChunk(c *transportpb.SnapshotChunk) (*raftpb.Message, error) {
	if c.GetIndex() == 0 {
		if a.active {
			return nil, fmt.Errorf("%w: transfer %d started before transfer %d finished", errChunkOrder, c.GetSeq(), a.seq)
		}
		hdr := new(raftpb.Message)
		if err := proto.Unmarshal(c.GetMessage(), hdr); err != nil {
			return nil, fmt.Errorf("%w: %v", errChunkHeader, err)
		}
		if hdr.GetType() != raftpb.MessageType_MsgSnap || hdr.GetSnapshot().GetMetadata() == nil || len(hdr.GetSnapshot().GetData()) != 0 {
			return nil, fmt.Errorf("%w: not a MsgSnap header", errChunkHeader)
		}
		if c.GetTotalSize() > uint64(a.maxBytes) {
			return nil, fmt.Errorf("%w: declared %d bytes, limit %d", errSnapshotSize, c.GetTotalSize(), a.maxBytes)
		}
		a.active, a.seq, a.next, a.total, a.hdr = true, c.GetSeq(), 0, c.GetTotalSize(), hdr
		a.buf = make([]byte, 0, min(a.total, initialBufBytes))
	} else if !a.active || c.GetSeq() != a.seq || c.GetIndex() != a.next {
		return nil, fmt.Errorf("%w: got transfer %d chunk %d, want transfer %d chunk %d", errChunkOrder, c.GetSeq(), c.GetIndex(), a.seq, a.next)
	} else if len(c.GetMessage()) != 0 || c.GetTotalSize() != 0 {
		return nil, fmt.Errorf("%w: header fields in chunk %d", errChunkHeader, c.GetIndex())
	}
	if uint64(len(a.buf))+uint64(len(c.GetData())) > a.total {
		return nil, fmt.Errorf("%w: more than the declared %d bytes", errSnapshotSize, a.total)
	}
	a.buf = append(a.buf, c.GetData()...)
	a.next++
	if !c.GetLast() {
		return nil, nil
	}
	if uint64(len(a.buf)) != a.total {
		return nil, fmt.Errorf("%w: got %d of the declared %d bytes", errSnapshotSize, len(a.buf), a.total)
	}
	m := a.hdr
	m.Snapshot.Data = a.buf
	a.reset()
	return m, nil
}
