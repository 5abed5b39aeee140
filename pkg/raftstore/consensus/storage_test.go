package consensus

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func entries(from, to, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term)})
	}
	return out
}

// Snapshots go in and out of snapStorage with their data, which is shared,
// never copied, and always the data of the metadata it comes with.
func TestSnapStorageKeepsDataBesideMemoryStorage(t *testing.T) {
	s := newSnapStorage()
	if err := s.Append(entries(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if snap, err := s.Snapshot(); err != nil || len(snap.GetData()) != 0 || snap.GetMetadata().GetIndex() != 0 {
		t.Fatalf("empty storage: snapshot %v, %v", snap, err)
	}

	data := []byte("state at 5")
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if err := s.CreateSnapshot(5, cs, data); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSnapshot(4, cs, []byte("older")); err == nil {
		t.Fatal("an older snapshot was accepted")
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if md := snap.GetMetadata(); md.GetIndex() != 5 || md.GetTerm() != 1 || !slices.Equal(md.GetConfState().GetVoters(), cs.GetVoters()) {
		t.Fatalf("metadata %v", md)
	}
	if string(snap.GetData()) != string(data) || &snap.GetData()[0] != &data[0] {
		t.Fatal("snapshot data copied or lost")
	}
	// MemoryStorage itself holds no copy of the data.
	if inner, _ := s.MemoryStorage.Snapshot(); len(inner.GetData()) != 0 {
		t.Fatalf("MemoryStorage holds %d bytes of snapshot data", len(inner.GetData()))
	}
	// Compaction and entries work as on a MemoryStorage.
	if err := s.Compact(5); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 6 {
		t.Fatalf("first index %d after compacting to 5, want 6", first)
	}

	// A snapshot from a leader replaces everything, data included.
	leaderData := []byte("state at 20")
	in := &raftpb.Snapshot{Data: leaderData, Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(20), Term: proto.Uint64(2), ConfState: cs}}
	if err := s.ApplySnapshot(in); err != nil {
		t.Fatal(err)
	}
	if len(in.GetData()) != len(leaderData) {
		t.Fatal("ApplySnapshot changed its argument")
	}
	snap, err = s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.GetMetadata().GetIndex() != 20 || &snap.GetData()[0] != &leaderData[0] {
		t.Fatalf("after ApplySnapshot: index %d, data %q", snap.GetMetadata().GetIndex(), snap.GetData())
	}
	if last, _ := s.LastIndex(); last != 20 {
		t.Fatalf("last index %d after applying a snapshot at 20", last)
	}
}
