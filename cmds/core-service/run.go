package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/raftdss/dss/pkg/auth"
	"github.com/raftdss/dss/pkg/scd/server"
)

// Exit codes of run.
const (
	exitOK      = 0
	exitFailure = 1 // the node failed while starting or running
	exitUsage   = 2 // bad flags or a configuration the node refuses
)

// shutdownTimeout bounds the graceful shutdown after SIGINT/SIGTERM: requests
// in flight get this long to finish (more than the default handler timeout)
// before their connections are closed.
const shutdownTimeout = 15 * time.Second

// devSubject is the USS identity of the token printed by --dev.
const devSubject = "uss1"

// config is everything the flags decide.
type config struct {
	addr              string
	tlsCert, tlsKey   string
	auth              auth.Config
	allowHTTPBaseURLs bool
	quotas            quotaConfig
	evict             evictConfig
	serverTimeout     time.Duration
	dev               bool
	devDir            string
	logLevel          zapcore.Level
	pprofAddr         string

	store storeKind
	sql   sqlConfig
	raft  raftConfig
	pool  poolConfig
}

// parseFlags builds the config from args. Flags are registered on a fresh
// FlagSet (never in init) so tests can run the binary's logic repeatedly.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("core-service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", ":8080", "address the HTTP API listens on (host:port)")
	fs.StringVar(&cfg.tlsCert, "tls_cert", "",
		"PEM certificate (chain) the API serves HTTPS with, for deployments without a TLS-terminating proxy; "+
			"reread on SIGHUP. Needs --tls_key")
	fs.StringVar(&cfg.tlsKey, "tls_key", "", "PEM private key of --tls_cert")
	cfg.auth.RegisterFlags(fs)
	fs.BoolVar(&cfg.allowHTTPBaseURLs, "allow_http_base_urls", false,
		"accept http:// (not only https://) uss_base_url values; for testing only (spec §3.5)")
	cfg.quotas.registerFlags(fs)
	cfg.evict.registerFlags(fs)
	cfg.pool.registerFlags(fs)
	fs.DurationVar(&cfg.serverTimeout, "server_timeout", server.DefaultHandlerTimeout,
		"longest time one request may take before it is answered 503")
	fs.BoolVar(&cfg.dev, "dev", false,
		"local development: accept tokens signed by a key in --dev_dir (created if absent), "+
			"audience \"localhost\" unless --accepted_jwt_audiences is given, allow http base URLs, "+
			"and print a ready-to-use token")
	fs.StringVar(&cfg.devDir, "dev_dir", "./.dss-dev", "directory of the --dev signing key")
	fs.TextVar(&cfg.logLevel, "log_level", zapcore.InfoLevel, "log level: debug, info, warn or error")
	fs.StringVar(&cfg.pprofAddr, "pprof_addr", "",
		"debug only: serve net/http/pprof on this address (host:port, e.g. 127.0.0.1:6060); "+
			"off when empty. Never expose it: it needs no token")
	var useRaft, useMem bool
	fs.BoolVar(&useRaft, "raftstore", false,
		"use the Raft-replicated store (the default unless --datastore_url is given; an error together with it)")
	fs.BoolVar(&useMem, "memstore", false,
		"use a non-durable, single-node in-memory store; for tests only: all data is lost on exit")
	cfg.sql.registerFlags(fs)
	cfg.raft.registerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := checkAPITLSFlags(cfg.tlsCert, cfg.tlsKey); err != nil {
		return nil, err
	}
	if cfg.serverTimeout <= 0 {
		return nil, fmt.Errorf("--server_timeout must be positive, got %v", cfg.serverTimeout)
	}
	if err := cfg.evict.validate(); err != nil {
		return nil, err
	}
	kind, err := selectStore(useRaft, useMem, cfg.sql.url != "")
	if err != nil {
		return nil, err
	}
	cfg.store = kind
	if err := cfg.sql.validate(fs, kind == storeSQL, cfg.serverTimeout); err != nil {
		return nil, err
	}
	if kind == storeRaft {
		if err := cfg.raft.resolve(); err != nil {
			return nil, err
		}
	} else {
		// The Raft-only flags that change what a node does must not be
		// silently ignored on another store.
		adminSocketSet := false
		fs.Visit(func(f *flag.Flag) { adminSocketSet = adminSocketSet || f.Name == "admin_socket" })
		if cfg.raft.join {
			return nil, fmt.Errorf("--raft_join is for the Raft store; this node runs the %v store", kind)
		}
		switch {
		case adminSocketSet && kind != storeSQL:
			return nil, fmt.Errorf("--admin_socket serves the Raft and SQL stores; this node runs the %v store", kind)
		case adminSocketSet && cfg.raft.adminSocket == "":
			return nil, errors.New("--admin_socket must not be empty")
		case adminSocketSet:
			if err := checkSocketPath(cfg.raft.adminSocket); err != nil {
				return nil, err
			}
		}
	}
	return cfg, nil
}

