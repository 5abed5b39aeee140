package server

import (
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"net/http"
	"testing"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// TestScenarioOnMemstore drives the real operations through the handler:
// status codes, content type and the response shapes the renderers give.
func TestScenarioOnMemstore(t *testing.T) {
	// Implicit subscriptions need distinct IDs; the first one is testNewID.
	n := 0
	h := newHandler(t, memstore.New(), func(c *Config) {
		c.Logger = zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
		c.NewID = func() models.ID {
			n++
			if n == 1 {
				return testNewID
			}
			return models.ID(fmt.Sprintf("11111111-2222-4333-8444-%012d", n))
		}
	})
	uss1, uss2 := token("uss1", sc), token("uss2", sc)
	oirPath := "/dss/v1/operational_intent_references/" + oirID

	rec := do(h, "PUT", oirPath, uss1, oirBody("Accepted"))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	created := decodeJSON(t, rec)
	oir := created["operational_intent_reference"].(map[string]any)
	realOVN, _ := oir["ovn"].(string)
	if len(realOVN) < models.MinOVNLength || oir["subscription_id"] != string(testNewID) {
		t.Fatalf("created OIR %v: want a real OVN and the implicit subscription %s", oir, testNewID)
	}
	if _, ok := created["subscribers"].([]any); !ok {
		t.Fatalf("subscribers missing: %v", created)
	}

	rec = do(h, "GET", oirPath, uss2, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("get: %d %s", rec.Code, rec.Body.String())
	}
	if got := decodeJSON(t, rec)["operational_intent_reference"].(map[string]any)["ovn"]; got != string(models.ScrubbedOVN) {
		t.Fatalf("uss2 sees OVN %v", got)
	}

	rec = do(h, "POST", "/dss/v1/operational_intent_references/query", uss1, queryBody)
	if rec.Code != http.StatusOK || len(decodeJSON(t, rec)["operational_intent_references"].([]any)) != 1 {
		t.Fatalf("query: %d %s", rec.Code, rec.Body.String())
	}

	// Create on an existing id: plain OVN mismatch, AirspaceConflictResponse shape.
	wantMessage(t, do(h, "PUT", oirPath, uss1, oirBody("Accepted")), http.StatusConflict)

	// uss2 plans over uss1's intent without its OVN: failed key check.
	rec = do(h, "PUT", "/dss/v1/operational_intent_references/"+subID, uss2, oirBody("Accepted"))
	wantMessage(t, rec, http.StatusConflict)
	if list, _ := decodeJSON(t, rec)["missing_operational_intents"].([]any); len(list) != 1 {
		t.Fatalf("missing_operational_intents: %s", rec.Body.String())
	}

	wantMessage(t, do(h, "DELETE", oirPath+"/"+realOVN, uss2, ""), http.StatusForbidden)
	if rec = do(h, "DELETE", oirPath+"/"+realOVN, uss1, ""); rec.Code != http.StatusOK {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	wantMessage(t, do(h, "GET", oirPath, uss1, ""), http.StatusNotFound)

	rec = do(h, "PUT", "/dss/v1/uss_availability/uss3", token("arbiter", aa), availBody)
	if rec.Code != http.StatusOK {
		t.Fatalf("set availability: %d %s", rec.Code, rec.Body.String())
	}
	rec = do(h, "GET", "/dss/v1/uss_availability/uss3", uss1, "")
	status, _ := decodeJSON(t, rec)["status"].(map[string]any)
	if rec.Code != http.StatusOK || status["availability"] != "Normal" {
		t.Fatalf("get availability: %d %s", rec.Code, rec.Body.String())
	}

	rec = do(h, "PUT", "/dss/v1/subscriptions/"+subID, token("uss1", cp), subBody)
	if rec.Code != http.StatusOK {
		t.Fatalf("create subscription: %d %s", rec.Code, rec.Body.String())
	}
	wantMessage(t, do(h, "GET", "/dss/v1/subscriptions/"+subID, uss2, ""), http.StatusForbidden)
}
