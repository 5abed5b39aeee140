package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

// Calibration measures the two hardware floors the DSS's numbers are
// judged against, on this machine and in this run: a durable append (what
// every replicated or SQL commit pays at least once per batch) and a
// loopback HTTP round trip (what every request pays).

// calibrateFsync appends 4 KiB blocks to a file in dir with an fdatasync
// after each, for d. It uses etcd's fileutil.Fdatasync, the call the Raft
// WAL makes.
func calibrateFsync(dir string, d time.Duration) (record, error) {
	f, err := os.CreateTemp(dir, "dssbench-fsync-*")
	if err != nil {
		return record{}, fmt.Errorf("fsync calibration: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	var h histogram
	start := time.Now()
	for time.Since(start) < d {
		t := time.Now()
		if _, err := f.Write(block); err != nil {
			return record{}, fmt.Errorf("fsync calibration: %w", err)
		}
		if err := fileutil.Fdatasync(f); err != nil {
			return record{}, fmt.Errorf("fsync calibration: %w", err)
		}
		h.record(time.Since(t))
	}
	return calibrationRecord("fdatasync_4k", &h, time.Since(start), dir), nil
}

// calibrateHTTP measures sequential GETs of a 2-byte body from a tiny
// in-process HTTP server on 127.0.0.1 over one kept-alive connection, for d.
func calibrateHTTP(ctx context.Context, d time.Duration) (record, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return record{}, fmt.Errorf("http calibration: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// Close stops the listener and every connection, so Serve returns at
	// once and the goroutine above ends before this function does.
	defer func() {
		_ = srv.Close()
		<-served
	}()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	get := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	// Warm up: the first request dials.
	for range 50 {
		if err := get(); err != nil {
			return record{}, fmt.Errorf("http calibration: %w", err)
		}
	}
	var h histogram
	start := time.Now()
	for time.Since(start) < d {
		t := time.Now()
		if err := get(); err != nil {
			return record{}, fmt.Errorf("http calibration: %w", err)
		}
		h.record(time.Since(t))
	}
	return calibrationRecord("http_loopback_rtt", &h, time.Since(start), ""), nil
}

func calibrationRecord(name string, h *histogram, elapsed time.Duration, dir string) record {
	return record{
		Kind: kindCalibration, Name: name, Dir: dir, DurationS: elapsed.Seconds(),
		OK: h.n, OKPerS: float64(h.n) / elapsed.Seconds(),
		P50ms: ms(h.quantile(.5)), P95ms: ms(h.quantile(.95)), P99ms: ms(h.quantile(.99)),
		MaxMs: ms(h.max), MeanMs: ms(h.mean()),
	}
}
