package memstore

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

func (f *Frozen) snapshot(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mutate changes every kind of entity: replacement, deletion, notification
// increments, and a failed operation whose rollback re-installs old
// entities.
func mutate(t testing.TB, s *State, i int) {
	t.Helper()
	mustWrite(t, s, func(r repos.Repo) error {
		o := oir(11, 50, 150+i, 20, 80, 2, 3, models.CellID(4+i%3))
		if err := r.UpsertOperationalIntent(ctx, o); err != nil {
			return err
		}
		if _, err := r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents, vol(nil, nil, nil, nil, 1, 2, 3)); err != nil {
			return err
		}
		if err := r.UpsertConstraint(ctx, constraint(21+i%2, 0, 100, 2)); err != nil {
			return err
		}
		return r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "uss1", Availability: models.AvailabilityDown, UpdatedAt: at(2 + i)})
	})
	boom := errors.New("boom")
	if _, err := s.Apply(ctx, write(func(r repos.Repo) error {
		if err := r.UpsertOperationalIntent(ctx, oir(10, 0, 100, 0, 1, 7)); err != nil {
			return err
		}
		if err := r.DeleteSubscription(ctx, uid(2)); err != nil {
			return err
		}
		if err := r.DeleteConstraint(ctx, uid(20)); err != nil {
			return err
		}
		return boom
	})); !errors.Is(err, boom) {
		t.Fatalf("failing op: %v", err)
	}
}

func TestFreezeMatchesStateAndIsIsolated(t *testing.T) {
	s := NewState()
	seed(t, s)
	want, wantHash := s.snapshot(t), s.Hash()
	f := s.Freeze()
	if got := f.snapshot(t); !bytes.Equal(got, want) {
		t.Fatal("frozen snapshot differs from the state's")
	}
	if f.Hash() != wantHash {
		t.Fatal("frozen hash differs from the state's")
	}
	if f.LenOperationalIntents() != s.LenOperationalIntents() {
		t.Fatalf("frozen has %d OIRs, state %d", f.LenOperationalIntents(), s.LenOperationalIntents())
	}
	for i := range 3 {
		mutate(t, s, i)
	}
	if bytes.Equal(s.snapshot(t), want) {
		t.Fatal("mutate changed nothing; the test proves nothing")
	}
	if got := f.snapshot(t); !bytes.Equal(got, want) {
		t.Fatal("frozen snapshot changed with the state")
	}
	// A state restored from the frozen bytes is the state at Freeze.
	r, err := ReadSnapshot(bytes.NewReader(f.snapshot(t)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash() != wantHash {
		t.Fatal("restored frozen snapshot has another hash")
	}
	if got := NewState().Freeze().snapshot(t); !bytes.Equal(got, NewState().snapshot(t)) {
		t.Fatal("empty frozen snapshot differs")
	}
}

// TestFreezeConcurrentWrites serialises frozen copies while the state keeps
// changing, rollbacks included; run with -race.
func TestFreezeConcurrentWrites(t *testing.T) {
	s := NewState()
	seed(t, s)
	var wg sync.WaitGroup
	for i := range 20 {
		f, want := s.Freeze(), s.snapshot(t)
		wg.Go(func() {
			var buf bytes.Buffer
			if err := f.WriteSnapshot(&buf); err != nil || !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("frozen copy %d changed under concurrent writes (err %v)", i, err)
			}
		})
		mutate(t, s, i)
	}
	wg.Wait()
}

func BenchmarkFreeze(b *testing.B) {
	s, _ := loadState(b, newLoadGen(), benchOIRs)
	b.Run("freeze", func(b *testing.B) {
		for range b.N {
			_ = s.Freeze()
		}
	})
	b.Run("freeze+hash", func(b *testing.B) {
		for range b.N {
			_ = s.Freeze().Hash()
		}
	})
}
