package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/scd/store/raftstore"
	"github.com/raftdss/dss/pkg/transport"
	"github.com/raftdss/dss/pkg/transport/grpctransport"
)

// storeKind is the backend the node runs on.
type storeKind int

const (
	storeRaft storeKind = iota // default: Raft-replicated in-memory store
	storeSQL                   // --datastore_url: PostgreSQL
	storeMem                   // --memstore: single node, not durable (tests)
)

func (k storeKind) String() string {
	return [...]string{"raft", "sql", "memory"}[k]
}

// selectStore applies the selection rules of the architecture: the SQL store
// when --datastore_url is given, the Raft store otherwise; naming two
// backends is a usage error rather than a silent choice.
func selectStore(raft, mem, sql bool) (storeKind, error) {
	switch {
	case sql && raft:
		return 0, errors.New("--datastore_url selects the SQL store and --raftstore the Raft store: pass only one")
	case mem && (sql || raft):
		return 0, errors.New("--memstore cannot be combined with --raftstore or --datastore_url")
	case sql:
		return storeSQL, nil
	case mem:
		return storeMem, nil
	}
	return storeRaft, nil
}

// Defaults of the Raft flags.
const (
	defaultRaftDataDir = "./.dss-data"
	defaultRaftAddr    = "127.0.0.1:26001"
)

// raftConfig is what the --raft_* flags decide.
type raftConfig struct {
	nodeID          uint64
	peersFlag       string
	addr            string
	dataDir         string
	tick            time.Duration
	electionTicks   int
	heartbeatTicks  int
	snapshotEntries uint64
	catchUpEntries  uint64
	tlsCert         string
	tlsKey          string
	tlsCA           string
	// insecurePlaintext is --raft_insecure_plaintext_peers: a node with
	// peers accepts plaintext, unauthenticated raft connections.
	insecurePlaintext bool
	readsViaLog       bool
	join              bool
	// maxInboundConns and maxInboundConnsPerIP bound the raft listener's
	// open connections, in all and per remote IP (positive).
	maxInboundConns      int
	maxInboundConnsPerIP int
	adminSocket          string // "" when noAdminSocket says why there is none
	noAdminSocket        string

	// peers is peersFlag parsed, with this node added for a single node.
	peers map[uint64]string
}

