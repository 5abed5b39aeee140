package main

import (
	"context"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// TestReadsViaLogAnswersLikeTheStore: the probe entry changes nothing and
// the read's own answer comes back unchanged.
func TestReadsViaLogAnswersLikeTheStore(t *testing.T) {
	st := readsViaLog{memstore.New()}
	_, err := st.Transact(context.Background(), &scd.GetOperationalIntent{Caller: "uss1", ID: "0b1e7a6e-8f5d-4f3c-9a4e-2d3c4b5a6f70"})
	if models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("get of an absent OIR: %v, want not found", err)
	}
	res, err := st.Transact(context.Background(), &scd.GetUssAvailability{USS: "uss1"})
	if err != nil {
		t.Fatalf("availability read: %v", err)
	}
	if _, ok := res.(scd.AvailabilityView); !ok {
		t.Fatalf("availability read answered %T", res)
	}
}
