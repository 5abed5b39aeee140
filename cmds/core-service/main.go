// Command core-service runs one DSS node: the ASTM F3548-21 strategic
// coordination API of spec §1 over HTTP. All wiring lives in run (run.go) so
// that tests can start a real node in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
