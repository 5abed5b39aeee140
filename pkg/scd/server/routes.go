package server

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/api"
	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/store"
)

// route is one row of the table of spec §1.
type route struct {
	name    string
	method  string
	pattern string
	// scopes is the row's requirement: alternatives OR-ed, scopes within
	// one alternative AND-ed (§2).
	scopes auth.Requirement
	// readsBody: the endpoint takes a JSON body. DELETE and GET bodies are
	// ignored (§1) and never read.
	readsBody bool
	// conflictBody: 409s are AirspaceConflictResponses (OIR PUT, §3.7).
	conflictBody bool
	// areaTooLarge413: an over-large area is 413, not 400 (subscription
	// query only, §4 step 5).
	areaTooLarge413 bool
	// public: no authentication and no store (/healthy).
	public bool
	// noAuth: no authentication, but handled like any route (extra routes
	// such as /aux/v1/version).
	noAuth bool
	handle func(s *server, rq *request) (response, error)
}

// Scope shorthands as in the spec §1 table.
const (
	sc   = auth.ScopeStrategicCoordination
	cm   = auth.ScopeConstraintManagement
	cp   = auth.ScopeConstraintProcessing
	cmsa = auth.ScopeConformanceMonitoringSA
	aa   = auth.ScopeAvailabilityArbitration
)

func anyOf(scopes ...string) auth.Requirement {
	r := make(auth.Requirement, len(scopes))
	for i, s := range scopes {
		r[i] = []string{s}
	}
	return r
}

const (
	oirPath   = "/dss/v1/operational_intent_references"
	crPath    = "/dss/v1/constraint_references"
	subPath   = "/dss/v1/subscriptions"
	availPath = "/dss/v1/uss_availability"
)

// routeTable lists every endpoint of spec §1 (numbered as there) plus
// /healthy.
func routeTable() []route {
	// "SC · SC+CP · CMSA": the SC+CP alternative is implied by SC alone but
	// is kept so the table reads like the spec.
	oirWrite := auth.Requirement{{sc}, {sc, cp}, {cmsa}}
	return []route{
		{name: "healthy", method: http.MethodGet, pattern: "/healthy", public: true},

		// 1–5 operational intent references.
		{name: "queryOperationalIntents", method: http.MethodPost, pattern: oirPath + "/query",
			scopes: anyOf(sc, cmsa), readsBody: true, handle: queryOperationalIntents},
		{name: "getOperationalIntent", method: http.MethodGet, pattern: oirPath + "/{entityid}",
			scopes: anyOf(sc, cmsa), handle: getOperationalIntent},
		{name: "createOperationalIntent", method: http.MethodPut, pattern: oirPath + "/{entityid}",
			scopes: oirWrite, readsBody: true, conflictBody: true, handle: putOperationalIntent},
		{name: "updateOperationalIntent", method: http.MethodPut, pattern: oirPath + "/{entityid}/{ovn}",
			scopes: oirWrite, readsBody: true, conflictBody: true, handle: putOperationalIntent},
		{name: "deleteOperationalIntent", method: http.MethodDelete, pattern: oirPath + "/{entityid}/{ovn}",
			scopes: anyOf(sc, cmsa), handle: deleteOperationalIntent},

		// 6–10 constraint references.
		{name: "queryConstraints", method: http.MethodPost, pattern: crPath + "/query",
			scopes: anyOf(cm, cp), readsBody: true, handle: queryConstraints},
		{name: "getConstraint", method: http.MethodGet, pattern: crPath + "/{entityid}",
			scopes: anyOf(cm, cp), handle: getConstraint},
		{name: "createConstraint", method: http.MethodPut, pattern: crPath + "/{entityid}",
			scopes: anyOf(cm), readsBody: true, handle: putConstraint},
		{name: "updateConstraint", method: http.MethodPut, pattern: crPath + "/{entityid}/{ovn}",
			scopes: anyOf(cm), readsBody: true, handle: putConstraint},
		{name: "deleteConstraint", method: http.MethodDelete, pattern: crPath + "/{entityid}/{ovn}",
			scopes: anyOf(cm), handle: deleteConstraint},

		// 11–15 subscriptions.
		{name: "querySubscriptions", method: http.MethodPost, pattern: subPath + "/query",
			scopes: anyOf(cp, sc), readsBody: true, areaTooLarge413: true, handle: querySubscriptions},
		{name: "getSubscription", method: http.MethodGet, pattern: subPath + "/{subscriptionid}",
			scopes: anyOf(cp, sc), handle: getSubscription},
		{name: "createSubscription", method: http.MethodPut, pattern: subPath + "/{subscriptionid}",
			scopes: anyOf(cp, sc), readsBody: true, handle: putSubscription},
		{name: "updateSubscription", method: http.MethodPut, pattern: subPath + "/{subscriptionid}/{version}",
			scopes: anyOf(cp, sc), readsBody: true, handle: putSubscription},
		{name: "deleteSubscription", method: http.MethodDelete, pattern: subPath + "/{subscriptionid}/{version}",
			scopes: anyOf(cp, sc), handle: deleteSubscription},

		// 16 reports.
		{name: "makeReport", method: http.MethodPost, pattern: "/dss/v1/reports",
			scopes: anyOf(cm, cp, sc, cmsa, aa), readsBody: true, handle: makeReport},

		// 17–18 USS availability.
		{name: "getUssAvailability", method: http.MethodGet, pattern: availPath + "/{uss_id}",
			scopes: anyOf(aa, sc, cmsa), handle: getUssAvailability},
		{name: "setUssAvailability", method: http.MethodPut, pattern: availPath + "/{uss_id}",
			scopes: anyOf(aa), readsBody: true, handle: setUssAvailability},
	}
}

