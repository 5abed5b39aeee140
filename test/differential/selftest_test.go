package differential

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/store"
)

// The tests below check the harness itself, on the memstore only (no
// PostgreSQL, no Raft): that it fails on a store that answers differently,
// that it shrinks to the few requests that matter, and that its sequences
// are reproducible.

// altitudeBlindRepo is a plausible backend bug: the OIR search ignores
// altitudes (as it rightly does for constraints and subscriptions, §4).
type altitudeBlindRepo struct{ repos.Repo }

func (r altitudeBlindRepo) SearchOperationalIntents(ctx context.Context, v *models.Volume4D) ([]*models.OperationalIntent, error) {
	w := *v
	w.AltitudeLower, w.AltitudeUpper = nil, nil
	return r.Repo.SearchOperationalIntents(ctx, &w)
}

// buggyStore runs every operation against an altitudeBlindRepo over a
// memstore.
type buggyStore struct{ inner *memstore.Store }

type blindOp struct{ scd.Operation }

func (o blindOp) Execute(ctx context.Context, r repos.Repo) (any, error) {
	return o.Operation.Execute(ctx, altitudeBlindRepo{r})
}

// blindTimedOp keeps the store.Timestamped contract of the wrapped write.
type blindTimedOp struct {
	blindOp
	store.Timestamped
}

func (s buggyStore) Transact(ctx context.Context, op scd.Operation) (any, error) {
	if ts, ok := op.(store.Timestamped); ok {
		return s.inner.Transact(ctx, blindTimedOp{blindOp{op}, ts})
	}
	return s.inner.Transact(ctx, blindOp{op})
}

func init() {
	openers["buggy"] = func(_ testing.TB, e *env) (*target, error) {
		h, err := handlerFor(e, buggyStore{memstore.New()})
		if err != nil {
			return nil, err
		}
		return &target{handlers: []http.Handler{h}, close: func() {}}, nil
	}
}

func TestHarnessFindsAndShrinksADifference(t *testing.T) {
	var div *divergence
	for seed := uint64(1); seed <= 5 && div == nil; seed++ {
		var err error
		if div, err = explore(t, seed, 400, []string{"mem", "buggy"}, 30*time.Second, nil); err != nil {
			t.Fatal(err)
		}
	}
	if div == nil {
		t.Fatal("5 seeds × 400 requests never told an altitude-blind OIR search from the memstore")
	}
	report := div.String()
	t.Logf("the report:\n%s", report)
	// The difference needs an OIR and a request searching around it at
	// other altitudes (a query or a key check). Shrinking only drops
	// requests, so a request that names an OVN keeps the one that made it:
	// the result is 1-minimal, not always 2 long.
	if div.shrinkEr != nil || len(div.seq) > 5 || div.stats.timedOut {
		t.Fatalf("shrunk to %d requests (error %v, timed out %v), want ≤ 5:\n%s",
			len(div.seq), div.shrinkEr, div.stats.timedOut, report)
	}
	if div.last[0] == div.last[1] {
		t.Fatalf("the report shows equal answers to the last request:\n%s", report)
	}
	at, _, err := replay(t, div.kinds, div.seq)
	if err != nil || at != len(div.seq)-1 {
		t.Fatalf("replaying the shrunk sequence: first difference at %d (err %v), want %d", at, err, len(div.seq)-1)
	}
	for _, rq := range div.seq {
		if !strings.Contains(report, rq.String()) {
			t.Fatalf("the report lacks request line %q", rq)
		}
	}
}

// TestNoDifferenceBetweenEqualStores: two memstores never differ, so
// anything the harness reports on them is a flaw of the harness (a
// non-deterministic generator, clock or ID source).
func TestNoDifferenceBetweenEqualStores(t *testing.T) {
	div, err := explore(t, 42, 500, []string{"mem", "mem"}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if div != nil {
		t.Fatal(div)
	}
}

// TestSequencesAreReproducible: a seed always generates the same requests,
// so that a printed seed reproduces a failure.
func TestSequencesAreReproducible(t *testing.T) {
	gen := func() string {
		r, err := openRun(t, []string{"mem"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		g := newGenerator(7)
		var b strings.Builder
		for range 300 {
			rq := g.next()
			out, _ := r.serve(rq)
			g.learn(rq, out[0])
			fmt.Fprintln(&b, rq, out[0])
		}
		return b.String()
	}
	if a, b := gen(), gen(); a != b {
		t.Fatal("seed 7 generated two different sequences")
	}
}

// TestGeneratorCoverage guards against a generator that drifts into
// asking only trivial questions: the default run of TestStoresAgree must
// reach the outcomes where stores can differ.
func TestGeneratorCoverage(t *testing.T) {
	seen := map[string]bool{}
	seeds, err := parseSeeds(defaultSeeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range seeds {
		r, err := openRun(t, []string{"mem"})
		if err != nil {
			t.Fatal(err)
		}
		g := newGenerator(seed)
		for range defaultSteps {
			rq := g.next()
			out, _ := r.serve(rq)
			a := out[0]
			seen[fmt.Sprintf("%s %d", rq.Endpoint, a.Status)] = true
			for _, f := range []string{`"missing_operational_intents"`, `"missing_constraints"`,
				`"implicit_subscription":true`, `"notification_index":2`, `"availability":"Down"`,
				`"ovn":"` + scrubbedOVN, `"dependent_operational_intents":["`, `"state":"Nonconforming"`,
				`"operational_intent_references":[{`, `"constraint_references":[{`} {
				if strings.Contains(a.Body, f) {
					seen[f] = true
				}
			}
			g.learn(rq, a)
		}
		r.close()
	}
	var missing []string
	for _, want := range []string{
		"oir.create 201", "oir.create 409", "oir.update 200", "oir.update 409", "oir.delete 200",
		"cr.create 201", "cr.update 200", "cr.delete 200", "cr.get 200",
		"sub.create 200", "sub.update 200", "sub.delete 200", "sub.delete 400", "sub.get 200",
		"avail.put 200", "avail.put 409", "oir.get 200", "report 201",
		`"missing_operational_intents"`, `"missing_constraints"`, `"implicit_subscription":true`,
		`"notification_index":2`, `"availability":"Down"`, `"ovn":"` + scrubbedOVN,
		`"dependent_operational_intents":["`, `"state":"Nonconforming"`,
		`"operational_intent_references":[{`, `"constraint_references":[{`,
	} {
		if !seen[want] {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("seeds %s × %d requests never produced: %s", defaultSeeds, defaultSteps, strings.Join(missing, ", "))
	}
}
