package raftstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// An online backup (`dssctl snapshot save`) is one file:
//
//	offset  size  field
//	0       8     magic "DSSBKUP\n"
//	8       4     format version, big-endian (BackupFormatVersion)
//	12      8     cluster ID of the cluster it was taken of (0: unknown, a
//	              cluster created before cluster IDs existed)
//	20      8     log index the state is at (applied, so committed)
//	28      8     the node's raft term when it was taken
//	36      32    state hash: SHA-256 of the state bytes (/status state_hash)
//	68      8×4   entity counts: operational intents, subscriptions,
//	              constraints, USS availabilities
//	100     8     length L of the state bytes
//	108     L     the state: memstore's canonical snapshot encoding
//	108+L   32    SHA-256 of every byte before it
//
// Integers are big-endian. The state bytes are those the state machine
// snapshots and hashes, opaque to the format; the checksum covers the
// header too, so a flipped byte anywhere, a truncated file or trailing
// bytes are all refused, and a reader refuses a format version it does not
// know rather than guess.

// BackupFormatVersion is the version of the backup file format written.
const BackupFormatVersion = 1

var backupMagic = [8]byte{'D', 'S', 'S', 'B', 'K', 'U', 'P', '\n'}

const (
	backupHeaderLen = 108
	backupSumLen    = sha256.Size
)

// ErrBadBackup is wrapped by every DecodeBackup error.
var ErrBadBackup = errors.New("not a usable snapshot file")

// BackupHeader describes a backup file.
type BackupHeader struct {
	Version   uint32
	ClusterID uint64
	Index     uint64
	Term      uint64
	StateHash [32]byte
	Counts    EntityCounts
	// StateBytes is the length of the state.
	StateBytes uint64
}

// EntityCounts are the numbers of entities of each kind in a state.
type EntityCounts struct {
	OperationalIntents, Subscriptions, Constraints, UssAvailabilities uint64
}

func countsOf(st *memstore.State) EntityCounts {
	return EntityCounts{
		OperationalIntents: uint64(st.LenOperationalIntents()),
		Subscriptions:      uint64(st.LenSubscriptions()),
		Constraints:        uint64(st.LenConstraints()),
		UssAvailabilities:  uint64(st.LenUssAvailabilities()),
	}
}

// EncodeBackup returns the backup file of state (memstore's canonical
// encoding) described by h; h.Version, h.StateHash and h.StateBytes are
// set from the arguments.
func EncodeBackup(h BackupHeader, state []byte) []byte {
	b := make([]byte, backupHeaderLen, backupHeaderLen+len(state)+backupSumLen)
	return finishBackup(append(b, state...), h)
}

// finishBackup turns b, backupHeaderLen bytes of room for the header
// followed by the state, into the backup file: it fills in the header
// (the state hash and length from the state) and appends the checksum.
func finishBackup(b []byte, h BackupHeader) []byte {
	state := b[backupHeaderLen:]
	hdr := b[:0:backupHeaderLen]
	hdr = append(hdr, backupMagic[:]...)
	hdr = binary.BigEndian.AppendUint32(hdr, BackupFormatVersion)
	hdr = binary.BigEndian.AppendUint64(hdr, h.ClusterID)
	hdr = binary.BigEndian.AppendUint64(hdr, h.Index)
	hdr = binary.BigEndian.AppendUint64(hdr, h.Term)
	sum := sha256.Sum256(state)
	hdr = append(hdr, sum[:]...)
	for _, n := range []uint64{h.Counts.OperationalIntents, h.Counts.Subscriptions, h.Counts.Constraints, h.Counts.UssAvailabilities} {
		hdr = binary.BigEndian.AppendUint64(hdr, n)
	}
	_ = binary.BigEndian.AppendUint64(hdr, uint64(len(state)))
	all := sha256.Sum256(b)
	return append(b, all[:]...)
}

