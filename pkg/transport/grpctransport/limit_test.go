package grpctransport

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const limitWait = 10 * time.Second

// acceptor runs l's Accept loop, handing out what it accepts, until l is
// closed; Cleanup closes l and waits for the loop.
type acceptor struct {
	l     *limitListener
	conns chan net.Conn
	done  chan error
}

func startAcceptor(t *testing.T, maxTotal, maxPerIP int, log *zap.Logger) *acceptor {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptor{l: newLimitListener(inner, maxTotal, maxPerIP, log), conns: make(chan net.Conn, 64), done: make(chan error, 1)}
	go func() {
		for {
			c, err := a.l.Accept()
			if err != nil {
				a.done <- err
				return
			}
			a.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = a.l.Close()
		select {
		case err := <-a.done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(limitWait):
			t.Error("Accept did not return after Close")
		}
		close(a.conns)
		for c := range a.conns {
			_ = c.Close()
		}
	})
	return a
}

// dial connects from local ("" for any loopback source).
func (a *acceptor) dial(t *testing.T, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: limitWait}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", a.l.Addr().String())
	if err != nil {
		t.Fatalf("dial from %q: %v", local, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// accepted returns the next connection Accept handed out.
func (a *acceptor) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-a.conns:
		return c
	case <-time.After(limitWait):
		t.Fatal("no connection accepted")
		return nil
	}
}

// dialRefused connects from local and expects the server to reset the
// connection (which may already fail the dial).
func (a *acceptor) dialRefused(t *testing.T, local string) {
	t.Helper()
	d := net.Dialer{Timeout: limitWait}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", a.l.Addr().String())
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(limitWait))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection over the limit was not reset: %v", err)
	}
}

func (a *acceptor) waitStats(t *testing.T, want InboundStats) {
	t.Helper()
	deadline := time.Now().Add(limitWait)
	for a.l.stats() != want {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", a.l.stats(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func (a *acceptor) noneAccepted(t *testing.T) {
	t.Helper()
	select {
	case c := <-a.conns:
		t.Fatalf("accepted %v over the limit", c.RemoteAddr())
	default:
	}
}

// TestLimitListenerTotal: past maxTotal a connection is closed on arrival
// and counted; a closed connection frees its slot exactly once.
func TestLimitListenerTotal(t *testing.T) {
	a := startAcceptor(t, 2, 0, zap.NewNop())
	a.dial(t, "")
	a.dial(t, "")
	c1, c2 := a.accepted(t), a.accepted(t)
	a.waitStats(t, InboundStats{Open: 2})

	a.dialRefused(t, "")
	a.waitStats(t, InboundStats{Open: 2, RefusedTotal: 1})
	a.noneAccepted(t)

	// Closing twice releases once.
	for range 2 {
		if err := c1.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Fatal(err)
		}
	}
	a.waitStats(t, InboundStats{Open: 1, RefusedTotal: 1})
	a.dial(t, "")
	c3 := a.accepted(t)
	a.waitStats(t, InboundStats{Open: 2, RefusedTotal: 1})
	_ = c2.Close()
	_ = c3.Close()
	a.waitStats(t, InboundStats{Open: 0, RefusedTotal: 1})
	if len(a.l.perIP) != 0 {
		t.Fatalf("per-IP counts left after every connection closed: %v", a.l.perIP)
	}
}

// TestLimitListenerPerIP: past maxPerIP one source address is refused while
// another is still accepted. Linux routes all of 127.0.0.0/8 to loopback,
// so 127.0.0.2 is a second source.
func TestLimitListenerPerIP(t *testing.T) {
	a := startAcceptor(t, 10, 2, zap.NewNop())
	second := "127.0.0.2"
	probe, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(second)}, Timeout: limitWait}).Dial("tcp", a.l.Addr().String())
	if err != nil {
		t.Skipf("cannot dial from %s (%v): per-IP limits need a second loopback source (Linux has 127.0.0.0/8)", second, err)
	}
	_ = probe.Close()
	// The probe was accepted; wait until its slot is free again.
	_ = a.accepted(t).Close()
	a.waitStats(t, InboundStats{})

	a.dial(t, "127.0.0.1")
	a.dial(t, "127.0.0.1")
	a.accepted(t)
	a.accepted(t)
	a.dialRefused(t, "127.0.0.1")
	a.waitStats(t, InboundStats{Open: 2, RefusedPerIP: 1})

	a.dial(t, second)
	if c := a.accepted(t); remoteIP(c.RemoteAddr()) != second {
		t.Fatalf("accepted %v, want the connection from %s", c.RemoteAddr(), second)
	}
	a.waitStats(t, InboundStats{Open: 3, RefusedPerIP: 1})
	a.noneAccepted(t)
}

// TestLimitListenerRefusalLog: a refusal is counted every time but logged at
// most once per IP and interval, and the rate limiter's memory is bounded.
func TestLimitListenerRefusalLog(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(inner, 1, 1, zap.New(core))
	defer l.Close()
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	for range 5 {
		l.refused("192.0.2.1", RefusedPerIP)
	}
	l.refused("192.0.2.2", RefusedTotal)
	if got := logs.Len(); got != 2 {
		t.Fatalf("%d log lines for 6 refusals from 2 IPs, want 2", got)
	}
	now = now.Add(refusedLogInterval)
	l.refused("192.0.2.1", RefusedPerIP)
	if got := logs.Len(); got != 3 {
		t.Fatalf("%d log lines after the interval, want 3", got)
	}
	if st := l.stats(); st.RefusedPerIP != 6 || st.RefusedTotal != 1 {
		t.Fatalf("stats %+v, want 6 per-IP and 1 total refusals", st)
	}

	// A flood from many addresses within one interval: the limiter keeps at
	// most maxRefusedLogIPs addresses (plus the shared entry of the rest).
	before := logs.Len()
	for i := range 3 * maxRefusedLogIPs {
		l.refused(fmt.Sprintf("2001:db8::%x", i), RefusedTotal)
	}
	if n := len(l.logged); n > maxRefusedLogIPs+1 {
		t.Fatalf("rate limiter holds %d entries, want at most %d", n, maxRefusedLogIPs+1)
	}
	if got := logs.Len() - before; got > maxRefusedLogIPs+1 {
		t.Fatalf("%d log lines for a flood, want at most %d", got, maxRefusedLogIPs+1)
	}
	// Once the interval has passed, old entries make room again.
	now = now.Add(refusedLogInterval)
	before = logs.Len()
	l.refused("198.51.100.7", RefusedTotal)
	if logs.Len() != before+1 || len(l.logged) > maxRefusedLogIPs+1 {
		t.Fatalf("after the interval: %d new lines, %d entries", logs.Len()-before, len(l.logged))
	}
}
