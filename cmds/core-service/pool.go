package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/raftdss/dss/pkg/models"
	poolserver "github.com/raftdss/dss/pkg/pool/server"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	scdserver "github.com/raftdss/dss/pkg/scd/server"
)

// poolConfig is what the flags of the auxiliary API (/aux/v1,
// docs/spec/aux.md) decide.
type poolConfig struct {
	locality       string
	publicEndpoint string
}

func (c *poolConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.locality, "locality", "",
		"this node's identity in the pool's DSS instance list (/aux/v1/pool/dss_instances); "+
			"default: the raft node ID on the Raft store, the host name otherwise")
	fs.StringVar(&c.publicEndpoint, "public_endpoint", "",
		"this node's public base URL, reported with its heartbeats in /aux/v1/pool/dss_instances")
}

// poolRoutes builds the /aux/v1 routes of this node.
func poolRoutes(cfg *config, be *backend) ([]scdserver.Route, error) {
	id := cfg.pool.locality
	if id == "" {
		if cfg.store == storeRaft {
			id = strconv.FormatUint(cfg.raft.nodeID, 10)
		} else if h, err := os.Hostname(); err == nil && h != "" {
			id = h
		} else {
			return nil, fmt.Errorf("no host name to identify this node in the pool (%v): pass --locality", err)
		}
	}
	var cas func() []string
	if cfg.store == storeRaft && cfg.raft.tlsCA != "" {
		f := &caFile{path: cfg.raft.tlsCA}
		if err := f.reload(); err != nil {
			return nil, err
		}
		cas = f.current
		// The CA list follows the raft peer certificates' reload (SIGHUP).
		if reload := be.reloadTLS; reload != nil {
			be.reloadTLS = func() error {
				if err := reload(); err != nil {
					return err
				}
				return f.reload()
			}
		}
	}
	return poolserver.Routes(poolserver.Config{
		Version:        buildVersion(),
		InstanceID:     id,
		PublicEndpoint: cfg.pool.publicEndpoint,
		DarID:          be.darID,
		CACerts:        cas,
		// The Raft store and the memstore apply every write one at a time
		// (one log, one lock): the effect of InterUSS's global SCD lock.
		// PostgreSQL runs SERIALIZABLE transactions side by side instead.
		Options: poolserver.GlobalOptions{SCDGlobalLock: cfg.store != storeSQL},
	})
}

// caFile is the --raft_tls_ca certificate list the CA endpoints serve; a
// failed reload keeps the list loaded before.
type caFile struct {
	path string
	cur  atomic.Pointer[[]string]
}

func (f *caFile) reload() error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("reading --raft_tls_ca: %w", err)
	}
	l, err := poolserver.SplitPEM(data)
	if err != nil {
		return fmt.Errorf("--raft_tls_ca %s: %w", f.path, err)
	}
	f.cur.Store(&l)
	return nil
}

func (f *caFile) current() []string { return *f.cur.Load() }

// raftDarID is the Raft store's pool identity: the cluster ID, the same on
// every member (docs/spec/aux.md P1).
func raftDarID(n *consensus.Node) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		id := n.ClusterID()
		if id == 0 {
			return "", models.Errorf(models.CodeUnavailable,
				"this node does not know its cluster's ID yet (a joining member before its first snapshot)")
		}
		return fmt.Sprintf("%016x", id), nil
	}
}

// memDarID is the memstore's pool identity: the store lives and dies with
// the process, and so does its identity.
func memDarID() string { return uuid.NewString() }

// buildVersion is the module version and VCS revision the binary was built
// from, "devel" when unknown.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			rev := s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
			v += "+" + rev
		}
	}
	return v
}
