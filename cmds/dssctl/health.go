package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// runHealth implements `dssctl health`: one GET of a node's health endpoint,
// exit code 0 for a 200 answer and 1 otherwise. It exists for container
// health checks in images without a shell or curl (the Dockerfile's
// HEALTHCHECK).
func runHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://127.0.0.1:8080/readyz", "http(s) URL to GET, e.g. a node's /readyz or /healthy")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on the whole request")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: dssctl health [--url URL] [--timeout 5s]

GETs URL once: exit code 0 when it answers 200, 1 for any other status or no answer (the
status line or the error is printed). For container health checks.

flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := usageErrorf(fs, stderr, "health")
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("--url %q is not an http(s) URL", *target)
	}
	if *timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(stderr, "health", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(stderr, "health", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fail(stderr, "health", fmt.Errorf("%s: %s %s", u, resp.Status, body))
	}
	fmt.Fprintf(stdout, "%s: %s\n", u, resp.Status)
	return 0
}
