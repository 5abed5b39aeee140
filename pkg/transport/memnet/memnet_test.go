package memnet_test

import (
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/internal/transporttest"
	"github.com/raftdss/dss/pkg/transport/memnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

type cluster struct {
	net *memnet.Network
	tr  map[uint64]transport.Transport
	rec map[uint64]*transporttest.Recorder
}

// newCluster makes a fully meshed network of nodes 1..n.
func newCluster(t *testing.T, seed int64, n int, opts ...memnet.Option) *cluster {
	t.Helper()
	opts = append([]memnet.Option{memnet.WithLogger(zaptest.NewLogger(t))}, opts...)
	c := &cluster{net: memnet.New(seed, opts...), tr: map[uint64]transport.Transport{}, rec: map[uint64]*transporttest.Recorder{}}
	for id := uint64(1); id <= uint64(n); id++ {
		c.rec[id] = transporttest.NewRecorder()
		c.tr[id] = c.net.Transport(id, c.rec[id])
	}
	for id, tr := range c.tr {
		for peer := range c.tr {
			if peer != id {
				tr.AddPeer(peer, "")
			}
		}
	}
	t.Cleanup(c.net.Close)
	return c
}

func indexes(msgs []*raftpb.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.GetIndex()
	}
	return out
}

func TestDeliversInOrderAndClones(t *testing.T) {
	c := newCluster(t, 1, 3)
	var sent []*raftpb.Message
	for i := uint64(0); i < 100; i++ {
		sent = append(sent, transporttest.Msg(1, 2, i))
	}
	c.tr[1].Send(sent)
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 3, 7)})
	got := c.rec[2].WaitMessages(t, 100, wait)
	if want := indexes(sent); !slices.Equal(indexes(got), want) {
		t.Fatalf("node 2 got %v, want %v", indexes(got), want)
	}
	if got[0] == sent[0] || &got[0].Entries[0].Data[0] == &sent[0].Entries[0].Data[0] {
		t.Fatal("receiver shares memory with sender")
	}
	c.rec[3].WaitMessages(t, 1, wait)
	if n := len(c.rec[1].Messages()); n != 0 {
		t.Fatalf("node 1 received %d messages, want 0", n)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	c := newCluster(t, 1, 3)
	c.net.Partition([]uint64{1}, []uint64{2, 3})
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	c.tr[2].Send([]*raftpb.Message{transporttest.Msg(2, 3, 1)})
	c.rec[3].WaitMessages(t, 1, wait) // same side: delivered
	c.rec[1].WaitFor(t, wait, "unreachable report for 2", func() bool { return c.rec[1].Unreachable(2) > 0 })
	if n := len(c.rec[2].Messages()); n != 0 {
		t.Fatalf("message crossed the partition")
	}

	c.net.Heal()
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 2)})
	if got := c.rec[2].WaitMessages(t, 1, wait); got[0].GetIndex() != 2 {
		t.Fatalf("after heal got index %d, want 2", got[0].GetIndex())
	}
}

func TestIsolateAndDisconnect(t *testing.T) {
	c := newCluster(t, 1, 3)
	c.net.Disconnect(1, 2)
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	c.tr[2].Send([]*raftpb.Message{transporttest.Msg(2, 1, 1)}) // reverse link still up
	c.rec[1].WaitMessages(t, 1, wait)
	c.rec[1].WaitFor(t, wait, "unreachable 2", func() bool { return c.rec[1].Unreachable(2) > 0 })
	c.net.Reconnect(1, 2)
	c.net.Isolate(3)
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 2), transporttest.Msg(1, 3, 2)})
	c.rec[2].WaitMessages(t, 1, wait)
	c.rec[1].WaitFor(t, wait, "unreachable 3", func() bool { return c.rec[1].Unreachable(3) > 0 })
	if len(c.rec[3].Messages()) != 0 {
		t.Fatal("isolated node received a message")
	}
}

// deliveredWithDrops sends 500 messages from 1 to 2 at drop rate 0.3 and
// returns the indexes that arrived.
func deliveredWithDrops(t *testing.T, seed int64) []uint64 {
	c := newCluster(t, seed, 2)
	c.net.SetDropRate(0.3)
	var msgs []*raftpb.Message
	for i := uint64(0); i < 500; i++ {
		msgs = append(msgs, transporttest.Msg(1, 2, i))
	}
	c.tr[1].Send(msgs)
	// A marker sent with no loss tells us everything before it has arrived
	// (per-link order is preserved).
	c.net.SetDropRate(0)
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1000)})
	c.rec[2].WaitFor(t, wait, "marker", func() bool {
		m := c.rec[2].Messages()
		return len(m) > 0 && m[len(m)-1].GetIndex() == 1000
	})
	got := indexes(c.rec[2].Messages())
	c.net.Close()
	return got[:len(got)-1]
}

func TestDropsReproduceWithSeed(t *testing.T) {
	a := deliveredWithDrops(t, 42)
	b := deliveredWithDrops(t, 42)
	other := deliveredWithDrops(t, 43)
	if !slices.Equal(a, b) {
		t.Fatal("same seed delivered different messages")
	}
	if slices.Equal(a, other) {
		t.Fatal("different seeds delivered the same messages")
	}
	if len(a) < 250 || len(a) > 450 {
		t.Fatalf("delivered %d of 500 at drop rate 0.3", len(a))
	}
}

