package memstore

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
)

// idEnt is an entity that is only an ID.
type idEnt struct{ id models.ID }

// idTable returns a table holding entities with these IDs, with free slots
// between them as a table that saw deletions has.
func idTable(ids []string) *table[idEnt] {
	t := &table[idEnt]{idOf: func(e *idEnt) models.ID { return e.id }}
	for i, id := range ids {
		if i%3 == 1 {
			t.slots = append(t.slots, nil)
		}
		t.slots = append(t.slots, &idEnt{id: models.ID(id)})
	}
	return t
}

// inIDOrder lists the IDs of t as emitInIDOrder orders them, splitting spans
// longer than leaf, and checks that pause is called often enough.
func inIDOrder(t *testing.T, tb *table[idEnt], leaf int) []string {
	t.Helper()
	var out []string
	sincePause, most := 0, 0
	pause := func() {
		most = max(most, sincePause)
		sincePause = 0
	}
	keys := tb.idKeys(pause)
	emitInIDOrder(keys, leaf, pause, func(e *idEnt) {
		out = append(out, string(e.id))
		sincePause++
	})
	pause()
	if most > idOrderCheck {
		t.Errorf("%d entities emitted without a pause", most)
	}
	return out
}

func uuidIDs(rng *rand.Rand, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		a, b := rng.Uint64(), rng.Uint64()
		ids[i] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
	}
	return ids
}