// run executes a parsed operation and renders its typed result. parseErr is
// the error of the api.Parse* call that produced op, so every endpoint is
// one line of parse and one call of run.
func run[T any](rq *request, s *server, op scd.Operation, parseErr error, status int,
	render func(T) any) (response, error) {
	if parseErr != nil {
		return response{}, parseErr
	}
	res, err := store.Do[T](rq.ctx, s.cfg.Store, op)
	if err != nil {
		return response{}, err
	}
	return response{status: status, value: render(res)}, nil
}

// requireParam rejects an empty path parameter of an update or delete route.
// A trailing slash makes the last parameter empty (§1 routing rules); for an
// update that must not fall into the create logic (**Deviation** of §1:
// 400 for all three entity kinds), whatever the parser does with "".
func requireParam(v, name string) error {
	if v == "" {
		return models.Errorf(models.CodeBadRequest, "missing %s in path", name)
	}
	return nil
}

// putTarget reads a PUT route's path: a create has the ID only, an update
// also the token of the version it replaces (named name), which must not
// be empty (requireParam). status is what OIR and constraint PUTs answer on
// success: 201 for a create, 200 for an update.
func putTarget(rq *request, name string) (create bool, token string, status int, err error) {
	if len(rq.params) == 1 {
		return true, "", http.StatusCreated, nil
	}
	return false, rq.params[1], http.StatusOK, requireParam(rq.params[1], name)
}

func queryOperationalIntents(s *server, rq *request) (response, error) {
	op, err := api.ParseQueryOperationalIntents(rq.info, rq.body)
	return run(rq, s, op, err, http.StatusOK, func(res []scd.OperationalIntentView) any {
		return api.RenderQueryOperationalIntents(rq.caller(), res)
	})
}

func getOperationalIntent(s *server, rq *request) (response, error) {
	op, err := api.ParseGetOperationalIntent(rq.info, rq.params[0])
	return run(rq, s, op, err, http.StatusOK, func(res scd.OperationalIntentView) any {
		return api.RenderGetOperationalIntent(rq.caller(), res)
	})
}

func putOperationalIntent(s *server, rq *request) (response, error) {
	create, ovn, status, err := putTarget(rq, "ovn")
	if err != nil {
		return response{}, err
	}
	op, err := api.ParsePutOperationalIntent(rq.info, rq.params[0], ovn, create, rq.body)
	if err != nil {
		return response{}, err
	}
	// §6.1 B, §2: the only scope rule that depends on request content.
	if (op.State == models.StateNonconforming || op.State == models.StateContingent) &&
		!rq.claims.HasScope(cmsa) {
		return response{}, models.Errorf(models.CodePermissionDenied,
			"setting state %s requires scope %q", op.State, cmsa)
	}
	// Decided here, not in Execute, so a replicated log carries it
	// (architecture: non-deterministic inputs travel in the operation).
	if op.NewSubscription != nil {
		op.NewSubscriptionID = s.cfg.NewID()
	}
	// This node's quota travels in the operation too (docs/quotas.md).
	op.MaxEntitiesPerCell = s.cfg.Quotas.EntitiesPerCell
	return run(rq, s, op, nil, status, func(res scd.OperationalIntentResult) any {
		return api.RenderChangeOperationalIntent(rq.caller(), res)
	})
}

