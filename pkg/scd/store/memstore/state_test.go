package memstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// seed fills s with a few entities of every kind.
func seed(t testing.TB, s *State) {
	t.Helper()
	mustWrite(t, s, func(r repos.Repo) error {
		for _, f := range []func() error{
			func() error { return r.UpsertSubscription(ctx, sub(1, 0, 100, true, true, 1, 2)) },
			func() error { return r.UpsertSubscription(ctx, sub(2, 0, 100, true, false, 3)) },
			func() error {
				o := oir(10, 0, 100, 0, 50, 1, 2)
				o.SubscriptionID = uid(1)
				return r.UpsertOperationalIntent(ctx, o)
			},
			func() error { return r.UpsertOperationalIntent(ctx, oir(11, 50, 150, 20, 80, 2, 3)) },
			func() error { return r.UpsertConstraint(ctx, constraint(20, 0, 100, 1)) },
			func() error {
				return r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "uss1", Availability: models.AvailabilityNormal, UpdatedAt: at(1)})
			},
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
}

// everything reads the whole observable state through the Repo.
func everything(t testing.TB, s *State) any {
	t.Helper()
	return view(t, s, func(r repos.Repo) ([]any, error) {
		all := vol(nil, nil, nil, nil, 1, 2, 3, 4, 5)
		o, err := r.SearchOperationalIntents(ctx, all)
		if err != nil {
			return nil, err
		}
		sb, err := r.SearchSubscriptions(ctx, all)
		if err != nil {
			return nil, err
		}
		c, err := r.SearchConstraints(ctx, all)
		if err != nil {
			return nil, err
		}
		d, err := r.GetDependentOperationalIntents(ctx, uid(1))
		if err != nil {
			return nil, err
		}
		a, err := r.GetUssAvailability(ctx, "uss1")
		if err != nil {
			return nil, err
		}
		return []any{o, sb, c, d, a}, nil
	})
}

func TestApplyRollsBackFailedOperation(t *testing.T) {
	s := NewState()
	seed(t, s)
	hash, before := s.Hash(), everything(t, s)
	boom := errors.New("key check failed")

	mutate := func(r repos.Repo) error {
		for _, f := range []func() error{
			func() error { return r.UpsertSubscription(ctx, sub(3, 0, 100, true, true, 4)) },
			func() error {
				o := oir(12, 0, 100, 0, 10, 4, 5)
				o.SubscriptionID = uid(3)
				return r.UpsertOperationalIntent(ctx, o)
			},
			func() error { return r.UpsertOperationalIntent(ctx, oir(10, 0, 100, 0, 10, 5)) }, // replace
			func() error { return r.DeleteOperationalIntent(ctx, uid(11)) },
			func() error {
				_, err := r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents, vol(nil, nil, nil, nil, 1, 2, 3, 4))
				return err
			},
			func() error { return r.DeleteSubscription(ctx, uid(2)) },
			func() error { return r.DeleteSubscription(ctx, uid(1)) }, // cascades to nothing now: OIR 10 moved off it
			func() error { return r.DeleteConstraint(ctx, uid(20)) },
			func() error { return r.UpsertConstraint(ctx, constraint(21, 0, 100, 2)) },
			func() error {
				return r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "uss1", Availability: models.AvailabilityDown, UpdatedAt: at(2)})
			},
			func() error {
				return r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "uss9", UpdatedAt: at(2)})
			},
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}

	_, err := s.Apply(ctx, write(func(r repos.Repo) error {
		if err := mutate(r); err != nil {
			t.Fatalf("mutation failed early: %v", err)
		}
		return boom
	}))
	if !errors.Is(err, boom) {
		t.Fatalf("Apply = %v, want the operation's error", err)
	}
	if s.Hash() != hash || !reflect.DeepEqual(everything(t, s), before) {
		t.Fatal("state changed by a failed operation")
	}

	// A panicking operation is rolled back too and reported as Internal.
	_, err = s.Apply(ctx, write(func(r repos.Repo) error {
		if err := mutate(r); err != nil {
			return err
		}
		panic("bug in an operation")
	}))
	if models.CodeOf(err) != models.CodeInternal {
		t.Fatalf("panicking op: %v, want Internal", err)
	}
	if s.Hash() != hash || !reflect.DeepEqual(everything(t, s), before) {
		t.Fatal("state changed by a panicking operation")
	}
	// Intern reference counts are restored too.
	fresh := NewState()
	seed(t, fresh)
	if !reflect.DeepEqual(fresh.strs, s.strs) {
		t.Fatalf("intern table after rollback %v, want %v", s.strs, fresh.strs)
	}

	// The same mutation succeeds when the operation does not fail.
	mustWrite(t, s, mutate)
	if s.Hash() == hash {
		t.Fatal("successful operation left the hash unchanged")
	}
}

