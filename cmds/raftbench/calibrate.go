package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// calibrateFsync appends 4 KiB blocks to a file in dir, fdatasyncing after
// each, for d: the disk's durable-append rate and latency, the floor that
// every replicated write pays once (or, with group commit, once per batch).
// It uses etcd's fileutil.Fdatasync, the call the WAL itself makes.
func calibrateFsync(dir string, d time.Duration) (phase, error) {
	p := filepath.Join(dir, "raftbench-fsync-calibration")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return phase{}, fmt.Errorf("fsync calibration: %w", err)
	}
	defer os.Remove(p)
	defer f.Close()
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	var lat []time.Duration
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		t := time.Now()
		if _, err := f.Write(block); err != nil {
			return phase{}, fmt.Errorf("fsync calibration write: %w", err)
		}
		if err := fileutil.Fdatasync(f); err != nil {
			return phase{}, fmt.Errorf("fsync calibration fdatasync: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	return newPhase("fdatasync 4KiB append", 1, lat, 0, time.Since(start)), nil
}

// calibrateRPC measures a unary gRPC round trip between two in-process
// endpoints on loopback (the standard health service, so no generated code
// of our own): the network floor of one replication round.
func calibrateRPC(ctx context.Context, d time.Duration) (phase, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return phase{}, fmt.Errorf("rpc calibration: %w", err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	// Stop closes the listener, so Serve returns and the goroutine ends.
	defer func() {
		srv.Stop()
		if err := <-serveErr; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			fmt.Fprintln(os.Stderr, "raftbench: rpc calibration server:", err)
		}
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return phase{}, fmt.Errorf("rpc calibration dial: %w", err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	call := func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := client.Check(cctx, &healthpb.HealthCheckRequest{})
		return err
	}
	// The first call connects; warm up so the phase measures round trips
	// only.
	for range 100 {
		if err := call(); err != nil {
			return phase{}, fmt.Errorf("rpc calibration: %w", err)
		}
	}
	var lat []time.Duration
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		t := time.Now()
		if err := call(); err != nil {
			return phase{}, fmt.Errorf("rpc calibration: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	return newPhase("gRPC loopback round trip", 1, lat, 0, time.Since(start)), nil
}
