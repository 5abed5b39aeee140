package server

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/pool"
	scdserver "github.com/raftdss/dss/pkg/scd/server"
	"github.com/raftdss/dss/pkg/store"
)

// Scopes of the auxiliary API.
const (
	ScopeISARead         = "dss.read.identification_service_areas"
	ScopeISAWrite        = "dss.write.identification_service_areas"
	ScopePoolStatusRead  = "interuss.pool_status.read"
	ScopeHeartbeatWrite  = "interuss.pool_status.heartbeat.write"
	prefix               = "/aux/v1"
	maxTimeParameterSize = 64
)

// GlobalOptions are the values of GET /aux/v1/configuration/global_options.
type GlobalOptions struct {
	SCDGlobalLock              bool
	SCDHashLock                bool
	TimeBasedNotificationIndex bool
}

// Config configures the routes. InstanceID and DarID are required.
type Config struct {
	// Version is the build's version string.
	Version string
	// InstanceID is this node's identity in the pool (aux.md §3).
	InstanceID string
	// PublicEndpoint is this node's public base URL ("" if not set).
	PublicEndpoint string
	// DarID returns the pool's identity (aux.md §2): the Raft cluster ID
	// or the database's. An error fails the request with its code.
	DarID func(ctx context.Context) (string, error)
	// CACerts returns the current CA certificates, one PEM string each,
	// that signed this node's raft certificate and that it accepts from
	// peers (SplitPEM of the CA file, which may be reloaded while the node
	// runs); nil means none: peer TLS is off (aux.md §5).
	CACerts func() []string
	// Options are reported by global_options.
	Options GlobalOptions
}

// Routes returns the /aux/v1 routes for the SCD handler's ExtraRoutes.
func Routes(cfg Config) ([]scdserver.Route, error) {
	if cfg.InstanceID == "" {
		return nil, errors.New("pool server: Config.InstanceID is required")
	}
	if p := pool.SourceProblem(cfg.InstanceID); p != "" {
		return nil, fmt.Errorf("pool server: the instance ID (--locality) %s", p)
	}
	if p := pool.SourceProblem(cfg.PublicEndpoint); cfg.PublicEndpoint != "" && p != "" {
		return nil, fmt.Errorf("pool server: the public endpoint %s", p)
	}
	if cfg.DarID == nil {
		return nil, errors.New("pool server: Config.DarID is required")
	}
	cas := func() []string {
		if cfg.CACerts == nil {
			return []string{}
		}
		if l := cfg.CACerts(); l != nil {
			return l
		}
		return []string{}
	}
	poolRead := auth.Requirement{{ScopePoolStatusRead}}
	return []scdserver.Route{
		{Name: "getVersion", Method: http.MethodGet, Pattern: prefix + "/version", NoAuth: true,
			Handle: func(*scdserver.Request) (int, any, error) {
				return http.StatusOK, versionResponse{Version: cfg.Version}, nil
			}},
		{Name: "validateOauth", Method: http.MethodGet, Pattern: prefix + "/validate_oauth",
			Scopes: auth.Requirement{{ScopeISARead}, {ScopeISAWrite}}, Handle: validateOauth},
		{Name: "getPool", Method: http.MethodGet, Pattern: prefix + "/pool", Scopes: poolRead,
			Handle: func(rq *scdserver.Request) (int, any, error) {
				id, err := cfg.DarID(rq.Ctx)
				if err != nil {
					return 0, nil, err
				}
				return http.StatusOK, poolResponse{DarID: id}, nil
			}},
		{Name: "getDSSInstances", Method: http.MethodGet, Pattern: prefix + "/pool/dss_instances", Scopes: poolRead,
			Handle: func(rq *scdserver.Request) (int, any, error) {
				insts, err := store.Do[[]*models.DSSInstance](rq.Ctx, rq.Store, &pool.ListDSSInstances{})
				if err != nil {
					return 0, nil, err
				}
				return http.StatusOK, renderInstances(insts), nil
			}},
		{Name: "putDSSInstancesHeartbeat", Method: http.MethodPut, Pattern: prefix + "/pool/dss_instances/heartbeat",
			Scopes: auth.Requirement{{ScopeHeartbeatWrite}},
			Handle: func(rq *scdserver.Request) (int, any, error) {
				op, err := parseHeartbeat(rq, cfg)
				if err != nil {
					return 0, nil, err
				}
				insts, err := store.Do[[]*models.DSSInstance](rq.Ctx, rq.Store, op)
				if err != nil {
					return 0, nil, err
				}
				return http.StatusCreated, renderInstances(insts), nil
			}},
		{Name: "getAcceptedCAs", Method: http.MethodGet, Pattern: prefix + "/configuration/accepted_ca_certs", NoAuth: true,
			Handle: func(*scdserver.Request) (int, any, error) { return http.StatusOK, casResponse{CAs: cas()}, nil }},
		{Name: "getInstanceCAs", Method: http.MethodGet, Pattern: prefix + "/configuration/ca_certs", NoAuth: true,
			Handle: func(*scdserver.Request) (int, any, error) { return http.StatusOK, casResponse{CAs: cas()}, nil }},
		{Name: "getGlobalOptions", Method: http.MethodGet, Pattern: prefix + "/configuration/global_options",
			Scopes: poolRead,
			Handle: func(*scdserver.Request) (int, any, error) {
				return http.StatusOK, globalOptionsResponse{SCDGlobalLock: cfg.Options.SCDGlobalLock,
					SCDHashLock: cfg.Options.SCDHashLock, TimeBasedNotificationIndex: cfg.Options.TimeBasedNotificationIndex}, nil
			}},
	}, nil
}