// DecodeBackup checks a whole backup file and decodes its state: the magic,
// the format version, the lengths, the checksum, the state's encoding, and
// that the state's hash and entity counts are the header's. Every error
// wraps ErrBadBackup and says what is wrong.
func DecodeBackup(b []byte) (BackupHeader, *memstore.State, error) {
	var h BackupHeader
	bad := func(format string, args ...any) (BackupHeader, *memstore.State, error) {
		return h, nil, fmt.Errorf("%w: "+format, append([]any{ErrBadBackup}, args...)...)
	}
	if len(b) < len(backupMagic) || !bytes.Equal(b[:len(backupMagic)], backupMagic[:]) {
		n := min(len(b), len(backupMagic))
		return bad("it does not start with the magic %q (it starts with %q): not a raftdss snapshot file", backupMagic[:], b[:n])
	}
	if len(b) < 12 {
		return bad("truncated: %d bytes, too short for the format version", len(b))
	}
	h.Version = binary.BigEndian.Uint32(b[8:])
	switch {
	case h.Version > BackupFormatVersion:
		return bad("format version %d is newer than this program reads (up to %d): use the dssctl of the DSS version that wrote it", h.Version, BackupFormatVersion)
	case h.Version != BackupFormatVersion:
		return bad("unknown format version %d", h.Version)
	}
	if len(b) < backupHeaderLen {
		return bad("truncated: %d bytes, shorter than the %d-byte header", len(b), backupHeaderLen)
	}
	h.ClusterID = binary.BigEndian.Uint64(b[12:])
	h.Index = binary.BigEndian.Uint64(b[20:])
	h.Term = binary.BigEndian.Uint64(b[28:])
	copy(h.StateHash[:], b[36:68])
	h.Counts = EntityCounts{
		OperationalIntents: binary.BigEndian.Uint64(b[68:]),
		Subscriptions:      binary.BigEndian.Uint64(b[76:]),
		Constraints:        binary.BigEndian.Uint64(b[84:]),
		UssAvailabilities:  binary.BigEndian.Uint64(b[92:]),
	}
	h.StateBytes = binary.BigEndian.Uint64(b[100:])
	rest := uint64(len(b) - backupHeaderLen)
	switch {
	case h.StateBytes > rest || rest-h.StateBytes < backupSumLen:
		return bad("truncated: %d bytes, the header announces %d bytes of state and a %d-byte checksum after its %d bytes",
			len(b), h.StateBytes, backupSumLen, backupHeaderLen)
	case rest-h.StateBytes > backupSumLen:
		return bad("%d bytes follow the checksum", rest-h.StateBytes-backupSumLen)
	}
	end := backupHeaderLen + int(h.StateBytes)
	if sum := sha256.Sum256(b[:end]); !bytes.Equal(sum[:], b[end:]) {
		return bad("checksum mismatch: the file is corrupt (changed or damaged since it was written)")
	}
	state := b[backupHeaderLen:end]
	if sha256.Sum256(state) != h.StateHash {
		return bad("the state hash in the header is not the state's")
	}
	if h.Index == 0 {
		return bad("index 0: the index must be non-zero")
	}
	st, err := memstore.ReadSnapshot(bytes.NewReader(state))
	if err != nil {
		return bad("the state does not decode: %v", err)
	}
	if c := countsOf(st); c != h.Counts {
		return bad("the state holds %+v, the header says %+v", c, h.Counts)
	}
	return h, st, nil
}

// Backup takes an online backup of the state: it waits until this node has
// applied everything committed when it is called (a linearizable read
// barrier, so every write acknowledged before, by any node, is in it), then
// takes a point-in-time copy of the state between two applies (Freeze,
// ~2 ms per 100,000 operational intents, the only time writes wait) and
// encodes it, paced, while the node goes on applying. It returns the whole
// backup file (EncodeBackup).
func (s *Store) Backup(ctx context.Context) ([]byte, BackupHeader, error) {
	if err := s.gen.Barrier(ctx); err != nil {
		return nil, BackupHeader{}, fmt.Errorf("scd raftstore: waiting for this node to apply every committed write (no quorum or leader?): %w", err)
	}
	r := s.repo
	r.mu.RLock()
	frozen, index, counts := r.st.Freeze(), r.index, countsOf(r.st)
	r.mu.RUnlock()
	h := BackupHeader{
		ClusterID: s.gen.Node().ClusterID(),
		Index:     max(index, 1),
		Term:      s.gen.Status().Term,
		Counts:    counts,
	}
	// The state is encoded after room for the header, in one buffer of
	// about the right size (that of the node's last raft snapshot).
	w := &appendWriter{b: make([]byte, backupHeaderLen, backupHeaderLen+int(r.snapSize.Load())+backupSumLen)}
	if err := (pacedState{frozen}).WriteSnapshot(w); err != nil {
		return nil, h, fmt.Errorf("scd raftstore: encoding the state: %w", err)
	}
	file := finishBackup(w.b, h)
	h.Version = BackupFormatVersion
	copy(h.StateHash[:], file[36:68])
	h.StateBytes = uint64(len(w.b) - backupHeaderLen)
	return file, h, nil
}

// RestoredClusterID is the ID of the cluster of voters restored from the
// backup h: derived from the backup and the voters, so that every member
// restored from the same file gets the same ID (one run per member
// agrees), and never the backed-up cluster's ID nor the one a cluster of
// the same voters gets when created afresh.
func RestoredClusterID(h BackupHeader, voters []uint64) uint64 {
	f := fnv.New64a()
	_, _ = f.Write([]byte("raftdss restored cluster"))
	for _, v := range []uint64{h.ClusterID, h.Index, h.Term} {
		_, _ = f.Write(binary.BigEndian.AppendUint64(nil, v))
	}
	_, _ = f.Write(h.StateHash[:])
	for _, v := range slices.Sorted(slices.Values(voters)) {
		_, _ = f.Write(binary.BigEndian.AppendUint64(nil, v))
	}
	id := f.Sum64()
	for id == 0 || id == h.ClusterID || id == consensus.ClusterIDOf(voters) {
		id++
	}
	return id
}

// BootstrapRestored writes the data directory dir of member id of a NEW
// cluster of voters, with ID cluster (RestoredClusterID), whose initial
// state is st: Bootstrap for a restored backup.
func BootstrapRestored(dir string, id uint64, voters []uint64, cluster uint64, st *memstore.State, lg *zap.Logger) error {
	data, err := InitialSnapshotData(st, BootstrapIndex)
	if err != nil {
		return err
	}
	return consensus.BootstrapFromSnapshotAs(dir, id, voters, cluster, BootstrapIndex, data, lg)
}