func (c *raftConfig) registerFlags(fs *flag.FlagSet) {
	fs.Uint64Var(&c.nodeID, "raft_node_id", 1,
		"this node's raft ID: non-zero, unique in the cluster, never reused (it, not the address, is the node's identity)")
	fs.StringVar(&c.peersFlag, "raft_peers", "",
		"initial cluster members, this node included: 1=host:port,2=host:port,... "+
			"(addresses are only dialled); empty: a single-node cluster")
	fs.StringVar(&c.addr, "raft_addr", "",
		"address the raft transport listens on (default: this node's entry in --raft_peers, "+
			"or "+defaultRaftAddr+" for a single node)")
	fs.StringVar(&c.dataDir, "raft_data_dir", defaultRaftDataDir, "directory of the raft WAL and snapshots")
	fs.DurationVar(&c.tick, "raft_tick_interval", 100*time.Millisecond,
		"raft logical clock tick; election and heartbeat timeouts are counted in ticks")
	fs.IntVar(&c.electionTicks, "raft_election_ticks", 10,
		"ticks without a leader before a follower campaigns; also how long a leader cut off from a majority keeps leading")
	fs.IntVar(&c.heartbeatTicks, "raft_heartbeat_ticks", 1, "ticks between leader heartbeats (less than --raft_election_ticks)")
	fs.Uint64Var(&c.snapshotEntries, "raft_snapshot_entries", 10000,
		"applied entries between snapshots (each snapshot also purges old WAL segments)")
	fs.Uint64Var(&c.catchUpEntries, "raft_catchup_entries", 5000,
		"entries kept in memory after a snapshot so a lagging follower catches up from the log, not a snapshot")
	fs.StringVar(&c.tlsCert, "raft_tls_cert", "",
		"PEM certificate of this node for raft mutual TLS; it must name the node (DNS SAN or CN "+
			grpctransport.NodeName(1)+" for ID 1)")
	fs.StringVar(&c.tlsKey, "raft_tls_key", "", "PEM private key of --raft_tls_cert")
	fs.StringVar(&c.tlsCA, "raft_tls_ca", "", "PEM CA certificate that signed every node's raft certificate")
	fs.BoolVar(&c.insecurePlaintext, insecurePlaintextFlag, false,
		"INSECURE: let a node with peers (--raft_peers naming other members, or --raft_join) run raft without "+
			"mutual TLS; anyone who can reach a raft port can then act as any member, move the leader and write "+
			"entries. Without it such a node refuses to start unless --raft_tls_cert, --raft_tls_key and "+
			"--raft_tls_ca are given ('dssctl certs' creates them). With it the node warns at every start and "+
			"exports dss_raft_insecure_plaintext_peers 1")
	fs.IntVar(&c.maxInboundConns, maxInboundConnsFlag, grpctransport.DefaultMaxInboundConns,
		"most connections the raft port keeps open at once, from all addresses (positive); a new one past it is "+
			"closed before the TLS handshake and counted in dss_raft_inbound_connections_refused_total{reason=\"total\"}. "+
			"A node needs one per other member, and one more for a moment while a member reconnects")
	fs.IntVar(&c.maxInboundConnsPerIP, maxInboundConnsPerIPFlag, grpctransport.DefaultMaxInboundConnsPerIP,
		"most connections the raft port keeps open at once from one remote IP (positive, at most --"+maxInboundConnsFlag+
			"); past it, refused as for --"+maxInboundConnsFlag+" (reason=\"per_ip\"). Members sharing an IP "+
			"(several nodes on one host, or behind one NAT) need one each")
	fs.BoolVar(&c.join, "raft_join", false,
		"on an empty --raft_data_dir, start as a new member of an existing cluster (added first with "+
			"'dssctl member add') instead of bootstrapping one; --raft_peers must name the current members and this node. "+
			"Ignored once the data directory holds a WAL")
	fs.StringVar(&c.adminSocket, "admin_socket", "",
		"`path` of the Unix socket of the admin endpoint (membership changes, used by 'dssctl member'; eviction, "+
			"'dssctl evict'); mode 0600, no token (default <raft_data_dir>/"+adminSocketName+" on the Raft store; "+
			"on the SQL store none unless given, and it serves only /status and /evict)")
	fs.BoolVar(&c.readsViaLog, "raft_reads_via_log", false,
		"benchmarks only: every read is proposed as a Raft log entry and executed by every replica when applied, "+
			"as in a DSS without ReadIndex reads, to measure what ReadIndex reads save (answers are unchanged, only slower); "+
			"every node of the cluster must run with the same setting: a node without it applies read entries as "+
			"failed operations (no change)")
}

// resolve validates the flags and fills in peers and addr.
func (c *raftConfig) resolve() error {
	if c.nodeID == 0 {
		return errors.New("--raft_node_id must not be 0")
	}
	if c.dataDir == "" {
		return errors.New("--raft_data_dir must not be empty")
	}
	if c.tick <= 0 {
		return fmt.Errorf("--raft_tick_interval must be positive, got %v", c.tick)
	}
	if c.heartbeatTicks <= 0 || c.electionTicks <= c.heartbeatTicks {
		return fmt.Errorf("--raft_election_ticks (%d) must exceed --raft_heartbeat_ticks (%d), which must be positive",
			c.electionTicks, c.heartbeatTicks)
	}
	if c.snapshotEntries == 0 || c.catchUpEntries == 0 {
		return errors.New("--raft_snapshot_entries and --raft_catchup_entries must be positive")
	}
	if c.maxInboundConns <= 0 || c.maxInboundConnsPerIP <= 0 {
		return fmt.Errorf("--%s (%d) and --%s (%d) must be positive: they bound what anyone who reaches the raft "+
			"port can hold open, and there is no unlimited setting", maxInboundConnsFlag, c.maxInboundConns,
			maxInboundConnsPerIPFlag, c.maxInboundConnsPerIP)
	}
	if c.maxInboundConnsPerIP > c.maxInboundConns {
		return fmt.Errorf("--%s (%d) must not exceed --%s (%d)", maxInboundConnsPerIPFlag, c.maxInboundConnsPerIP,
			maxInboundConnsFlag, c.maxInboundConns)
	}
	if n := countSet(c.tlsCert, c.tlsKey, c.tlsCA); n != 0 && n != 3 {
		return errors.New("raft mutual TLS needs all of --raft_tls_cert, --raft_tls_key and --raft_tls_ca")
	}
	peers, err := parsePeers(c.peersFlag)
	if err != nil {
		return fmt.Errorf("--raft_peers: %w", err)
	}
	if c.join && len(peers) == 0 {
		return errors.New("--raft_join needs --raft_peers naming the cluster's current members and this node " +
			"(a joining node must know where to reach them)")
	}
	if c.adminSocket == "" {
		// The default must not stop a node whose data directory has a long
		// path: it then runs without the admin socket, and says so.
		def := filepath.Join(c.dataDir, adminSocketName)
		if err := checkSocketPath(def); err != nil {
			c.noAdminSocket = err.Error()
		} else {
			c.adminSocket = def
		}
	} else if err := checkSocketPath(c.adminSocket); err != nil {
		return err
	}
	if len(peers) == 0 {
		if c.addr == "" {
			c.addr = defaultRaftAddr
		}
		peers = map[uint64]string{c.nodeID: c.addr}
	}
	self, ok := peers[c.nodeID]
	if !ok {
		ids := make([]uint64, 0, len(peers))
		for id := range peers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return fmt.Errorf("--raft_peers lists IDs %v but not this node's --raft_node_id %d", ids, c.nodeID)
	}
	if c.addr == "" {
		c.addr = self
	}
	if err := c.checkPeerSecurity(len(peers)); err != nil {
		return err
	}
	c.peers = peers
	return nil
}