// run is the whole binary: it parses args, starts the node and serves until
// ctx ends (SIGINT/SIGTERM in main), then shuts down gracefully. It returns
// the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "core-service: %v\n", err)
		return exitUsage
	}
	log := newLogger(stderr, cfg.logLevel)
	defer func() { _ = log.Sync() }()

	var devKey *rsa.PrivateKey
	if cfg.dev {
		if devKey, err = applyDevMode(cfg); err != nil {
			fmt.Fprintf(stderr, "core-service: --dev: %v\n", err)
			return exitFailure
		}
	}
	if err := checkAuthConfig(&cfg.auth); err != nil {
		fmt.Fprintf(stderr, "core-service: %v\n", err)
		return exitUsage
	}
	if err := serve(ctx, cfg, devKey, log, stdout); err != nil {
		log.Error("core-service stopped with an error", zap.Error(err))
		fmt.Fprintf(stderr, "core-service: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// newLogger writes JSON lines to w; zapcore.Lock serialises writes from
// concurrent requests.
func newLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc),
		zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core)
}

// applyDevMode loads or creates the dev signing key and configures the node
// to accept tokens signed by it.
func applyDevMode(cfg *config) (*rsa.PrivateKey, error) {
	key, err := auth.LoadOrCreateDevKey(cfg.devDir)
	if err != nil {
		return nil, err
	}
	cfg.auth.PublicKeys = append(cfg.auth.PublicKeys, &key.PublicKey)
	if len(cfg.auth.AcceptedAudiences) == 0 {
		cfg.auth.AcceptedAudiences = []string{auth.DefaultDevAudience}
	}
	// Local USS test servers rarely have TLS certificates.
	cfg.allowHTTPBaseURLs = true
	return key, nil
}

// checkAuthConfig refuses to start a node that could authenticate nobody,
// with a message that says what to pass (a DSS without keys is useless, and
// one that accepted any token would be dangerous).
func checkAuthConfig(c *auth.Config) error {
	if len(c.PublicKeyFiles) == 0 && len(c.PublicKeys) == 0 && c.JWKSEndpoint == "" {
		return errors.New("no access-token verification key configured: pass --public_key_files " +
			"or --jwks_endpoint (with --accepted_jwt_audiences), or --dev for local use")
	}
	if len(c.AcceptedAudiences) == 0 {
		return errors.New("no accepted token audience configured: pass --accepted_jwt_audiences " +
			"(normally this DSS's host name)")
	}
	return nil
}

