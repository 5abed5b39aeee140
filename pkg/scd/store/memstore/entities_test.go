package memstore

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// TestEntitiesRoundTrip: a state rebuilt from its Entities is the same state
// (same canonical snapshot, indexes included: searches and dependents
// answer alike), and Entities hands out copies.
func TestEntitiesRoundTrip(t *testing.T) {
	s := NewState()
	lower := float32(3.5)
	mustWrite(t, s, func(r repos.Repo) error {
		if err := r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "uss1", Availability: models.AvailabilityDown, UpdatedAt: at(1)}); err != nil {
			return err
		}
		if err := r.UpsertSubscription(ctx, &models.Subscription{ID: "s1", Manager: "uss1", NotificationIndex: 7, Implicit: true,
			NotifyForOperationalIntents: true, StartTime: at(0), EndTime: at(100), Cells: []models.CellID{3, 1}, UpdatedAt: at(2).Add(7)}); err != nil {
			return err
		}
		if err := r.UpsertConstraint(ctx, &models.Constraint{ID: "c1", Manager: "uss2", Version: 2, AltitudeLower: &lower,
			StartTime: at(0), EndTime: at(50), Cells: []models.CellID{2}, UpdatedAt: at(3)}); err != nil {
			return err
		}
		if err := r.UpsertDSSInstance(ctx, &models.DSSInstance{ID: "n1", PublicEndpoint: "https://n1",
			Heartbeat: models.Heartbeat{Timestamp: at(20).Add(3), Reporter: "op", Source: "cron", Index: 4}}); err != nil {
			return err
		}
		return r.UpsertOperationalIntent(ctx, &models.OperationalIntent{ID: "o1", Manager: "uss1", Version: 3, State: models.StateActivated,
			PastOVNs: []models.OVN{"p1", "p2"}, SubscriptionID: "s1", StartTime: at(0), EndTime: at(10), AltitudeUpper: 100,
			Cells: []models.CellID{1}, UpdatedAt: at(4).Add(1)})
	})
	// Operations without a write time leave the last write time zero;
	// NewStateFromEntities raises it to the newest UpdatedAt.
	raised, err := NewStateFromEntities(s.Entities())
	if err != nil {
		t.Fatal(err)
	}
	if lw := raised.Entities().LastWrite; !s.Entities().LastWrite.IsZero() || lw != at(4).Add(1) {
		t.Fatalf("last write %v: want it raised to the newest UpdatedAt", lw)
	}

	e := s.Entities()
	e.LastWrite = at(10)
	if s, err = NewStateFromEntities(e); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Entities(), e) {
		t.Fatalf("Entities of the rebuilt state differ from those it was built from")
	}
	got, err := NewStateFromEntities(s.Entities())
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := s.WriteSnapshot(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the state rebuilt from Entities encodes differently")
	}
	if deps := view(t, got, func(r repos.Repo) ([]models.ID, error) { return r.GetDependentOperationalIntents(ctx, "s1") }); !reflect.DeepEqual(deps, []models.ID{"o1"}) {
		t.Fatalf("dependents of s1: %v", deps)
	}
	found := view(t, got, func(r repos.Repo) ([]*models.OperationalIntent, error) {
		return r.SearchOperationalIntents(ctx, &models.Volume4D{Cells: []models.CellID{1}})
	})
	if len(found) != 1 || found[0].ID != "o1" {
		t.Fatalf("search on the rebuilt state: %v", found)
	}

	// Copies: changing what Entities returned changes nothing stored.
	e.OperationalIntents[0].PastOVNs[0] = "changed"
	e.Subscriptions[0].Cells[0] = 99
	*e.Constraints[0].AltitudeLower = 1
	if h := s.Hash(); h != got.Hash() {
		t.Fatal("modifying Entities' result modified a state")
	}
}

func TestNewStateFromEntitiesNormalisesAndRefuses(t *testing.T) {
	local := time.FixedZone("X", 3600)
	st, err := NewStateFromEntities(&Entities{Subscriptions: []*models.Subscription{{ID: "s", Cells: []models.CellID{5, 1, 5},
		StartTime: at(0).In(local), EndTime: at(1).In(local), UpdatedAt: at(2).In(local)}}})
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Entities().Subscriptions[0]
	if !reflect.DeepEqual(sub.Cells, []models.CellID{1, 5}) || sub.UpdatedAt.Location() != time.UTC {
		t.Fatalf("not normalised: %+v", sub)
	}

	for _, tt := range []struct {
		name string
		e    *Entities
		want string
	}{
		{"duplicate OIR", &Entities{OperationalIntents: []*models.OperationalIntent{{ID: "o"}, {ID: "o"}}}, "duplicate"},
		{"unknown subscription", &Entities{OperationalIntents: []*models.OperationalIntent{{ID: "o", SubscriptionID: "s"}}}, "unknown subscription"},
		{"empty ID", &Entities{Constraints: []*models.Constraint{{}}}, "without ID"},
		{"duplicate USS", &Entities{Availabilities: []*models.UssAvailability{{USS: "u"}, {USS: "u"}}}, "duplicate"},
	} {
		if _, err := NewStateFromEntities(tt.e); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestSlotSet: add reports each slot new exactly once until slotSetMax
// distinct slots, then everything (the search sorts its candidates then).
func TestSlotSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, distinct := range []int{0, 1, 50, slotSetMax, slotSetMax + 1, 3 * slotSetMax} {
		var s slotSet
		seen := map[uint32]bool{}
		for range 20 * (distinct + 1) {
			slot := uint32(rng.IntN(distinct+1)) * 7919 // spread, with collisions mod the table size
			if distinct == 0 {
				slot = 0
			}
			got := s.add(slot)
			want := !seen[slot] || s.overflowed
			if got != want {
				t.Fatalf("distinct %d: add(%d) = %v, want %v (seen %v, overflowed %v)", distinct, slot, got, want, seen[slot], s.overflowed)
			}
			seen[slot] = true
		}
		if wantOverflow := len(seen) > slotSetMax; s.overflowed != wantOverflow {
			t.Errorf("distinct %d: overflowed = %v, want %v", len(seen), s.overflowed, wantOverflow)
		}
	}
}