// randomIDs returns n distinct IDs of 0 to maxLen bytes drawn from alphabet.
func randomIDs(rng *rand.Rand, n, maxLen int, alphabet string) []string {
	seen := map[string]bool{}
	var ids []string
	for tries := 0; len(ids) < n && tries < 100*n; tries++ {
		b := make([]byte, rng.IntN(maxLen+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if !seen[string(b)] {
			seen[string(b)] = true
			ids = append(ids, string(b))
		}
	}
	return ids
}

func allBytes() string {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}

func idSets() map[string][]string {
	rng := rand.New(rand.NewPCG(1, 2))
	sets := map[string][]string{
		"none":             nil,
		"one":              {"x"},
		"two":              {"b", "a"},
		"empty":            {""},
		"empty and others": {"\x00", "", "a", "\x00\x00", "\x01"},
		"uuids":            uuidIDs(rng, 20_000),
		// Test IDs share 24 bytes, more than the keys' 8-byte prefix.
		"shared prefix": func() []string {
			var ids []string
			for n := range 5000 {
				ids = append(ids, string(uid(rng.IntN(1<<40)*7+n)))
			}
			return ids
		}(),
		"one byte": func() []string {
			var ids []string
			for b := range 256 {
				ids = append(ids, string([]byte{byte(255 - b)}))
			}
			return append(ids, "")
		}(),
		"high bytes":  randomIDs(rng, 5000, 12, "\x00\x01\x7f\x80\x81\xfe\xff"),
		"zero bytes":  randomIDs(rng, 3000, 20, "\x00\x00\x00\x01"),
		"short":       randomIDs(rng, 2000, 3, "ab\x00\xff"),
		"around 8":    randomIDs(rng, 4000, 11, "\x00a"),
		"binary":      randomIDs(rng, 5000, 16, allBytes()),
		"nested":      nil,
		"same prefix": nil,
	}
	// Every prefix of a long ID, and those prefixes followed by a zero byte
	// or 0xff: IDs that end exactly where others go on.
	long := strings.Repeat("0123456789abcdef", 3)
	for i := range len(long) + 1 {
		sets["nested"] = append(sets["nested"], long[:i], long[:i]+"\x00", long[:i]+"\xff")
	}
	// Many IDs with a 30-byte common prefix, ending in varied tails.
	p := strings.Repeat("z", 30)
	for _, tail := range randomIDs(rng, 3000, 4, "\x00\x01yz{\xff") {
		sets["same prefix"] = append(sets["same prefix"], p+tail)
	}
	rng.Shuffle(len(sets["nested"]), func(i, j int) { sets["nested"][i], sets["nested"][j] = sets["nested"][j], sets["nested"][i] })
	return sets
}

// TestIDOrderMatchesSort checks that the order in which snapshots emit
// entities is that of a full sort, for all kinds of ID sets, splitting down
// to spans of every small size.
func TestIDOrderMatchesSort(t *testing.T) {
	for name, ids := range idSets() {
		want := slices.Sorted(slices.Values(ids))
		tb := idTable(ids)
		var full []string
		for _, e := range tb.sorted() {
			full = append(full, string(e.id))
		}
		if !slices.Equal(full, want) {
			t.Fatalf("%s: table.sorted is not in string order", name)
		}
		for _, leaf := range []int{0, 1, 2, 3, 16, idOrderLeaf} {
			if got := inIDOrder(t, tb, leaf); !slices.Equal(got, want) {
				t.Errorf("%s, leaf %d: order differs from the full sort (%d IDs)", name, leaf, len(ids))
			}
		}
	}
}

// TestIDOrderDuplicates: IDs of one table are distinct, but equal IDs must
// not make the split loop forever either.
func TestIDOrderDuplicates(t *testing.T) {
	ids := []string{"a", "a", "a", "", "", "b\x00", "b\x00", "abcdefghij", "abcdefghij", "abcdefghi"}
	for range 3 {
		ids = append(ids, ids...)
	}
	want := slices.Sorted(slices.Values(ids))
	for _, leaf := range []int{1, 2, 5} {
		if got := inIDOrder(t, idTable(ids), leaf); !slices.Equal(got, want) {
			t.Errorf("leaf %d: got %q", leaf, got)
		}
	}
}

func FuzzIDOrder(f *testing.F) {
	f.Add([]byte("a,b,,ab,a\x00,\xff"), 1)
	f.Add([]byte("00000000-0000-4000-8000-000000000001,00000000-0000-4000-8000-000000000000"), 0)
	f.Fuzz(func(t *testing.T, data []byte, leaf int) {
		ids := strings.Split(string(data), ",")
		want := slices.Sorted(slices.Values(ids))
		if got := inIDOrder(t, idTable(ids), leaf%8); !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// legacyWriteSnapshot is State.WriteSnapshot as it was before entities were
// sorted a little at a time: everything sorted up front (table.sorted),
// then encoded. The canonical bytes must not have changed.
func (s *State) legacyWriteSnapshot(w io.Writer) error {
	e := &encoder{w: w, buf: make([]byte, 0, 64<<10)}
	e.raw([]byte(snapshotMagic))
	e.u32(snapshotVersion)
	e.time(s.lastWrite)

	avail := make([]*models.UssAvailability, 0, len(s.avail))
	for _, a := range s.avail {
		avail = append(avail, a)
	}
	sortByKey(avail, func(a *models.UssAvailability) string { return a.USS })
	e.uvarint(uint64(len(avail)))
	for _, a := range avail {
		e.str(a.USS)
		e.str(string(a.Availability))
		e.time(a.UpdatedAt)
	}

	subs := s.subs.sorted()
	e.uvarint(uint64(len(subs)))
	for _, sub := range subs {
		e.str(string(sub.ID))
		e.str(sub.Manager)
		e.u32(uint32(sub.NotificationIndex))
		e.str(sub.USSBaseURL)
		var flags byte
		if sub.NotifyForOperationalIntents {
			flags |= subFlagNotifyOIRs
		}
		if sub.NotifyForConstraints {
			flags |= subFlagNotifyCRs
		}
		if sub.Implicit {
			flags |= subFlagImplicit
		}
		e.byte(flags)
		e.time(sub.StartTime)
		e.time(sub.EndTime)
		e.cells(sub.Cells)
		e.time(sub.UpdatedAt)
	}

	crs := s.crs.sorted()
	e.uvarint(uint64(len(crs)))
	for _, c := range crs {
		e.str(string(c.ID))
		e.str(c.Manager)
		e.u32(uint32(c.Version))
		e.str(c.USSBaseURL)
		e.time(c.StartTime)
		e.time(c.EndTime)
		e.optF32(c.AltitudeLower)
		e.optF32(c.AltitudeUpper)
		e.cells(c.Cells)
		e.time(c.UpdatedAt)
	}

	oirs := s.oirs.sorted()
	e.uvarint(uint64(len(oirs)))
	for _, o := range oirs {
		e.str(string(o.ID))
		e.str(o.Manager)
		e.u32(uint32(o.Version))
		e.str(string(o.State))
		e.str(string(o.RequestedOVN))
		e.uvarint(uint64(len(o.PastOVNs)))
		for _, p := range o.PastOVNs {
			e.str(string(p))
		}
		e.str(o.USSBaseURL)
		e.str(string(o.SubscriptionID))
		e.time(o.StartTime)
		e.time(o.EndTime)
		e.u32(math.Float32bits(o.AltitudeLower))
		e.u32(math.Float32bits(o.AltitudeUpper))
		e.cells(o.Cells)
		e.time(o.UpdatedAt)
	}
	return e.finish()
}

// pauseRecorder keeps the bytes written and counts the pauses.
type pauseRecorder struct {
	bytes.Buffer
	pauses int
}

func (w *pauseRecorder) Pause() { w.pauses++ }

// TestSnapshotBytesMatchLegacy checks that State.WriteSnapshot and
// Frozen.WriteSnapshot, to a plain writer or a Pauser, write exactly the bytes of the implementation that sorted
// everything up front, for populated states including odd IDs.
func TestSnapshotBytesMatchLegacy(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	loaded, _ := loadState(t, newLoadGen(), n)

	seeded := NewState()
	seed(t, seeded)
	for i := range 3 {
		mutate(t, seeded, i)
	}

	// IDs that are no UUIDs: short, sharing long prefixes, high bytes.
	odd := NewState()
	seed(t, odd)
	rng := rand.New(rand.NewPCG(3, 4))
	oddIDs := append(randomIDs(rng, 1500, 10, "\x00\x01a\x7f\x80\xff"), idSets()["nested"]...)
	mustWrite(t, odd, func(r repos.Repo) error {
		for i, id := range oddIDs {
			if id == "" {
				continue // the Repo refuses empty IDs
			}
			o := oir(1000+i, 0, 100, 0, 10, models.CellID(1+i%5))
			o.ID = models.ID(id)
			if err := r.UpsertOperationalIntent(ctx, o); err != nil {
				return err
			}
			if i%4 == 0 {
				c := constraint(1000+i, 0, 100, models.CellID(2+i%3))
				c.ID = models.ID(id)
				if err := r.UpsertConstraint(ctx, c); err != nil {
					return err
				}
				sb := sub(1000+i, 0, 100, true, false, models.CellID(3))
				sb.ID = models.ID(id)
				if err := r.UpsertSubscription(ctx, sb); err != nil {
					return err
				}
			}
		}
		return nil
	})
	mustWrite(t, odd, func(r repos.Repo) error {
		for _, id := range oddIDs[:300] {
			if err := r.DeleteOperationalIntent(ctx, models.ID(id)); err != nil && id != "" {
				return err
			}
		}
		return nil
	})

	for name, s := range map[string]*State{"empty": NewState(), "seeded": seeded, "loaded": loaded, "odd IDs": odd} {
		var legacy bytes.Buffer
		if err := s.legacyWriteSnapshot(&legacy); err != nil {
			t.Fatal(err)
		}
		want := legacy.Bytes()
		if _, err := ReadSnapshot(bytes.NewReader(want)); err != nil {
			t.Fatalf("%s: legacy snapshot does not read back: %v", name, err)
		}
		if got := s.snapshot(t); !bytes.Equal(got, want) {
			t.Errorf("%s: State.WriteSnapshot differs from the legacy encoding", name)
		}
		f := s.Freeze()
		if got := f.snapshot(t); !bytes.Equal(got, want) {
			t.Errorf("%s: Frozen.WriteSnapshot differs from the legacy encoding", name)
		}
		// A Pauser writer is paused between writes; the bytes are the same.
		var w pauseRecorder
		if err := f.WriteSnapshot(&w); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.Bytes(), want) {
			t.Errorf("%s: snapshot to a Pauser differs from the legacy encoding", name)
		}
		if n := s.LenOperationalIntents(); w.pauses < n/idOrderCheck {
			t.Errorf("%s: %d pauses for %d OIRs, want at least one per %d", name, w.pauses, n, idOrderCheck)
		}
		if s.Hash() != f.Hash() {
			t.Errorf("%s: hashes differ", name)
		}
	}
}
