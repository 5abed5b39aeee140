package scd_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
)

// withSubQuota sets a subscription PUT's quota.
func withSubQuota(q uint32, mod func(*scd.PutSubscription)) func(*scd.PutSubscription) {
	return func(op *scd.PutSubscription) {
		op.MaxSubscriptionsPerCell = q
		if mod != nil {
			mod(op)
		}
	}
}

func subCells(cs ...models.CellID) func(*scd.PutSubscription) {
	return func(op *scd.PutSubscription) { op.Extents.Cells = cs }
}

// wantQuota fails unless err is the 429 of quota naming cell and flag.
func wantQuota(t *testing.T, err error, cell models.CellID, flag string) {
	t.Helper()
	wantCode(t, err, models.CodeQuotaExceeded)
	var me *models.Error
	if !asModelsError(err, &me) {
		t.Fatalf("%v is no *models.Error", err)
	}
	tok := strings.TrimRight(strings.Repeat("0", 15)+string("0123456789abcdef"[cell]), "0")
	for _, w := range []string{flag, "S2 cell " + tok + ","} {
		if !strings.Contains(me.Message, w) {
			t.Errorf("message %q does not mention %q", me.Message, w)
		}
	}
}

func TestSubscriptionQuotaPerUSSPerCell(t *testing.T) {
	e := newEnv(t)
	const q = 3
	var versions []string
	for i := range q {
		r := must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(i+1), withSubQuota(q, nil)))
		versions = append(versions, r.Sub.Sub.Version())
	}
	// A 4th over cells 1..3 or touching one of them: 429, naming the lowest
	// full cell.
	_, err := run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(10), withSubQuota(q, subCells(3, 4))))
	wantQuota(t, err, 3, "max_subscriptions_per_uss_per_cell")
	_, err = run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(10), withSubQuota(q, nil)))
	wantQuota(t, err, 1, "max_subscriptions_per_uss_per_cell")
	if _, err := e.getSub(ussA, id(10)); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("refused subscription stored: %v", err)
	}
	// Other cells, another USS, and no quota are all fine.
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(11), withSubQuota(q, subCells(4, 5))))
	must[scd.PutSubscriptionResult](e, e.putSub(ussB, id(12), withSubQuota(q, nil)))
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(13), withSubQuota(0, nil)))

	// An update that stays in its cells is never refused, even with the
	// quota lowered below what the USS holds...
	r := must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(1), withSubQuota(1, func(op *scd.PutSubscription) {
		op.Version = versions[0]
		op.Extents.Cells = cells(1, 2)
	})))
	versions[0] = r.Sub.Sub.Version()
	// ...but growing into a full cell is (cell 4 holds subscription 11:
	// full at 1).
	_, err = run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(1), withSubQuota(1, func(op *scd.PutSubscription) {
		op.Version = versions[0]
		op.Extents.Cells = cells(1, 2, 4)
	})))
	wantQuota(t, err, 4, "max_subscriptions_per_uss_per_cell")

	// Deleting frees quota.
	must[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(2), Version: versions[1]})
	must[scd.SubscriptionView](e, &scd.DeleteSubscription{Caller: ussA, ID: id(13),
		Version: mustSub(e, ussA, id(13)).Sub.Version()})
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(10), withSubQuota(q, nil)))
}

func mustSub(e *env, caller string, sid models.ID) scd.SubscriptionView {
	e.t.Helper()
	v, err := e.getSub(caller, sid)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestSubscriptionQuotaIgnoresExpired(t *testing.T) {
	e := newEnv(t)
	for i := range 2 {
		must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(i+1), withSubQuota(2, nil)))
	}
	_, err := run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(3), withSubQuota(2, nil)))
	wantQuota(t, err, 1, "max_subscriptions_per_uss_per_cell")
	// Past their end (one hour), they no longer count.
	e.now = e.now.Add(time.Hour)
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(3), withSubQuota(2, nil)))
}

