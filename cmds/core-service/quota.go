package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/raftdss/dss/pkg/scd"
)

// quotaConfig is the per-USS quota flags (docs/quotas.md). The values are
// this node's: its handler copies them into every PUT it runs, so in a Raft
// pool each write is checked against the limits of the node that received
// it, on every replica alike.
type quotaConfig struct {
	subscriptionsPerCell quotaFlag
	entitiesPerCell      quotaFlag
}

func (q *quotaConfig) registerFlags(fs *flag.FlagSet) {
	q.subscriptionsPerCell = scd.DefaultSubscriptionsPerCell
	q.entitiesPerCell = scd.DefaultEntitiesPerCell
	fs.Var(&q.subscriptionsPerCell, "max_subscriptions_per_uss_per_cell",
		"most explicit subscriptions one USS (token subject) may hold in force in one S2 cell; "+
			"a PUT past it is answered 429; 0 = no limit (docs/quotas.md)")
	fs.Var(&q.entitiesPerCell, "max_entities_per_uss_per_cell",
		"most operational intents and constraints, together, one USS may hold in force in one S2 cell; "+
			"a PUT past it is answered 429; 0 = no limit (docs/quotas.md)")
}

// quotas returns the limits for server.Config.
func (q *quotaConfig) quotas() scd.Quotas {
	return scd.Quotas{SubscriptionsPerCell: uint32(q.subscriptionsPerCell), EntitiesPerCell: uint32(q.entitiesPerCell)}
}

// quotaFlag is a flag.Value taking a decimal count from 0 to 2^32-1.
type quotaFlag uint32

func (f *quotaFlag) String() string { return strconv.FormatUint(uint64(*f), 10) }

func (f *quotaFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("want a count from 0 (no limit) to 4294967295, got %q", s)
	}
	*f = quotaFlag(v)
	return nil
}
