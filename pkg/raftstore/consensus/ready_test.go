package consensus

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestSplitMessagesHoldsBackOnlyDurabilityPromises checks which messages of
// a Ready go out before it is persisted: all but the acknowledgements of
// entries and votes, in their original order, on every call.
func TestSplitMessagesHoldsBackOnlyDurabilityPromises(t *testing.T) {
	mustWait := map[raftpb.MessageType]bool{
		raftpb.MsgAppResp: true, raftpb.MsgVoteResp: true, raftpb.MsgPreVoteResp: true,
	}
	var msgs []*raftpb.Message
	for v := range raftpb.MessageType_name {
		msgs = append(msgs, &raftpb.Message{Type: raftpb.MessageType(v).Enum(), To: proto.Uint64(2), Index: proto.Uint64(uint64(v))})
	}
	slices.SortFunc(msgs, func(a, b *raftpb.Message) int { return int(a.GetIndex()) - int(b.GetIndex()) })
	var n Node
	for round := range 2 {
		now, later := n.splitMessages(msgs)
		if len(now)+len(later) != len(msgs) {
			t.Fatalf("round %d: %d + %d messages out of %d", round, len(now), len(later), len(msgs))
		}
		for _, part := range []struct {
			msgs []*raftpb.Message
			wait bool
		}{{now, false}, {later, true}} {
			for i, m := range part.msgs {
				if mustWait[m.GetType()] != part.wait {
					t.Errorf("round %d: %v sent after persisting = %v, want %v", round, m.GetType(), part.wait, mustWait[m.GetType()])
				}
				if i > 0 && part.msgs[i-1].GetIndex() >= m.GetIndex() {
					t.Errorf("round %d: order changed at %v", round, m.GetType())
				}
			}
		}
		if len(later) != len(mustWait) {
			t.Errorf("round %d: %d messages held back, want %d", round, len(later), len(mustWait))
		}
	}
}
