package raftstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

// smallBackup is the backup file of a state with a few entities of a
// workload, small enough to try every truncation and every flipped byte.
func smallBackup(t *testing.T, ops int) ([]byte, *memstore.Store) {
	t.Helper()
	ref := memstore.New()
	w := newWorkload(5)
	ctx := context.Background()
	for range ops {
		op := w.op()
		res, err := ref.Transact(ctx, op)
		w.learn(op, res, err)
	}
	var buf strings.Builder
	if err := ref.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	st, err := memstore.ReadSnapshot(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	h := BackupHeader{ClusterID: 77, Index: 1234, Term: 5, Counts: countsOf(st)}
	return EncodeBackup(h, []byte(buf.String())), ref
}

func TestBackupFormatRoundTrip(t *testing.T) {
	b, ref := smallBackup(t, 40)
	h, st, err := DecodeBackup(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != BackupFormatVersion || h.ClusterID != 77 || h.Index != 1234 || h.Term != 5 {
		t.Fatalf("header %+v", h)
	}
	if st.Hash() != ref.Hash() || h.StateHash != ref.Hash() {
		t.Fatalf("state hash %x, header %x, want %x", st.Hash(), h.StateHash, ref.Hash())
	}
	if h.Counts.OperationalIntents == 0 || h.Counts != countsOf(st) {
		t.Fatalf("counts %+v, state %+v", h.Counts, countsOf(st))
	}
}

// refuse checks that DecodeBackup refuses b with an error naming want.
func refuse(t *testing.T, what string, b []byte, want string) {
	t.Helper()
	_, st, err := DecodeBackup(b)
	if err == nil || st != nil {
		t.Fatalf("%s: accepted", what)
	}
	if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %q, want one naming %q", what, err, want)
	}
}

// resum recomputes the checksum of a changed file, so that only the change
// itself can make it refused.
func resum(b []byte) []byte {
	b = append([]byte(nil), b...)
	sum := sha256.Sum256(b[:len(b)-backupSumLen])
	copy(b[len(b)-backupSumLen:], sum[:])
	return b
}

func TestBackupFormatRefusesBadFiles(t *testing.T) {
	good, _ := smallBackup(t, 20)
	t.Logf("file of %d bytes", len(good))
	// Every truncation: in the magic, the version, the header, the state,
	// the checksum.
	for n := range len(good) {
		_, _, err := DecodeBackup(good[:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(good))
		}
		if !errors.Is(err, ErrBadBackup) {
			t.Fatalf("truncated to %d: %v does not wrap ErrBadBackup", n, err)
		}
	}
	refuse(t, "truncated in the header", good[:50], "truncated")
	refuse(t, "truncated in the state", good[:backupHeaderLen+10], "truncated")
	refuse(t, "truncated in the checksum", good[:len(good)-1], "truncated")
	refuse(t, "empty", nil, "magic")
	// Every flipped byte.
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		if _, _, err := DecodeBackup(b); err == nil || !errors.Is(err, ErrBadBackup) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	mid := append([]byte(nil), good...)
	mid[backupHeaderLen+len(good[backupHeaderLen:])/2] ^= 1
	refuse(t, "flipped state byte", mid, "checksum mismatch")
	refuse(t, "trailing bytes", append(append([]byte(nil), good...), 0), "follow the checksum")

	foreign := append([]byte("PGDMP\x01\x0e\x00"), good[8:]...)
	refuse(t, "another program's file", foreign, "not a raftdss snapshot file")
	refuse(t, "a text file", []byte("hello, world\n"), "not a raftdss snapshot file")

	future := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(future[8:], BackupFormatVersion+1)
	refuse(t, "a future format version", resum(future), "newer than this program reads")
	zero := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(zero[8:], 0)
	refuse(t, "format version 0", resum(zero), "unknown format version 0")

	// Consistent checksums over an inconsistent header.
	hash := append([]byte(nil), good...)
	hash[40] ^= 1
	refuse(t, "a header hash that is not the state's", resum(hash), "state hash")
	counts := append([]byte(nil), good...)
	binary.BigEndian.PutUint64(counts[68:], binary.BigEndian.Uint64(counts[68:])+1)
	refuse(t, "wrong entity counts", resum(counts), "the header says")
	noIndex := append([]byte(nil), good...)
	binary.BigEndian.PutUint64(noIndex[20:], 0)
	refuse(t, "index 0", resum(noIndex), "non-zero")
	// State bytes that are not a memstore snapshot, checksummed.
	junk := EncodeBackup(BackupHeader{ClusterID: 1, Index: 1}, []byte("not a state"))
	refuse(t, "undecodable state", junk, "does not decode")
}

// TestBackupUnderWritesAndRestore takes a backup on a follower of a 3-node
// cluster while writes go on, checks that every write acknowledged before
// the backup began is in it and that its hash is the cluster's at its
// index, then restores it into a new 3-node cluster with a new cluster ID
// that serves exactly that state.
func TestBackupUnderWritesAndRestore(t *testing.T) {
	c := newCluster(t, 3, func(cc *consensus.Config) { cc.SnapshotEntries = 64; cc.CatchUpEntries = 16 })
	ctx := context.Background()
	w := newWorkload(21)
	for i := range 100 {
		op := w.op()
		res, err := c.stores[uint64(1+i%3)].Transact(ctx, op)
		w.learn(op, res, err)
	}
	// Every write acknowledged so far (its index at most this) must be in
	// the backup: the leader's commit index once they were answered.
	var leader, follower *Store
	for _, s := range c.stores {
		if s.Status().IsLeader {
			leader = s
		} else {
			follower = s
		}
	}
	ackedBy := leader.Status().Commit

	// Writes go on through the leader while the follower backs up.
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w2 := newWorkload(22)
		for !stop.Load() {
			op := w2.op()
			res, err := leader.Transact(ctx, op)
			w2.learn(op, res, err)
		}
	}()
	file, h, err := follower.Backup(ctx)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if h.Index < ackedBy {
		t.Fatalf("backup at index %d, before the acknowledged writes up to %d", h.Index, ackedBy)
	}
	dh, st, err := DecodeBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if dh != h || st.Hash() != h.StateHash {
		t.Fatalf("decoded header %+v, returned %+v", dh, h)
	}
	if h.ClusterID != c.stores[1].Node().ClusterID() {
		t.Fatalf("cluster ID %d, the cluster's %d", h.ClusterID, c.stores[1].Node().ClusterID())
	}

	voters := []uint64{1, 2, 3}
	cluster := RestoredClusterID(h, voters)
	if cluster == h.ClusterID || cluster == consensus.ClusterIDOf(voters) {
		t.Fatalf("restored cluster ID %d is not new", cluster)
	}
	nc := newRestoredCluster(t, voters, cluster, st)
	_, hash := nc.converged(0)
	if hash != h.StateHash {
		t.Fatalf("restored cluster's state hash %x, the backup's %x", hash, h.StateHash)
	}
	for _, s := range nc.stores {
		if got := s.Node().ClusterID(); got != cluster {
			t.Fatalf("restored node's cluster ID %d, want %d", got, cluster)
		}
	}
	// The restored cluster takes writes, and its replicas agree on them.
	for i := range 20 {
		op := w.op()
		res, err := nc.stores[uint64(1+i%3)].Transact(ctx, op)
		w.learn(op, res, err)
	}
	nc.converged(0)
}

// newRestoredCluster writes the data directories of a new cluster of
// voters with ID clusterID from st (BootstrapRestored) and starts it.
func newRestoredCluster(t *testing.T, voters []uint64, clusterID uint64, st *memstore.State) *cluster {
	t.Helper()
	c := &cluster{
		t:      t,
		lg:     zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		net:    memnet.New(2),
		peers:  map[uint64]string{},
		dirs:   map[uint64]string{},
		stores: map[uint64]*Store{},
	}
	for _, id := range voters {
		c.peers[id] = fmt.Sprintf("restored-%d", id)
		c.dirs[id] = t.TempDir()
		if err := BootstrapRestored(c.dirs[id], id, voters, clusterID, st, c.lg); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range c.stores {
			s.Stop()
		}
		c.net.Close()
	})
	for _, id := range voters {
		if err := c.start(id); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