func TestReadOnlyViewRejectsWrites(t *testing.T) {
	s := NewState()
	seed(t, s)
	hash := s.Hash()
	writes := map[string]func(r repos.Repo) error{
		"UpsertOperationalIntent": func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, oir(99, 0, 1, 0, 1, 1)) },
		"DeleteOperationalIntent": func(r repos.Repo) error { return r.DeleteOperationalIntent(ctx, uid(10)) },
		"UpsertSubscription":      func(r repos.Repo) error { return r.UpsertSubscription(ctx, sub(99, 0, 1, true, true, 1)) },
		"DeleteSubscription":      func(r repos.Repo) error { return r.DeleteSubscription(ctx, uid(1)) },
		"IncrementNotificationIndices": func(r repos.Repo) error {
			_, err := r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents, vol(nil, nil, nil, nil, 1))
			return err
		},
		"UpsertConstraint": func(r repos.Repo) error { return r.UpsertConstraint(ctx, constraint(99, 0, 1, 1)) },
		"DeleteConstraint": func(r repos.Repo) error { return r.DeleteConstraint(ctx, uid(20)) },
		"UpsertUssAvailability": func(r repos.Repo) error {
			return r.UpsertUssAvailability(ctx, &models.UssAvailability{USS: "x"})
		},
	}
	for name, w := range writes {
		var inner error
		_, _ = s.Apply(ctx, read(func(r repos.Repo) (any, error) {
			inner = w(r)
			return nil, nil
		}))
		if models.CodeOf(inner) != models.CodeInternal || inner == nil {
			t.Errorf("%s in read-only op: %v, want Internal error", name, inner)
		}
	}
	if s.Hash() != hash {
		t.Fatal("read-only ops changed the state")
	}
}

func TestRepoUnusableAfterApply(t *testing.T) {
	s := NewState()
	var kept repos.Repo
	mustWrite(t, s, func(r repos.Repo) error { kept = r; return nil })
	if err := kept.UpsertOperationalIntent(ctx, oir(1, 0, 1, 0, 1, 1)); err == nil {
		t.Fatal("write through a retained repo succeeded")
	}
	if _, err := kept.GetOperationalIntent(ctx, uid(1)); err == nil {
		t.Fatal("read through a retained repo succeeded")
	}
	if s.LenOperationalIntents() != 0 {
		t.Fatal("retained repo wrote")
	}
}

func TestApplyNilOperation(t *testing.T) {
	if _, err := NewState().Apply(ctx, nil); err == nil {
		t.Fatal("nil op accepted")
	}
	if _, err := New().Transact(ctx, nil); err == nil {
		t.Fatal("nil op accepted by Store")
	}
}

// Equal states give equal hashes whatever order independent entities were
// written in; different states give different hashes.
func TestDeterminism(t *testing.T) {
	build := func(order []int, viaDelete bool) *State {
		s := NewState()
		mustWrite(t, s, func(r repos.Repo) error { return r.UpsertSubscription(ctx, sub(1, 0, 10, true, false, 1)) })
		for _, n := range order {
			mustWrite(t, s, func(r repos.Repo) error {
				o := oir(100+n, n, n+10, 0, float32(n), models.CellID(n), models.CellID(n+1))
				if n%2 == 0 {
					o.SubscriptionID = uid(1)
				}
				return r.UpsertOperationalIntent(ctx, o)
			})
		}
		if viaDelete {
			mustWrite(t, s, func(r repos.Repo) error { return r.UpsertOperationalIntent(ctx, oir(999, 0, 1, 0, 1, 1)) })
			mustWrite(t, s, func(r repos.Repo) error { return r.DeleteOperationalIntent(ctx, uid(999)) })
		}
		return s
	}
	a := build([]int{1, 2, 3, 4, 5, 6}, false)
	b := build([]int{1, 2, 3, 4, 5, 6}, false)
	c := build([]int{6, 4, 2, 5, 3, 1}, true)
	if a.Hash() != b.Hash() || a.Hash() != c.Hash() {
		t.Fatal("equal states hash differently")
	}
	if !reflect.DeepEqual(everything(t, a), everything(t, c)) {
		t.Fatal("equal states answer differently")
	}
	d := build([]int{1, 2, 3, 4, 5}, false)
	if d.Hash() == a.Hash() {
		t.Fatal("different states hash equal")
	}
}