// insecurePlaintextFlag is the flag that lets a node with peers run raft in
// plaintext.
const insecurePlaintextFlag = "raft_insecure_plaintext_peers"

// The flags of the raft port's connection limits.
const (
	maxInboundConnsFlag      = "raft_max_inbound_conns"
	maxInboundConnsPerIPFlag = "raft_max_inbound_conns_per_ip"
)

// checkPeerSecurity refuses a node with peers (nPeers members in
// --raft_peers, this node included, or --raft_join) whose raft traffic would
// be plaintext without --raft_insecure_plaintext_peers: every peer would then
// be unauthenticated, and any process that reaches a raft port could speak as
// any member. A single node (no peers, or only itself) is not concerned.
func (c *raftConfig) checkPeerSecurity(nPeers int) error {
	withTLS := c.tlsCert != ""
	if c.insecurePlaintext && withTLS {
		return fmt.Errorf("--%s contradicts --raft_tls_cert, --raft_tls_key and --raft_tls_ca: pass one or the other",
			insecurePlaintextFlag)
	}
	if withTLS || c.insecurePlaintext || (nPeers <= 1 && !c.join) {
		return nil
	}
	why := fmt.Sprintf("--raft_peers names %d members", nPeers)
	if c.join {
		why = "--raft_join joins an existing cluster"
	}
	return fmt.Errorf("refusing to run raft with unauthenticated plaintext peers (%s): anyone who can reach a "+
		"raft port could act as any member. Pass --raft_tls_cert, --raft_tls_key and --raft_tls_ca "+
		"(create them with 'dssctl certs --dir DIR --nodes 1,2,3'; see docs/peer-security.md), or, only on a "+
		"network where every process is trusted, --%s", why, insecurePlaintextFlag)
}

// plaintextPeers reports whether peers of this node would be unauthenticated
// without the override: no TLS and no --raft_insecure_plaintext_peers (a
// single node, which resolve let start).
func (c *raftConfig) plaintextPeers() bool {
	return c.tlsCert == "" && !c.insecurePlaintext
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// parsePeers parses "1=host:port,2=host:port". Two IDs may not share an
// address: a typo there would make a node dial itself as another member.
func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	byAddr := map[string]uint64{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" || !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("%q: want id=host:port", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q: the raft ID must be a positive integer", part)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("raft ID %d given twice", id)
		}
		if other, dup := byAddr[addr]; dup {
			return nil, fmt.Errorf("raft IDs %d and %d share the address %s", other, id, addr)
		}
		peers[id], byAddr[addr] = addr, id
	}
	return peers, nil
}

// backend is the open store with what the node needs around it.
type backend struct {
	store scd.Store
	// raft is the Raft store, nil for the other backends.
	raft *raftstore.Store
	// members changes the Raft cluster's membership (the admin endpoint);
	// nil for the other backends.
	members memberAdmin
	// ping, when set, checks that the store can serve (/readyz): the SQL
	// store's database answers.
	ping func(ctx context.Context) error
	// darID is the pool's identity (docs/spec/aux.md §2); set for every
	// backend.
	darID func(ctx context.Context) (string, error)
	// reloadTLS rereads the raft peer certificates; nil without peer TLS.
	reloadTLS func() error
	// done is closed when the store stopped by itself (never, for stores
	// that cannot); err says why.
	done  <-chan struct{}
	err   func() error
	close func()
}

