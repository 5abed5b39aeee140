package raftstore

import "testing"

// TestCheckProposal: a forwarded proposal must be the forwarder's own; an
// undecodable envelope is refused too.
func TestCheckProposal(t *testing.T) {
	b := envelope{id: proposalID{node: 2, epoch: 1 << 40, seq: 1}, payload: []byte{0, 1}}.encode()
	var a applier
	if err := a.CheckProposal(2, b); err != nil {
		t.Errorf("node 2 forwarding its own proposal: %v", err)
	}
	if err := a.CheckProposal(3, b); err == nil {
		t.Error("node 3 forwarding node 2's proposal: accepted")
	}
	if err := a.CheckProposal(2, []byte{9}); err == nil {
		t.Error("undecodable envelope: accepted")
	}
}