// A random differential test: the indexed searches must agree with a brute
// force evaluation of the §4 rules over every stored entity, through writes,
// deletes and rolled-back operations.
func TestSearchesMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewState()
	const ids, cells = 60, 40
	randCells := func() []models.CellID {
		n := 1 + rng.IntN(6)
		out := make([]models.CellID, n)
		for i := range out {
			out[i] = models.CellID(rng.IntN(cells) - cells/2) // negative IDs occur (spec §4)
		}
		return out
	}
	randVol := func() *models.Volume4D {
		v := &models.Volume4D{Cells: randCells()}
		if rng.IntN(3) > 0 {
			v.StartTime = tp(at(rng.IntN(100)))
		}
		if rng.IntN(3) > 0 {
			v.EndTime = tp(at(rng.IntN(100)))
		}
		if rng.IntN(3) > 0 {
			v.AltitudeLower = fp(float32(rng.IntN(100)))
		}
		if rng.IntN(3) > 0 {
			v.AltitudeUpper = fp(float32(rng.IntN(100)))
		}
		return v
	}
	for step := range 400 {
		fail := rng.IntN(5) == 0
		_, _ = s.Apply(ctx, write(func(r repos.Repo) error {
			for range 1 + rng.IntN(4) {
				n := rng.IntN(ids)
				start := rng.IntN(90)
				var err error
				switch rng.IntN(7) {
				case 0, 1:
					o := oir(n, start, start+rng.IntN(20), float32(rng.IntN(90)), float32(90+rng.IntN(10)), randCells()...)
					if rng.IntN(2) == 0 {
						if sb, _ := r.GetSubscription(ctx, uid(1000+n%5)); sb != nil {
							o.SubscriptionID = sb.ID
						}
					}
					err = r.UpsertOperationalIntent(ctx, o)
				case 2:
					err = r.UpsertSubscription(ctx, sub(1000+n%5, start, start+rng.IntN(20), rng.IntN(2) == 0, true, randCells()...))
				case 3:
					err = r.UpsertConstraint(ctx, constraint(n, start, start+rng.IntN(20), randCells()...))
				case 4:
					err = r.DeleteOperationalIntent(ctx, uid(n))
				case 5:
					err = r.DeleteConstraint(ctx, uid(n))
				case 6:
					_, err = r.IncrementNotificationIndices(ctx, models.NotifyOperationalIntents, randVol())
				}
				if err != nil && models.CodeOf(err) != models.CodeNotFound {
					return err
				}
			}
			if fail {
				return errors.New("fail")
			}
			return nil
		}))
		if step%10 != 0 {
			continue
		}
		all := allEntities(s)
		for range 20 {
			v := randVol()
			q := models.NormalizeCells(slices.Clone(v.Cells))
			var wantO, wantS, wantC []models.ID
			for _, o := range all.oirs {
				if models.CellsIntersect(o.Cells, q) && oracleTime(o.StartTime, o.EndTime, v) && oracleAltitude(o.AltitudeLower, o.AltitudeUpper, v) {
					wantO = append(wantO, o.ID)
				}
			}
			for _, x := range all.subs {
				if models.CellsIntersect(x.Cells, q) && oracleTime(x.StartTime, x.EndTime, v) {
					wantS = append(wantS, x.ID)
				}
			}
			for _, x := range all.crs {
				if models.CellsIntersect(x.Cells, q) && oracleTime(x.StartTime, x.EndTime, v) {
					wantC = append(wantC, x.ID)
				}
			}
			gotO := view(t, s, func(r repos.Repo) ([]*models.OperationalIntent, error) { return r.SearchOperationalIntents(ctx, v) })
			gotS := view(t, s, func(r repos.Repo) ([]*models.Subscription, error) { return r.SearchSubscriptions(ctx, v) })
			gotC := view(t, s, func(r repos.Repo) ([]*models.Constraint, error) { return r.SearchConstraints(ctx, v) })
			if !slices.Equal(oirIDs(gotO), append([]models.ID{}, wantO...)) ||
				!slices.Equal(subIDs(gotS), append([]models.ID{}, wantS...)) ||
				!slices.Equal(crIDs(gotC), append([]models.ID{}, wantC...)) {
				t.Fatalf("step %d, volume %+v:\nOIRs %v want %v\nsubs %v want %v\nCRs %v want %v",
					step, v, oirIDs(gotO), wantO, subIDs(gotS), wantS, crIDs(gotC), wantC)
			}
		}
		// The dependents index agrees with the OIRs' SubscriptionIDs.
		for k := range 5 {
			var want []models.ID
			for _, o := range all.oirs {
				if o.SubscriptionID == uid(1000+k) {
					want = append(want, o.ID)
				}
			}
			got := view(t, s, func(r repos.Repo) ([]models.ID, error) { return r.GetDependentOperationalIntents(ctx, uid(1000+k)) })
			if !slices.Equal(got, append([]models.ID{}, want...)) {
				t.Fatalf("step %d: dependents of %d = %v, want %v", step, k, got, want)
			}
		}
	}
}

