package server

import (
	"errors"
	"testing"

	"github.com/raftdss/dss/pkg/scd"
)

// TestQuotasTravelInThePUTs: the handler copies its quotas into every PUT
// it builds, whose type then says so; the zero Config sets none.
func TestQuotasTravelInThePUTs(t *testing.T) {
	quotas := scd.Quotas{SubscriptionsPerCell: 7, EntitiesPerCell: 70}
	for _, withQuotas := range []bool{false, true} {
		for _, e := range endpoints {
			if e.op != scd.OpPutOperationalIntent && e.op != scd.OpPutConstraint && e.op != scd.OpPutSubscription {
				continue
			}
			st := failWith(errors.New("stop here"))
			h := newHandler(t, st, func(c *Config) {
				if withQuotas {
					c.Quotas = quotas
				}
			})
			do(h, e.method, e.path, allScopes, e.body)
			if len(st.ops) != 1 {
				t.Fatalf("%s %s: %d operations run", e.method, e.path, len(st.ops))
			}
			var got, want uint32
			wantType := e.op
			switch op := st.ops[0].(type) {
			case *scd.PutOperationalIntent:
				got, want = op.MaxEntitiesPerCell, quotas.EntitiesPerCell
				if withQuotas {
					wantType = scd.OpPutOperationalIntentWithQuota
				}
			case *scd.PutConstraint:
				got, want = op.MaxEntitiesPerCell, quotas.EntitiesPerCell
				if withQuotas {
					wantType = scd.OpPutConstraintWithQuota
				}
			case *scd.PutSubscription:
				got, want = op.MaxSubscriptionsPerCell, quotas.SubscriptionsPerCell
				if withQuotas {
					wantType = scd.OpPutSubscriptionWithQuota
				}
			}
			if !withQuotas {
				want = 0
			}
			if got != want || st.ops[0].Type() != wantType {
				t.Errorf("%s %s (quotas %v): quota %d type %d, want %d type %d", e.method, e.path, withQuotas,
					got, st.ops[0].Type(), want, wantType)
			}
		}
	}
}
