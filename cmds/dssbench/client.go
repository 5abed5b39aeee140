package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftdss/dss/pkg/auth"
)

// client sends the bench's requests: it rotates over the base URLs (so a
// cluster's nodes share the load as behind a round-robin balancer) and signs
// each request with the token of the simulated USS that sends it.
type client struct {
	urls    []string
	next    atomic.Uint64
	tokens  []string // tokens[i] is USS i's bearer token
	http    *http.Client
	timeout time.Duration
}

// ussName is the identity (token sub) of simulated USS i.
func ussName(i int) string { return fmt.Sprintf("dssbench-uss%d", i) }

// newClient mints one strategic-coordination token per simulated USS. The
// transport keeps enough idle connections for every worker: with Go's
// default of 2 per host, 64 workers would open and close a connection per
// request and measure TCP set-up (and exhaust ephemeral ports) instead of
// the DSS.
func newClient(urls []string, key *rsa.PrivateKey, audience string, usses int, timeout time.Duration) (*client, error) {
	if len(urls) == 0 {
		return nil, errors.New("no base URL")
	}
	c := &client{timeout: timeout}
	for _, u := range urls {
		c.urls = append(c.urls, strings.TrimRight(u, "/"))
	}
	for i := range usses {
		tok, err := auth.MintToken(key, auth.TokenOptions{
			Subject:  ussName(i),
			Audience: audience,
			Scopes:   []string{auth.ScopeStrategicCoordination},
		})
		if err != nil {
			return nil, err
		}
		c.tokens = append(c.tokens, tok)
	}
	tr := &http.Transport{
		Proxy:               nil, // loopback targets only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

func (c *client) close() { c.http.CloseIdleConnections() }

// response is one answer: status 0 means no answer (err says why).
type response struct {
	status int
	body   []byte
	err    error
	end    time.Time
}

// do sends one request as USS uss with an optional JSON body. It never
// returns an error for an HTTP status: the caller classifies statuses.
func (c *client) do(ctx context.Context, uss int, method, path string, body any) response {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{err: err, end: time.Now()}
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	base := c.urls[int(c.next.Add(1)%uint64(len(c.urls)))]
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return response{err: err, end: time.Now()}
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[uss])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{err: err, end: time.Now()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return response{err: err, end: time.Now()}
	}
	return response{status: resp.StatusCode, body: b, end: time.Now()}
}

// errText summarises a failed response for the report.
func (r response) errText() string {
	if r.err != nil {
		return r.err.Error()
	}
	if r.status >= 200 && r.status < 300 || r.status == 409 {
		return ""
	}
	b := r.body
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(b))
}
