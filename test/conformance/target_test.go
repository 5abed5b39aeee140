package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/raftdss/dss/pkg/auth"
	poolserver "github.com/raftdss/dss/pkg/pool/server"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/server"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
)

// Environment variables selecting the target DSS (README.md).
const (
	// envBaseURLs: comma-separated base URLs (e.g. "http://n1:8080,http://n2:8080");
	// requests rotate across them round-robin. Empty: an in-process server.
	envBaseURLs = "DSS_BASE_URLS"
	// envTokenKey: path to the RSA private key (PEM) whose public key the
	// target accepts. Required with DSS_BASE_URLS.
	envTokenKey = "DSS_TOKEN_KEY"
	// envAudience: the aud claim of minted tokens (default "localhost").
	envAudience = "DSS_TOKEN_AUDIENCE"
	// envBackend selects the in-process backend (default "memstore").
	envBackend = "DSS_INPROCESS_BACKEND"
)

// target is the DSS under test.
type target struct {
	urls     []string
	key      *rsa.PrivateKey // signs every token the tests send
	audience string
	next     atomic.Uint64
	client   *http.Client
}

// tgt is set up once per test binary by TestMain.
var tgt *target

// baseURL returns the next base URL, round-robin, so that on a cluster
// consecutive requests of one test land on different nodes.
func (t *target) baseURL() string {
	n := t.next.Add(1)
	return t.urls[int(n%uint64(len(t.urls)))]
}

func TestMain(m *testing.M) {
	cleanup, err := setUpTarget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// setUpTarget builds tgt from the environment, or starts an in-process
// server. The returned function releases what it started.
func setUpTarget() (func(), error) {
	aud := os.Getenv(envAudience)
	if aud == "" {
		aud = "localhost"
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if raw := strings.TrimSpace(os.Getenv(envBaseURLs)); raw != "" {
		var urls []string
		for _, u := range strings.Split(raw, ",") {
			if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
				urls = append(urls, u)
			}
		}
		keyPath := os.Getenv(envTokenKey)
		if keyPath == "" {
			return nil, fmt.Errorf("%s is set but %s (RSA private key PEM) is not", envBaseURLs, envTokenKey)
		}
		key, err := auth.LoadPrivateKey(keyPath)
		if err != nil {
			return nil, err
		}
		tgt = &target{urls: urls, key: key, audience: aud, client: client}
		return func() {}, nil
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := auth.New(ctx, auth.Config{
		PublicKeys:        []*rsa.PublicKey{&key.PublicKey},
		AcceptedAudiences: []string{aud},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	// New in-process backends plug in here.
	var cfg server.Config
	switch b := os.Getenv(envBackend); b {
	case "", "memstore":
		// With the quotas core-service enforces by default (quota_test.go).
		cfg = server.Config{Store: memstore.New(), Authenticator: a,
			Quotas: scd.Quotas{SubscriptionsPerCell: defaultQuotaSubscriptions, EntitiesPerCell: defaultQuotaEntities}}
	default:
		cancel()
		a.Close()
		return nil, fmt.Errorf("unknown %s %q (want memstore)", envBackend, b)
	}
	// The pool's /aux/v1 routes, as core-service serves them.
	darID := uuid.NewString()
	aux, err := poolserver.Routes(poolserver.Config{Version: "conformance", InstanceID: "in-process",
		PublicEndpoint: "https://in-process.example.com",
		DarID:          func(context.Context) (string, error) { return darID, nil }})
	if err != nil {
		cancel()
		a.Close()
		return nil, err
	}
	cfg.ExtraRoutes = aux
	h, err := server.NewHandler(cfg)
	if err != nil {
		cancel()
		a.Close()
		return nil, err
	}
	srv := httptest.NewServer(h)
	tgt = &target{urls: []string{srv.URL}, key: key, audience: aud, client: srv.Client()}
	return func() {
		srv.Close()
		a.Close()
		cancel()
	}, nil
}