// Implicit subscriptions do not count (the OIR quota bounds them), so an
// OIR PUT with new_subscription never fails on the subscription quota;
// made explicit through the subscriptions API, one counts from then on.
func TestSubscriptionQuotaAndImplicitSubscriptions(t *testing.T) {
	e := newEnv(t)
	// Each OIR at its own altitude, so none needs another's OVN.
	for i := range 3 {
		e.createOIR(ussA, id(100+i), func(op *scd.PutOperationalIntent) {
			op.Extents = vol(cells(1, 2, 3), 0, 60, float32(200*i), float32(200*i+100))
			op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
			op.NewSubscriptionID = id(200 + i)
		})
	}
	for i := range 2 {
		must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(i+1), withSubQuota(2, nil)))
	}
	// Two explicit ones fill the quota of 2; the three implicit ones are
	// not counted, and another OIR with an implicit subscription is fine.
	e.createOIR(ussA, id(103), func(op *scd.PutOperationalIntent) {
		op.Extents = vol(cells(1, 2, 3), 0, 60, 600, 700)
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(203)
	})
	// Turning an implicit one explicit needs room.
	implicit := mustSub(e, ussA, id(200))
	_, err := run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(200), withSubQuota(2, func(op *scd.PutSubscription) {
		op.Version = implicit.Sub.Version()
		op.Extents.StartTime, op.Extents.EndTime = at(0), at(60)
	})))
	wantQuota(t, err, 1, "max_subscriptions_per_uss_per_cell")
	must[scd.PutSubscriptionResult](e, e.putSub(ussA, id(200), withSubQuota(3, func(op *scd.PutSubscription) {
		op.Version = implicit.Sub.Version()
		op.Extents.StartTime, op.Extents.EndTime = at(0), at(60)
	})))
	_, err = run[scd.PutSubscriptionResult](e, e.putSub(ussA, id(5), withSubQuota(3, nil)))
	wantQuota(t, err, 1, "max_subscriptions_per_uss_per_cell")
}

func withEntityQuota(q uint32, mod func(*scd.PutOperationalIntent)) func(*scd.PutOperationalIntent) {
	return func(op *scd.PutOperationalIntent) {
		op.MaxEntitiesPerCell = q
		if mod != nil {
			mod(op)
		}
	}
}

func (e *env) putCR(caller string, cid models.ID, ovn models.OVN, q uint32, cs []models.CellID) (scd.ConstraintResult, error) {
	return run[scd.ConstraintResult](e, &scd.PutConstraint{Caller: caller, Now: e.tick(), ID: cid, OVN: ovn,
		Extents: models.Volume4D{Cells: cs, StartTime: at(0), EndTime: at(60)}, USSBaseURL: "https://" + caller + ".example/cr",
		MaxEntitiesPerCell: q})
}

