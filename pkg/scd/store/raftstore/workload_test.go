package raftstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// workload generates a reproducible mix of SCD writes (creates, updates and
// deletes of OIRs, subscriptions and constraints, availability changes) that
// mostly succeed and sometimes fail (wrong OVN, missing key, conflicts), so
// both the commit and the rollback paths of Apply are replayed. It learns
// OVNs and versions from the results it is given, so it can drive any store.
type workload struct {
	rng  *rand.Rand
	now  time.Time
	next int
	oirs map[models.ID]owned // → current OVN
	subs map[models.ID]owned // → current version (explicit subscriptions)
	crs  map[models.ID]owned // → current OVN
	avl  map[string]string   // USS → version
}

type owned struct{ owner, version string }

var workloadUSSs = []string{"uss-a", "uss-b", "uss-c"}

func newWorkload(seed uint64) *workload {
	return &workload{
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:  time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		oirs: map[models.ID]owned{}, subs: map[models.ID]owned{}, crs: map[models.ID]owned{},
		avl: map[string]string{},
	}
}

func (w *workload) newID() models.ID {
	w.next++
	return models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", w.next))
}

// cells picks 1–3 cells out of 24, so entities often overlap.
func (w *workload) cells() []models.CellID {
	n := 1 + w.rng.IntN(3)
	var cs []models.CellID
	for range n {
		cs = append(cs, models.CellID(1+w.rng.IntN(24)))
	}
	return models.NormalizeCells(cs)
}

func ptr[T any](v T) *T { return &v }

func (w *workload) volume(withAltitude bool) models.Volume4D {
	start := w.now.Add(time.Duration(w.rng.IntN(30)) * time.Minute)
	v := models.Volume4D{Cells: w.cells(), StartTime: ptr(start), EndTime: ptr(start.Add(30 * time.Minute))}
	if withAltitude {
		lo := float32(w.rng.IntN(100))
		v.AltitudeLower, v.AltitudeUpper = ptr(lo), ptr(lo+50)
	}
	return v
}

// pick returns a random key of m (sorted first: map order is random).
func pick[V any](w *workload, m map[models.ID]V) (models.ID, bool) {
	if len(m) == 0 {
		return "", false
	}
	keys := make([]models.ID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[w.rng.IntN(len(keys))], true
}

// key returns every OVN known, so most key checks pass; sometimes nothing.
func (w *workload) key() []models.OVN {
	if w.rng.IntN(8) == 0 {
		return nil
	}
	var k []models.OVN
	for _, o := range w.oirs {
		k = append(k, models.OVN(o.version))
	}
	for _, c := range w.crs {
		k = append(k, models.OVN(c.version))
	}
	slices.Sort(k)
	return k
}

func (w *workload) maybeWrong(v string) string {
	if w.rng.IntN(10) == 0 {
		return "wrong-version-0123456789"
	}
	return v
}

// op returns the next write.
func (w *workload) op() scd.Operation {
	w.now = w.now.Add(time.Duration(1+w.rng.IntN(1000)) * time.Millisecond)
	caller := workloadUSSs[w.rng.IntN(len(workloadUSSs))]
	url := "https://" + caller + ".example"
	switch r := w.rng.IntN(100); {
	case r < 30:
		op := &scd.PutOperationalIntent{Caller: caller, Now: w.now, ID: w.newID(), State: models.StateAccepted,
			Extents: w.volume(true), Key: w.key(), USSBaseURL: url}
		if w.rng.IntN(2) == 0 {
			op.NewSubscription = &scd.NewSubscription{USSBaseURL: url, NotifyForConstraints: w.rng.IntN(2) == 0}
			op.NewSubscriptionID = w.newID()
		}
		return op
	case r < 42:
		if id, ok := pick(w, w.oirs); ok {
			o := w.oirs[id]
			return &scd.PutOperationalIntent{Caller: o.owner, Now: w.now, ID: id, OVN: models.OVN(w.maybeWrong(o.version)),
				State: models.StateActivated, Extents: w.volume(true), Key: w.key(), USSBaseURL: url}
		}
	case r < 52:
		if id, ok := pick(w, w.oirs); ok {
			o := w.oirs[id]
			return &scd.DeleteOperationalIntent{Caller: o.owner, ID: id, OVN: models.OVN(w.maybeWrong(o.version))}
		}
	case r < 64:
		v := w.volume(false)
		v.StartTime = ptr(w.now)
		return &scd.PutSubscription{Caller: caller, Now: w.now, ID: w.newID(), Extents: v, USSBaseURL: url,
			NotifyForOperationalIntents: true, NotifyForConstraints: w.rng.IntN(2) == 0}
	case r < 70:
		if id, ok := pick(w, w.subs); ok {
			s := w.subs[id]
			v := w.volume(false)
			v.StartTime = ptr(w.now)
			return &scd.PutSubscription{Caller: s.owner, Now: w.now, ID: id, Version: w.maybeWrong(s.version), Extents: v,
				USSBaseURL: url, NotifyForConstraints: true}
		}
	case r < 75:
		if id, ok := pick(w, w.subs); ok {
			s := w.subs[id]
			return &scd.DeleteSubscription{Caller: s.owner, ID: id, Version: w.maybeWrong(s.version)}
		}
	case r < 85:
		return &scd.PutConstraint{Caller: caller, Now: w.now, ID: w.newID(), Extents: w.volume(w.rng.IntN(2) == 0), USSBaseURL: url}
	case r < 90:
		if id, ok := pick(w, w.crs); ok {
			c := w.crs[id]
			return &scd.PutConstraint{Caller: c.owner, Now: w.now, ID: id, OVN: models.OVN(w.maybeWrong(c.version)),
				Extents: w.volume(false), USSBaseURL: url}
		}
	case r < 94:
		if id, ok := pick(w, w.crs); ok {
			c := w.crs[id]
			return &scd.DeleteConstraint{Caller: c.owner, ID: id, OVN: models.OVN(w.maybeWrong(c.version))}
		}
	}
	avail := []models.Availability{models.AvailabilityNormal, models.AvailabilityDown, models.AvailabilityUnknown}
	return &scd.PutUssAvailability{Now: w.now, USS: caller, OldVersion: w.avl[caller],
		Availability: avail[w.rng.IntN(len(avail))]}
}

// learn records the outcome of op so later operations use current versions.
func (w *workload) learn(op scd.Operation, res any, err error) {
	if err != nil {
		return
	}
	switch o := op.(type) {
	case *scd.PutOperationalIntent:
		r := res.(scd.OperationalIntentResult)
		w.oirs[o.ID] = owned{o.Caller, string(r.OIR.OIR.OVN())}
	case *scd.DeleteOperationalIntent:
		delete(w.oirs, o.ID)
	case *scd.PutSubscription:
		r := res.(scd.PutSubscriptionResult)
		w.subs[o.ID] = owned{o.Caller, r.Sub.Sub.Version()}
	case *scd.DeleteSubscription:
		delete(w.subs, o.ID)
	case *scd.PutConstraint:
		r := res.(scd.ConstraintResult)
		w.crs[o.ID] = owned{o.Caller, string(r.CR.OVN())}
	case *scd.DeleteConstraint:
		delete(w.crs, o.ID)
	case *scd.PutUssAvailability:
		w.avl[o.USS] = res.(scd.AvailabilityView).Version
	}
}