func TestQueueOverflowReportsUnreachable(t *testing.T) {
	c := newCluster(t, 1, 2, memnet.WithQueueSize(4))
	c.rec[2].Block = make(chan struct{}) // receiver holds the first message
	var msgs []*raftpb.Message
	for i := uint64(0); i < 20; i++ {
		msgs = append(msgs, transporttest.Msg(1, 2, i))
	}
	c.tr[1].Send(msgs)
	c.rec[1].WaitFor(t, wait, "unreachable", func() bool { return c.rec[1].Unreachable(2) > 0 })
	close(c.rec[2].Block)
	// At most one in delivery plus the queue made it.
	c.rec[2].WaitMessages(t, 1, wait)
	time.Sleep(20 * time.Millisecond)
	if n := len(c.rec[2].Messages()); n > 5 {
		t.Fatalf("%d messages delivered through a queue of 4", n)
	}
}

func TestSnapshotOutcome(t *testing.T) {
	c := newCluster(t, 1, 3)
	c.tr[1].Send([]*raftpb.Message{transporttest.Snap(1, 2, 1<<16)})
	c.rec[1].WaitFor(t, wait, "snapshot finish", func() bool {
		return slices.Equal(c.rec[1].Snapshots(2), []raft.SnapshotStatus{raft.SnapshotFinish})
	})
	if got := c.rec[2].Messages(); len(got) != 1 || len(got[0].GetSnapshot().GetData()) != 1<<16 {
		t.Fatal("snapshot not delivered whole")
	}
	c.net.Isolate(3)
	c.tr[1].Send([]*raftpb.Message{transporttest.Snap(1, 3, 10)})
	c.rec[1].WaitFor(t, wait, "snapshot failure", func() bool {
		return slices.Equal(c.rec[1].Snapshots(3), []raft.SnapshotStatus{raft.SnapshotFailure})
	})
	c.net.Heal()
	c.net.SetDropRate(1)
	c.tr[1].Send([]*raftpb.Message{transporttest.Snap(1, 3, 10)})
	c.rec[1].WaitFor(t, wait, "snapshot failure on loss", func() bool { return len(c.rec[1].Snapshots(3)) == 2 })
	if c.rec[1].Snapshots(3)[1] != raft.SnapshotFailure {
		t.Fatal("lost snapshot not reported as failure")
	}
}

func TestUnknownAndRemovedPeers(t *testing.T) {
	c := newCluster(t, 1, 3)
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 9, 1)})
	c.rec[1].WaitFor(t, wait, "unreachable 9", func() bool { return c.rec[1].Unreachable(9) > 0 })

	// 2 forgets 1: 1's messages are refused by the receiver.
	c.tr[2].RemovePeer(1)
	c.tr[2].RemovePeer(1) // idempotent
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	c.rec[1].WaitFor(t, wait, "unreachable 2", func() bool { return c.rec[1].Unreachable(2) > 0 })
	c.tr[2].AddPeer(1, "") // removed IDs never come back
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 2)})
	c.rec[1].WaitFor(t, wait, "second unreachable 2", func() bool { return c.rec[1].Unreachable(2) > 1 })
	if len(c.rec[2].Messages()) != 0 {
		t.Fatal("removed peer's message was processed")
	}

	// A forged From is refused.
	c.tr[3].Send([]*raftpb.Message{transporttest.Msg(1, 2, 3)})
	c.rec[3].WaitFor(t, wait, "unreachable from forged", func() bool { return c.rec[3].Unreachable(2) > 0 })
	if len(c.rec[2].Messages()) != 0 {
		t.Fatal("forged message was processed")
	}
}

func TestDelayAndStopWhileBlocked(t *testing.T) {
	c := newCluster(t, 1, 2)
	c.net.SetDelay(30*time.Millisecond, 40*time.Millisecond)
	start := time.Now()
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1), transporttest.Msg(1, 2, 2)})
	c.rec[2].WaitMessages(t, 2, wait)
	if d := time.Since(start); d < 30*time.Millisecond || d > time.Second {
		t.Fatalf("delay %v not in [30ms, 1s]", d)
	}

	// A receiver blocked in Process must not make Stop hang.
	c.net.SetDelay(0, 0)
	c.rec[2].Block = make(chan struct{})
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 3)})
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() { c.tr[2].Stop(); c.tr[2].Stop(); c.tr[1].Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Stop blocked behind a blocked Process")
	}
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 4)}) // after Stop: no-op
}

func TestRestartReplacesEndpoint(t *testing.T) {
	c := newCluster(t, 1, 2)
	c.tr[2].Stop()
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 1)})
	c.rec[1].WaitFor(t, wait, "unreachable while down", func() bool { return c.rec[1].Unreachable(2) > 0 })
	rec := transporttest.NewRecorder()
	tr := c.net.Transport(2, rec)
	tr.AddPeer(1, "")
	c.tr[1].Send([]*raftpb.Message{transporttest.Msg(1, 2, 2)})
	if got := rec.WaitMessages(t, 1, wait); got[0].GetIndex() != 2 {
		t.Fatalf("restarted node got %d", got[0].GetIndex())
	}
}