// OIRs and CRs count together against one quota per USS per cell.
func TestEntityQuotaPerUSSPerCell(t *testing.T) {
	e := newEnv(t)
	const q = 3
	oir1 := e.createOIR(ussA, id(1), withEntityQuota(q, nil)).OIR.OIR
	e.createOIR(ussA, id(2), withEntityQuota(q, func(op *scd.PutOperationalIntent) {
		op.Key = []models.OVN{oir1.OVN()}
	}))
	cr, err := e.putCR(ussA, id(50), "", q, cells(3, 4))
	if err != nil {
		t.Fatal(err)
	}
	// Cell 3 holds 3 of uss-a's entities now; cells 1 and 2 hold 2.
	_, err = e.putCR(ussA, id(51), "", q, cells(3))
	wantQuota(t, err, 3, "max_entities_per_uss_per_cell")
	_, err = run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(3), withEntityQuota(q, func(op *scd.PutOperationalIntent) {
		op.Extents.Cells = cells(2, 3)
		// The quota comes before the subscription: nothing is created.
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(300)
	})))
	wantQuota(t, err, 3, "max_entities_per_uss_per_cell")
	if _, err := e.getSub(ussA, id(300)); models.CodeOf(err) != models.CodeNotFound {
		t.Fatalf("implicit subscription of a refused OIR stored: %v", err)
	}
	// Room in cells 1 and 2; another USS is not affected; 0 is no limit.
	if _, err := e.putCR(ussA, id(52), "", q, cells(1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.putCR(ussB, id(53), "", q, cells(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.putCR(ussA, id(54), "", 0, cells(3)); err != nil {
		t.Fatal(err)
	}

	// Updates in their own cells pass, even with the quota lowered to 1.
	cr2, err := e.putCR(ussA, id(50), cr.CR.OVN(), 1, cells(3, 4))
	if err != nil {
		t.Fatalf("update in place refused: %v", err)
	}
	// Growing into a full cell does not (cell 1: OIRs 1, 2 and CR 52).
	_, err = e.putCR(ussA, id(50), cr2.CR.OVN(), q, cells(1, 3, 4))
	wantQuota(t, err, 1, "max_entities_per_uss_per_cell")

	// Deleting frees quota.
	must[scd.ConstraintResult](e, &scd.DeleteConstraint{Caller: ussA, ID: id(52), OVN: mustCR(e, id(52)).OVN()})
	if _, err := e.putCR(ussA, id(50), cr2.CR.OVN(), q, cells(1, 3, 4)); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

func mustCR(e *env, cid models.ID) *models.Constraint {
	e.t.Helper()
	return must[*models.Constraint](e, &scd.GetConstraint{Caller: ussA, ID: cid})
}

// An OIR update stays possible at the quota, and Nonconforming and
// Contingent writes are never refused by it.
func TestEntityQuotaOIRUpdates(t *testing.T) {
	e := newEnv(t)
	a := e.createOIR(ussA, id(1), withEntityQuota(2, func(op *scd.PutOperationalIntent) {
		op.Extents.Cells = cells(1, 2)
		op.NewSubscription = &scd.NewSubscription{USSBaseURL: urlA}
		op.NewSubscriptionID = id(100)
	})).OIR.OIR
	b := e.createOIR(ussA, id(2), withEntityQuota(2, func(op *scd.PutOperationalIntent) {
		op.Extents.Cells = cells(2, 3)
		op.Key = []models.OVN{a.OVN()}
	})).OIR.OIR
	// Activating OIR 1 in its cells, at a quota lowered to 1: fine.
	a = e.createOIR(ussA, id(1), withEntityQuota(1, func(op *scd.PutOperationalIntent) {
		op.OVN = a.OVN()
		op.State = models.StateActivated
		op.Extents.Cells = cells(1, 2)
		op.SubscriptionID = id(100)
		op.Key = []models.OVN{b.OVN()}
	})).OIR.OIR
	// Moving into cell 3 (full at 1, OIR 2) as Activated: refused...
	_, err := run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(1), withEntityQuota(1, func(op *scd.PutOperationalIntent) {
		op.OVN = a.OVN()
		op.State = models.StateActivated
		op.Extents.Cells = cells(1, 2, 3)
		op.SubscriptionID = id(100)
		op.Key = []models.OVN{b.OVN()}
	})))
	wantQuota(t, err, 3, "max_entities_per_uss_per_cell")
	// ...but as Contingent (off-nominal: the aircraft is where it is), it
	// passes.
	e.createOIR(ussA, id(1), withEntityQuota(1, func(op *scd.PutOperationalIntent) {
		op.OVN = a.OVN()
		op.State = models.StateContingent
		op.Extents.Cells = cells(1, 2, 3)
		op.SubscriptionID = id(100)
	}))
	// Deleting OIR 2 frees cell 3 for a new one.
	must[scd.OperationalIntentResult](e, &scd.DeleteOperationalIntent{Caller: ussA, ID: id(2), OVN: b.OVN()})
	_, err = run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(3), withEntityQuota(2, func(op *scd.PutOperationalIntent) {
		op.Extents.Cells = cells(3)
		op.State = models.StateAccepted
	})))
	// Cell 3 holds OIR 1 (Contingent) only: room for one more at 2, but
	// the key lacks OIR 1: the quota passed, the key check decides.
	wantCode(t, err, models.CodeMissingKey)
}

// Expired entities do not count.
func TestEntityQuotaIgnoresExpired(t *testing.T) {
	e := newEnv(t)
	old := e.createOIR(ussA, id(1), withEntityQuota(1, func(op *scd.PutOperationalIntent) {
		op.Extents = vol(cells(1), 0, 10, 0, 100)
	})).OIR.OIR
	_, err := e.putCR(ussA, id(50), "", 1, cells(1))
	wantQuota(t, err, 1, "max_entities_per_uss_per_cell")
	e.now = t0.Add(11 * time.Minute)
	if _, err := e.putCR(ussA, id(50), "", 1, cells(1)); err != nil {
		t.Fatalf("an expired OIR still counts: %v", err)
	}
	// The expired OIR, updated back into force in its own cell, counts
	// again from scratch: the cell is now full with the CR.
	_, err = run[scd.OperationalIntentResult](e, e.putOIR(ussA, id(1), withEntityQuota(1, func(op *scd.PutOperationalIntent) {
		op.OVN = old.OVN()
		op.Extents = vol(cells(1), 20, 30, 0, 100)
	})))
	wantQuota(t, err, 1, "max_entities_per_uss_per_cell")
}

func asModelsError(err error, target **models.Error) bool { return errors.As(err, target) }
