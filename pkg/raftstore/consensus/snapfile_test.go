package consensus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// TestSaveSnapFileReadByEtcd checks that the streamed snapshot file is read
// back exactly by etcd's snap package, for empty, small and multi-chunk data.
func TestSaveSnapFileReadByEtcd(t *testing.T) {
	big := make([]byte, 3*snapSyncEvery+12345)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for i, data := range [][]byte{nil, []byte("x"), big} {
		dir := t.TempDir()
		s := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(uint64(100 + i)), Term: proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
		if err := saveSnapFile(dir, s); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || filepath.Ext(entries[0].Name()) != ".snap" {
			t.Fatalf("files %v", entries)
		}
		got, err := snap.Read(zap.NewNop(), filepath.Join(dir, entries[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, s) || !bytes.Equal(got.GetData(), data) {
			t.Fatalf("case %d: read back %v", i, got.GetMetadata())
		}
		ss := snap.New(zap.NewNop(), dir)
		got, err = ss.LoadNewestAvailable([]*walpb.Snapshot{{Index: proto.Uint64(uint64(100 + i)), Term: proto.Uint64(3)}})
		if err != nil || !proto.Equal(got, s) {
			t.Fatalf("case %d: LoadNewestAvailable: %v", i, err)
		}
		// Same name as etcd's SaveSnap writes.
		dir2 := t.TempDir()
		if err := snap.New(zap.NewNop(), dir2).SaveSnap(s); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir2, entries[0].Name())); err != nil {
			t.Fatal(err)
		}
	}
}