func deleteOperationalIntent(s *server, rq *request) (response, error) {
	if err := requireParam(rq.params[1], "ovn"); err != nil {
		return response{}, err
	}
	op, err := api.ParseDeleteOperationalIntent(rq.info, rq.params[0], rq.params[1])
	return run(rq, s, op, err, http.StatusOK, func(res scd.OperationalIntentResult) any {
		return api.RenderChangeOperationalIntent(rq.caller(), res)
	})
}

func queryConstraints(s *server, rq *request) (response, error) {
	op, err := api.ParseQueryConstraints(rq.info, rq.body)
	return run(rq, s, op, err, http.StatusOK, func(res []*models.Constraint) any {
		return api.RenderQueryConstraints(rq.caller(), res)
	})
}

func getConstraint(s *server, rq *request) (response, error) {
	op, err := api.ParseGetConstraint(rq.info, rq.params[0])
	return run(rq, s, op, err, http.StatusOK, func(res *models.Constraint) any {
		return api.RenderGetConstraint(rq.caller(), res)
	})
}

func putConstraint(s *server, rq *request) (response, error) {
	create, ovn, status, err := putTarget(rq, "ovn")
	if err != nil {
		return response{}, err
	}
	op, err := api.ParsePutConstraint(rq.info, rq.params[0], ovn, create, rq.body)
	if err != nil {
		return response{}, err
	}
	op.MaxEntitiesPerCell = s.cfg.Quotas.EntitiesPerCell
	return run(rq, s, op, nil, status, func(res scd.ConstraintResult) any {
		return api.RenderChangeConstraint(rq.caller(), res)
	})
}

func deleteConstraint(s *server, rq *request) (response, error) {
	if err := requireParam(rq.params[1], "ovn"); err != nil {
		return response{}, err
	}
	op, err := api.ParseDeleteConstraint(rq.info, rq.params[0], rq.params[1])
	return run(rq, s, op, err, http.StatusOK, func(res scd.ConstraintResult) any {
		return api.RenderChangeConstraint(rq.caller(), res)
	})
}

func querySubscriptions(s *server, rq *request) (response, error) {
	op, err := api.ParseQuerySubscriptions(rq.info, rq.body)
	return run(rq, s, op, err, http.StatusOK, func(res []scd.SubscriptionView) any {
		return api.RenderQuerySubscriptions(res)
	})
}

func getSubscription(s *server, rq *request) (response, error) {
	op, err := api.ParseGetSubscription(rq.info, rq.params[0])
	return run(rq, s, op, err, http.StatusOK, func(res scd.SubscriptionView) any {
		return api.RenderGetSubscription(res)
	})
}

func putSubscription(s *server, rq *request) (response, error) {
	create, version, _, err := putTarget(rq, "version")
	if err != nil {
		return response{}, err
	}
	// Create and update both answer 200 (§1 row 13).
	op, err := api.ParsePutSubscription(rq.info, rq.params[0], version, create, rq.body)
	if err != nil {
		return response{}, err
	}
	op.MaxSubscriptionsPerCell = s.cfg.Quotas.SubscriptionsPerCell
	return run(rq, s, op, nil, http.StatusOK, func(res scd.PutSubscriptionResult) any {
		return api.RenderPutSubscription(rq.caller(), res)
	})
}

func deleteSubscription(s *server, rq *request) (response, error) {
	if err := requireParam(rq.params[1], "version"); err != nil {
		return response{}, err
	}
	op, err := api.ParseDeleteSubscription(rq.info, rq.params[0], rq.params[1])
	return run(rq, s, op, err, http.StatusOK, func(res scd.SubscriptionView) any {
		return api.RenderDeleteSubscription(res)
	})
}

func getUssAvailability(s *server, rq *request) (response, error) {
	op, err := api.ParseGetUssAvailability(rq.info, rq.params[0])
	return run(rq, s, op, err, http.StatusOK, func(res scd.AvailabilityView) any {
		return api.RenderAvailability(res)
	})
}

func setUssAvailability(s *server, rq *request) (response, error) {
	op, err := api.ParsePutUssAvailability(rq.info, rq.params[0], rq.body)
	return run(rq, s, op, err, http.StatusOK, func(res scd.AvailabilityView) any {
		return api.RenderAvailability(res)
	})
}

// makeReport archives an error report by logging it (§6.5: the reference
// logs the JSON; no store access) and echoes it with a new report_id.
func makeReport(s *server, rq *request) (response, error) {
	report, err := api.ParseErrorReport(rq.body)
	if err != nil {
		return response{}, err
	}
	report.ReportID = string(s.cfg.NewID())
	s.log.Info("error report received", zap.String("report_id", report.ReportID),
		zap.String("reporter", rq.caller()), zap.Any("report", report))
	return response{status: http.StatusCreated, value: report}, nil
}