type entities struct {
	oirs []*models.OperationalIntent
	subs []*models.Subscription
	crs  []*models.Constraint
}

func allEntities(s *State) entities {
	return entities{s.oirs.sorted(), s.subs.sorted(), s.crs.sorted()}
}

func TestStoreConcurrentReaders(t *testing.T) {
	st := New()
	for n := range 50 {
		if _, err := st.Transact(ctx, write(func(r repos.Repo) error {
			return r.UpsertOperationalIntent(ctx, oir(n, 0, 100, 0, 10, models.CellID(n%7)))
		})); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := st.Transact(ctx, read(func(r repos.Repo) (any, error) {
					return r.SearchOperationalIntents(ctx, vol(nil, nil, nil, nil, 0, 1, 2, 3, 4, 5, 6))
				}))
				if err != nil {
					t.Error(err)
					return
				}
				if n := len(res.([]*models.OperationalIntent)); n < 50 {
					t.Errorf("reader saw %d OIRs, want ≥ 50", n)
					return
				}
			}
		})
	}
	for n := 50; n < 150; n++ {
		if _, err := st.Transact(ctx, write(func(r repos.Repo) error {
			if err := r.UpsertOperationalIntent(ctx, oir(n, 0, 100, 0, 10, models.CellID(n%7))); err != nil {
				return err
			}
			_, err := r.IncrementNotificationIndices(ctx, models.NotifyConstraints, vol(nil, nil, nil, nil, 1))
			return err
		})); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := st.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if st.Hash() == NewState().Hash() {
		t.Fatal("store hash equals the empty state's")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Transact(cancelled, write(func(r repos.Repo) error { return nil })); models.CodeOf(err) != models.CodeUnavailable {
		t.Fatalf("cancelled Transact: %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := NewState()
	seed(t, s)
	mustWrite(t, s, func(r repos.Repo) error {
		o := oir(30, 0, 100, -5, 5, -3, 7)
		o.PastOVNs = []models.OVN{"ovn-one-abcdefghijk", "ovn-two-abcdefghijk"}
		o.RequestedOVN = "requested-ovn-0123456789"
		o.State = models.StateContingent
		// Instants outside the int64-nanosecond range must survive too.
		o.StartTime = time.Date(1500, 1, 1, 0, 0, 0, 1, time.UTC)
		o.EndTime = time.Date(3000, 1, 1, 0, 0, 0, 999999999, time.FixedZone("y", -7200))
		if err := r.UpsertOperationalIntent(ctx, o); err != nil {
			return err
		}
		c := constraint(31, 0, 100, 3)
		c.AltitudeLower = nil
		return r.UpsertConstraint(ctx, c)
	})
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	data := slices.Clone(buf.Bytes())
	r, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash() != s.Hash() {
		t.Fatal("hash changed across a snapshot round trip")
	}
	if !reflect.DeepEqual(allEntities(r), allEntities(s)) || !reflect.DeepEqual(everything(t, r), everything(t, s)) ||
		!reflect.DeepEqual(r.avail, s.avail) {
		t.Fatal("entities or searches changed across a snapshot round trip")
	}
	// The restored state keeps working like the original.
	for _, st := range []*State{s, r} {
		mustWrite(t, st, func(rp repos.Repo) error { return rp.DeleteSubscription(ctx, uid(1)) })
	}
	if r.Hash() != s.Hash() {
		t.Fatal("restored state diverged after a write")
	}
	if h := NewState().Hash(); h == s.Hash() {
		t.Fatal("hash ignores content")
	}
	empty, err := ReadSnapshot(bytes.NewReader(NewState().snapshot(t)))
	if err != nil || empty.Hash() != NewState().Hash() {
		t.Fatalf("empty snapshot: %v", err)
	}

	// Every truncation and every single-byte corruption is rejected.
	for n := range len(data) {
		if _, err := ReadSnapshot(bytes.NewReader(data[:n])); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}
	for i := range data {
		bad := slices.Clone(data)
		bad[i] ^= 0x41
		if _, err := ReadSnapshot(bytes.NewReader(bad)); err == nil {
			t.Fatalf("corruption of byte %d accepted", i)
		}
	}
	if _, err := ReadSnapshot(bytes.NewReader(append(slices.Clone(data), 0))); err == nil {
		t.Fatal("trailing byte accepted")
	}
	future := withCRC(append([]byte(snapshotMagic), 0, 0, 0, 2, 0, 0, 0, 0))
	if _, err := ReadSnapshot(bytes.NewReader(future)); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func (s *State) snapshot(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withCRC appends the checksum trailer to a snapshot body.
func withCRC(body []byte) []byte {
	b := slices.Clone(body)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWriteSnapshotReportsWriteErrors(t *testing.T) {
	s := NewState()
	seed(t, s)
	for n := range 2 {
		if err := s.WriteSnapshot(&failWriter{n: n}); err == nil {
			t.Fatalf("write error after %d writes not reported", n)
		}
	}
}

// FuzzReadSnapshot feeds arbitrary bytes to ReadSnapshot, both as given and
// with a valid checksum appended (otherwise almost every input would stop at
// the checksum). It must never panic, and whatever it accepts must encode
// back to the same bytes (the format is canonical).
func FuzzReadSnapshot(f *testing.F) {
	s := NewState()
	seed(f, s)
	full := s.snapshot(f)
	f.Add(full)
	f.Add(full[:len(full)-4])
	f.Add(NewState().snapshot(f))
	f.Add([]byte(snapshotMagic))
	// A version 2 snapshot (with the pool's DSS instances).
	mustWrite(f, s, func(r repos.Repo) error {
		return r.UpsertDSSInstance(ctx, &models.DSSInstance{ID: "n1", PublicEndpoint: "https://n1",
			Heartbeat: models.Heartbeat{Timestamp: at(3), Source: "cron", Index: 2, NextExpectedBefore: at(4)}})
	})
	f.Add(s.snapshot(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, withCRC(data)} {
			st, err := ReadSnapshot(bytes.NewReader(in))
			if err != nil {
				continue
			}
			if out := st.snapshot(t); !bytes.Equal(out, in) {
				t.Fatalf("accepted non-canonical snapshot:\n in %x\nout %x", in, out)
			}
		}
	})
}

// oracleTime and oracleAltitude state the §4 rules directly on time.Time and
// pointers, independently of the filter the store uses.
func oracleTime(start, end time.Time, v *models.Volume4D) bool {
	return (v.EndTime == nil || !start.After(*v.EndTime)) && (v.StartTime == nil || !end.Before(*v.StartTime))
}

func oracleAltitude(lower, upper float32, v *models.Volume4D) bool {
	return (v.AltitudeLower == nil || upper >= *v.AltitudeLower) && (v.AltitudeUpper == nil || lower <= *v.AltitudeUpper)
}

// stampedOp is a write operation carrying a write time, like the SCD PUTs.
type stampedOp struct {
	now  time.Time
	fail bool
	seen *[]time.Time
}

func (o *stampedOp) Type() store.OpType       { return 900 }
func (o *stampedOp) ReadOnly() bool           { return false }
func (o *stampedOp) WriteTime() time.Time     { return o.now }
func (o *stampedOp) SetWriteTime(t time.Time) { o.now = t }
func (o *stampedOp) Execute(context.Context, repos.Repo) (any, error) {
	*o.seen = append(*o.seen, o.now)
	if o.fail {
		return nil, models.Errorf(models.CodeBadRequest, "fail")
	}
	return nil, nil
}

// TestWriteTimesStrictlyIncrease checks the clamp of store.Timestamped: a
// write time that does not advance is raised past the previous one, a failed
// write does not advance the floor, and the floor survives a snapshot.
func TestWriteTimesStrictlyIncrease(t *testing.T) {
	s := NewState()
	var seen []time.Time
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(st *State, at time.Time, fail bool) {
		t.Helper()
		_, _ = st.Apply(context.Background(), &stampedOp{now: at, fail: fail, seen: &seen})
	}
	apply(s, t0, false)
	apply(s, t0, false)                   // same instant → t0+1ns
	apply(s, t0.Add(-time.Second), true)  // failed: t0+2ns, floor unchanged
	apply(s, t0.Add(-time.Second), false) // t0+2ns again
	want := []time.Time{t0, t0.Add(1), t0.Add(2), t0.Add(2)}
	if len(seen) != len(want) {
		t.Fatalf("seen %v", seen)
	}
	for i := range want {
		if !seen[i].Equal(want[i]) {
			t.Errorf("write %d at %v, want %v", i, seen[i], want[i])
		}
	}
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	seen = nil
	apply(restored, t0, false)
	if len(seen) != 1 || !seen[0].Equal(t0.Add(3)) {
		t.Errorf("after restore: write at %v, want %v", seen, t0.Add(3))
	}
}

// A restored state's cell index holds, per cell, exactly the original's
// entries, latest start first, with no more spare room than index's growth
// leaves, although ReadSnapshot builds it unsorted and sorts once: searches
// that skip by binary search then find what the original finds.
func TestRestoredCellIndexIsSorted(t *testing.T) {
	g := newLoadGen()
	s, ids := loadState(t, g, 2000)
	// Replacements and removals leave the original's lists in an order of
	// their own (and free slots), which the restored one need not share.
	mustWrite(t, s, func(r repos.Repo) error {
		for i, id := range ids[:600] {
			if i%2 == 0 {
				if err := r.DeleteOperationalIntent(ctx, id); err != nil {
					return err
				}
				continue
			}
			if err := r.UpsertOperationalIntent(ctx, g.oir(id)); err != nil {
				return err
			}
		}
		return nil
	})
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	checkCellIndex(t, "operational intents", &s.oirs, &r.oirs)
	checkCellIndex(t, "subscriptions", &s.subs, &r.subs)
	for range 200 {
		q := g.query()
		search := func(r repos.Repo) ([]*models.OperationalIntent, error) { return r.SearchOperationalIntents(ctx, q) }
		want, got := view(t, s, search), view(t, r, search)
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("search of the restored state found %d OIRs, the original %d", len(got), len(want))
		}
	}
}

func checkCellIndex[T any](t *testing.T, what string, orig, restored *table[T]) {
	t.Helper()
	type entry struct {
		id models.ID
		b  bounds
	}
	entries := func(tb *table[T], list []cellEntry) []entry {
		out := make([]entry, len(list))
		for i, e := range list {
			out[i] = entry{tb.idOf(tb.slots[e.slot]), e.b}
		}
		slices.SortFunc(out, func(x, y entry) int { return strings.Compare(string(x.id), string(y.id)) })
		return out
	}
	if len(restored.cells) != len(orig.cells) || len(orig.cells) == 0 {
		t.Fatalf("%s: %d cells indexed after the round trip, %d before", what, len(restored.cells), len(orig.cells))
	}
	for c, list := range restored.cells {
		for k := 1; k < len(list); k++ {
			if list[k].b.start().after(list[k-1].b.start()) {
				t.Fatalf("%s: cell %d not latest-start first at entry %d", what, c, k)
			}
		}
		if spare := cap(list) - len(list); spare > len(list)/8+2 {
			t.Fatalf("%s: cell %d keeps %d spare entries for %d", what, c, spare, len(list))
		}
		if !reflect.DeepEqual(entries(restored, list), entries(orig, orig.cells[c])) {
			t.Fatalf("%s: cell %d holds other entries after the round trip", what, c)
		}
	}
}
