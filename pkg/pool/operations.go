package pool

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/store"
)

// Operation types of the pool. They share the registry (and the log) with
// SCD's, whose types are small numbers; the pool's start at 0x200. Never
// renumber or reuse a value.
const (
	OpPutHeartbeat store.OpType = 0x200 + iota
	OpListDSSInstances
)

// MaxFieldBytes bounds every string a heartbeat stores (source, reporter,
// instance ID, public endpoint): a heartbeat is replicated and snapshotted,
// so it must stay small.
const MaxFieldBytes = 1024

// SourceProblem returns why s is not a valid heartbeat source, or "" when
// it is one: 1 to MaxFieldBytes bytes of valid UTF-8, every character
// printable (unicode.IsPrint), not only spaces. Both stores then hold it
// alike: PostgreSQL refuses NUL bytes and invalid UTF-8 in text.
func SourceProblem(s string) string {
	if strings.TrimSpace(s) == "" {
		return "is empty"
	}
	return models.PrintableProblem(s, MaxFieldBytes)
}

// PutHeartbeat records a heartbeat of one DSS instance (PUT
// /aux/v1/pool/dss_instances/heartbeat) and returns every instance.
type PutHeartbeat struct {
	// InstanceID and PublicEndpoint identify the node that received the
	// request (its configuration, not the client's input).
	InstanceID     string
	PublicEndpoint string
	// Reporter is the token subject of the caller.
	Reporter string
	// Source is the request's source parameter; never empty.
	Source string
	// Timestamp is the request's timestamp parameter, or the request time.
	Timestamp time.Time
	// NextExpectedBefore is zero when the request gave none.
	NextExpectedBefore time.Time
}

// ListDSSInstances returns every instance (GET /aux/v1/pool/dss_instances).
type ListDSSInstances struct{}

func (*PutHeartbeat) Type() store.OpType     { return OpPutHeartbeat }
func (*PutHeartbeat) ReadOnly() bool         { return false }
func (*ListDSSInstances) Type() store.OpType { return OpListDSSInstances }
func (*ListDSSInstances) ReadOnly() bool     { return true }

// Execute stores the heartbeat as the instance's most recent one, its index
// one more than the previous heartbeat's (1 for the first), and returns
// every instance in ID order ([]*models.DSSInstance).
func (o *PutHeartbeat) Execute(ctx context.Context, r repos.Repo) (any, error) {
	switch {
	case o.InstanceID == "":
		return nil, models.Errorf(models.CodeInternal, "heartbeat without an instance ID")
	case len(o.Reporter) > MaxFieldBytes || len(o.InstanceID) > MaxFieldBytes || len(o.PublicEndpoint) > MaxFieldBytes:
		return nil, models.Errorf(models.CodeBadRequest, "heartbeat field longer than %d bytes", MaxFieldBytes)
	}
	if p := SourceProblem(o.Source); p != "" {
		return nil, models.Errorf(models.CodeBadRequest, "source %s", p)
	}
	old, err := r.GetDSSInstance(ctx, o.InstanceID)
	if err != nil {
		return nil, err
	}
	index := int64(1)
	if old != nil && old.Heartbeat.Index < math.MaxInt64 {
		index = old.Heartbeat.Index + 1
	} else if old != nil {
		index = math.MaxInt64
	}
	inst := &models.DSSInstance{
		ID:             o.InstanceID,
		PublicEndpoint: o.PublicEndpoint,
		Heartbeat: models.Heartbeat{
			Timestamp:          o.Timestamp.UTC(),
			Reporter:           o.Reporter,
			Source:             o.Source,
			Index:              index,
			NextExpectedBefore: o.NextExpectedBefore.UTC(),
		},
	}
	if err := r.UpsertDSSInstance(ctx, inst); err != nil {
		return nil, err
	}
	return r.ListDSSInstances(ctx)
}

// Execute returns every instance in ID order ([]*models.DSSInstance).
func (*ListDSSInstances) Execute(ctx context.Context, r repos.Repo) (any, error) {
	return r.ListDSSInstances(ctx)
}