// serve runs the node until ctx ends or a fatal condition (expired JWKS keys,
// a failed listener, a store that stopped on its own) stops it.
func serve(ctx context.Context, cfg *config, devKey *rsa.PrivateKey, log *zap.Logger, stdout io.Writer) error {
	// A node whose JWKS keys expired must stop (spec §2); OnKeysExpired runs
	// on the refresher goroutine, so it only cancels.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cfg.auth.Logger = log.Named("auth")
	cfg.auth.OnKeysExpired = func(err error) {
		stop(fmt.Errorf("access-token keys expired: %w", err))
	}
	authn, err := auth.New(ctx, cfg.auth)
	if err != nil {
		return err
	}
	defer authn.Close()

	var apiCert *apiKeyPair
	if cfg.tlsCert != "" {
		if apiCert, err = loadAPIKeyPair(cfg.tlsCert, cfg.tlsKey); err != nil {
			return err
		}
	}
	// Listen before opening the store: a busy port then fails the start
	// without touching the data directory.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close() // for the early returns; Serve closes it otherwise
	if cfg.pprofAddr != "" {
		stopPprof, err := startPprof(cfg.pprofAddr, log.Named("pprof"))
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	// The admin socket, too, is created before the store opens: a node
	// already serving on it fails the start here.
	var adminLn net.Listener
	if cfg.store == storeRaft && cfg.raft.noAdminSocket != "" {
		log.Warn("no admin socket: membership changes (dssctl member) need --admin_socket on a shorter path",
			zap.String("reason", cfg.raft.noAdminSocket))
	}
	// On the SQL store the flag's value is the socket (none by default).
	if cfg.raft.adminSocket != "" && (cfg.store == storeRaft || cfg.store == storeSQL) {
		if adminLn, err = listenAdmin(cfg.raft.adminSocket); err != nil {
			return fmt.Errorf("admin socket (--admin_socket): %w", err)
		}
		defer adminLn.Close() // for the early returns; Serve closes it (and removes the file) otherwise
	}

	metrics := prometheus.NewRegistry()
	be, err := openStore(ctx, cfg, log, metrics)
	if err != nil {
		return err
	}
	// The store stops when serve returns, after the HTTP servers' graceful
	// shutdown below: requests in flight finish against a live store.
	defer be.close()

	evict, err := newBackendEvictor(be, cfg.evict.after, log.Named("evict"), metrics)
	if err != nil {
		return err
	}
	if cfg.evict.interval > 0 {
		// Stopped before the store closes (defers run last-in first-out).
		stopEvict := evict.start(cfg.evict.interval)
		defer stopEvict()
		log.Info("evicting expired entities on a schedule", zap.Duration("interval", cfg.evict.interval),
			zap.Duration("after", cfg.evict.after))
	}

	auxRoutes, err := poolRoutes(cfg, be)
	if err != nil {
		return err
	}
	api, err := server.NewHandler(server.Config{
		ExtraRoutes:       auxRoutes,
		Store:             be.store,
		Authenticator:     authn,
		AllowHTTPBaseURLs: cfg.allowHTTPBaseURLs,
		Quotas:            cfg.quotas.quotas(),
		HandlerTimeout:    cfg.serverTimeout,
		Logger:            log.Named("http"),
		Registerer:        metrics,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           newMux(api, be, cfg.store, authn, metrics, log.Named("readyz")),
		ReadHeaderTimeout: 10 * time.Second,
		// Reading a 4 MiB body and then running the handler must fit; the
		// write deadline counts from the end of the headers, so it covers
		// the handler timeout plus time to send the answer.
		ReadTimeout:  cfg.serverTimeout + 5*time.Second,
		WriteTimeout: cfg.serverTimeout + 5*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     zap.NewStdLog(log.Named("http_server")),
	}
	var reloaders []reloader
	scheme := "http://"
	if apiCert != nil {
		srv.TLSConfig = apiCert.tlsConfig()
		scheme = "https://"
		reloaders = append(reloaders, reloader{target: "api", reload: apiCert.reload})
	}
	if be.reloadTLS != nil {
		reloaders = append(reloaders, reloader{target: "raft_peers", reload: be.reloadTLS})
	}
	if len(reloaders) > 0 {
		stopReload, err := reloadOnHangup(reloaders, metrics, log.Named("tls"))
		if err != nil {
			return err
		}
		defer stopReload()
	}
	// Each server's Serve result, wrapped; Serve only returns early on a
	// listener failure.
	served := make(chan error, 2)
	servers := []*http.Server{srv}
	go func() {
		if apiCert != nil {
			served <- fmt.Errorf("https server: %w", srv.ServeTLS(ln, "", ""))
			return
		}
		served <- fmt.Errorf("http server: %w", srv.Serve(ln))
	}()
	if adminLn != nil {
		adminMux := http.NewServeMux()
		if cfg.store == storeRaft {
			adminMux.Handle("/", withSnapshotEndpoint(newAdminMux(newAdminHandler(be.members, cfg.raft.peers, memberChangeTimeout, log.Named("admin")),
				statusHandler(be, cfg.store), cfg.raft.plaintextPeers()), backupNode(be), log.Named("admin")))
		} else {
			adminMux.Handle("GET /status", statusHandler(be, cfg.store))
		}
		adminMux.Handle("/evict", evictHandler(evict, evictAdminTimeout))
		admin := &http.Server{
			Handler:           adminMux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      memberChangeTimeout + 5*time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          zap.NewStdLog(log.Named("admin_server")),
		}
		servers = append(servers, admin)
		go func() { served <- fmt.Errorf("admin server: %w", admin.Serve(adminLn)) }()
		log.Info("serving the admin endpoint (membership changes on the Raft store, eviction)",
			zap.String("socket", cfg.raft.adminSocket))
	}
	running := len(servers)
	baseURL := scheme + dialableAddr(ln.Addr())
	log.Info("serving the DSS API", zap.String("addr", ln.Addr().String()))
	fmt.Fprintf(stdout, "core-service listening on %s\n", baseURL)
	if devKey != nil {
		if err := printDevHelp(stdout, devKey, cfg, baseURL); err != nil {
			stop(err)
		}
	}

	select {
	case err := <-served:
		running--
		stop(err)
	case <-be.done:
		// The store stopped by itself: corrupt data, an entry this binary
		// cannot decode, a failed disk write. Serving on would only answer
		// 503; exit non-zero so a supervisor notices.
		stop(fmt.Errorf("the store stopped: %w", be.err()))
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.NamedError("reason", context.Cause(ctx)))
	// Both servers finish their requests in flight (a membership change
	// included) within one deadline.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("graceful shutdown incomplete; closing connections", zap.Error(err))
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	for ; running > 0; running-- {
		<-served // http.ErrServerClosed once Shutdown/Close returned
	}
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// dialableAddr turns a listener address into one a client can dial: an
// unspecified host (":8080", "[::]:8080") becomes localhost.
func dialableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// printDevHelp prints a token for the test USS and a curl example using it.
func printDevHelp(w io.Writer, key *rsa.PrivateKey, cfg *config, baseURL string) error {
	ttl := auth.DefaultDevTokenTTL
	token, err := auth.MintToken(key, auth.TokenOptions{
		Subject:  devSubject,
		Audience: cfg.auth.AcceptedAudiences[0],
		Scopes: []string{auth.ScopeStrategicCoordination, auth.ScopeConstraintManagement,
			auth.ScopeConstraintProcessing, auth.ScopeConformanceMonitoringSA, auth.ScopeAvailabilityArbitration},
		TTL: ttl,
	})
	if err != nil {
		return fmt.Errorf("minting the dev token: %w", err)
	}
	_, err = fmt.Fprintf(w, `
Development mode: tokens signed by %s are accepted (audience %q).
Token for USS %q with all five scopes, valid %v:

export DSS_TOKEN=%s

Example:
curl -s -X POST %s/dss/v1/operational_intent_references/query \
  -H "Authorization: Bearer $DSS_TOKEN" -H 'Content-Type: application/json' \
  -d '{"area_of_interest": {"volume": {"outline_circle": {"center": {"lat": 46.97, "lng": 7.47}, "radius": {"value": 300, "units": "M"}}}}}'

`, filepath.Join(cfg.devDir, auth.DevKeyFile), cfg.auth.AcceptedAudiences[0], devSubject, ttl, token, baseURL)
	return err
}