// openStore is the one place that selects and opens the storage backend.
func openStore(ctx context.Context, cfg *config, log *zap.Logger, reg prometheus.Registerer) (*backend, error) {
	switch cfg.store {
	case storeRaft:
		return openRaftStore(&cfg.raft, log, reg)
	case storeSQL:
		return openSQLStore(ctx, &cfg.sql, log, reg)
	case storeMem:
		log.Warn("running on the in-memory store (--memstore): nothing is replicated or persisted; for tests only")
		id := memDarID()
		return &backend{store: memstore.New(), darID: func(context.Context) (string, error) { return id, nil },
			done: nil, err: func() error { return nil }, close: func() {}}, nil
	}
	return nil, fmt.Errorf("unknown store kind %v", cfg.store)
}

func openRaftStore(rc *raftConfig, log *zap.Logger, reg prometheus.Registerer) (*backend, error) {
	var tlsCfg *grpctransport.TLSConfig
	if rc.tlsCert != "" {
		tlsCfg = &grpctransport.TLSConfig{CertFile: rc.tlsCert, KeyFile: rc.tlsKey, CAFile: rc.tlsCA}
	}
	rlog := log.Named("raft")
	var gt *grpctransport.GRPCTransport // set once, while raftstore.Open runs
	insecure := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dss_raft_insecure_plaintext_peers",
		Help: "1 when this node runs raft without peer authentication (--" + insecurePlaintextFlag + "), else 0.",
	})
	if err := reg.Register(insecure); err != nil {
		return nil, err
	}
	var transportOf atomic.Pointer[grpctransport.GRPCTransport]
	if err := registerRaftConnMetrics(reg, func() grpctransport.InboundStats {
		if t := transportOf.Load(); t != nil {
			return t.InboundStats()
		}
		return grpctransport.InboundStats{}
	}); err != nil {
		return nil, err
	}
	if rc.insecurePlaintext {
		insecure.Set(1)
		log.Warn("raft peers are NOT authenticated (--"+insecurePlaintextFlag+"): any process that can reach the "+
			"raft port can act as any member, move the leader and write entries; use --raft_tls_cert, "+
			"--raft_tls_key and --raft_tls_ca outside a fully trusted network (docs/peer-security.md)",
			zap.String("raft_addr", rc.addr))
	}
	st, err := raftstore.Open(raftstore.Config{
		Consensus: consensus.Config{
			ID:              rc.nodeID,
			Peers:           rc.peers,
			DataDir:         rc.dataDir,
			TickInterval:    rc.tick,
			ElectionTicks:   rc.electionTicks,
			HeartbeatTicks:  rc.heartbeatTicks,
			SnapshotEntries: rc.snapshotEntries,
			CatchUpEntries:  rc.catchUpEntries,
			Join:            rc.join,
			Logger:          rlog,
		},
		NewTransport: func(h transport.Handler) (transport.Transport, error) {
			t, err := grpctransport.NewGRPC(grpctransport.GRPCConfig{
				ID: rc.nodeID, ListenAddr: rc.addr, Handler: h, TLS: tlsCfg, Logger: rlog.Named("transport"),
				MaxInboundConns: rc.maxInboundConns, MaxInboundConnsPerIP: rc.maxInboundConnsPerIP,
			})
			if err != nil {
				return nil, err
			}
			transportOf.Store(t)
			rlog.Info("raft transport listening", zap.String("addr", t.Addr()), zap.Bool("mtls", tlsCfg != nil))
			gt = t
			return t, nil
		},
		Registerer:  reg,
		ReadsViaLog: rc.readsViaLog,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the Raft store in %s: %w", rc.dataDir, err)
	}
	if err := registerRaftSafetyMetrics(reg, st.Node()); err != nil {
		st.Stop()
		return nil, err
	}
	peers := make([]uint64, 0, len(rc.peers))
	for id := range rc.peers {
		peers = append(peers, id)
	}
	slices.Sort(peers)
	log.Info("raft store open", zap.Uint64("node_id", rc.nodeID), zap.Uint64s("peers", peers),
		zap.Bool("join", rc.join), zap.String("data_dir", rc.dataDir))
	if rc.readsViaLog {
		log.Warn("--raft_reads_via_log: every read is proposed through the Raft log and executed by every replica " +
			"(benchmarks only; every node of the cluster must run with it)")
	}
	be := &backend{store: st, raft: st, members: st.Node(), darID: raftDarID(st.Node()),
		done: st.Done(), err: st.Err, close: st.Stop}
	if tlsCfg != nil && gt != nil {
		be.reloadTLS = gt.ReloadTLS
	}
	return be, nil
}