// validateOauth answers 200 when the token's subject is the owner asked
// for (aux.md V1–V3).
func validateOauth(rq *scdserver.Request) (int, any, error) {
	owners, ok := rq.Query["owner"]
	switch {
	case !ok:
		return 0, nil, models.Errorf(models.CodeBadRequest, "missing owner query parameter")
	case len(owners) != 1:
		return 0, nil, models.Errorf(models.CodeBadRequest, "owner query parameter given %d times", len(owners))
	case owners[0] != rq.Claims.Subject:
		return 0, nil, models.Errorf(models.CodePermissionDenied, "owner mismatch: the token's subject is not %q", owners[0])
	}
	return http.StatusOK, struct{}{}, nil
}

// parseHeartbeat builds the operation of a heartbeat PUT (aux.md H4–H6).
func parseHeartbeat(rq *scdserver.Request, cfg Config) (*pool.PutHeartbeat, error) {
	one := func(name string) (string, bool, error) {
		vs, ok := rq.Query[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", false, models.Errorf(models.CodeBadRequest, "%s query parameter given %d times", name, len(vs))
		}
		return vs[0], true, nil
	}
	source, ok, err := one("source")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, models.Errorf(models.CodeBadRequest, "missing source query parameter")
	}
	if p := pool.SourceProblem(source); p != "" {
		return nil, models.Errorf(models.CodeBadRequest, "source %s", p)
	}
	if len(rq.Claims.Subject) > pool.MaxFieldBytes {
		return nil, models.Errorf(models.CodeBadRequest, "token subject longer than %d bytes", pool.MaxFieldBytes)
	}
	op := &pool.PutHeartbeat{InstanceID: cfg.InstanceID, PublicEndpoint: cfg.PublicEndpoint,
		Reporter: rq.Claims.Subject, Source: source, Timestamp: rq.Now.UTC()}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"timestamp", &op.Timestamp}, {"next_heartbeat_expected_before", &op.NextExpectedBefore}} {
		v, ok, err := one(p.name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			return nil, models.Errorf(models.CodeBadRequest, "%s: %v", p.name, err)
		}
		*p.dst = t
	}
	return op, nil
}

// parseTime reads an RFC 3339 time of a year between 1 and 9999 (what the
// format can spell) as UTC.
func parseTime(v string) (time.Time, error) {
	if len(v) > maxTimeParameterSize {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	t = t.UTC()
	if t.IsZero() {
		return time.Time{}, errors.New("the zero time is not a heartbeat time")
	}
	return t, nil
}

// SplitPEM returns each CERTIFICATE block of data re-encoded on its own
// (other blocks are skipped); bytes that are not PEM are an error.
func SplitPEM(data []byte) ([]string, error) {
	out := []string{}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(strings.TrimSpace(string(rest))) != 0 {
				return nil, errors.New("CA file holds data that is not PEM")
			}
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		out = append(out, string(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})))
	}
}
