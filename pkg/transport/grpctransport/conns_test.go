package grpctransport_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/raftdss/dss/pkg/transport/grpctransport"
	"github.com/raftdss/dss/pkg/transport/internal/transporttest"
)

// waitInbound polls tr's inbound stats until ok.
func waitInbound(t *testing.T, tr *grpctransport.GRPCTransport, what string, ok func(grpctransport.InboundStats) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !ok(tr.InboundStats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: inbound stats %+v", what, tr.InboundStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedWithin reads from c until the server closes it, and fails if that
// takes longer than limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	// The server may write first (its HTTP/2 SETTINGS): read to the end.
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v (read: %v)", limit, err)
	}
	return time.Since(start)
}

// dialRefused connects to addr from local and expects the connection to be
// reset on arrival (which may already fail the dial).
func dialRefused(t *testing.T, addr, local string) {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: wait}).Dial("tcp", addr)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection from %s over the limit was not reset: %v", local, err)
	}
}

// TestSilentConnectionIsClosed: a connection that never completes the TLS
// handshake (TLS) or never sends the HTTP/2 preface (plaintext) is closed
// after HandshakeTimeout and gives its slot back.
func TestSilentConnectionIsClosed(t *testing.T) {
	const timeout = 200 * time.Millisecond
	pki := newPKI(t)
	for name, tlsCfg := range map[string]*grpctransport.TLSConfig{
		"plaintext": nil,
		"tls":       pki.issue("n1", grpctransport.NodeName(1)),
	} {
		t.Run(name, func(t *testing.T) {
			tr := node(t, 1, transporttest.NewRecorder(), func(c *grpctransport.GRPCConfig) {
				c.TLS = tlsCfg
				c.HandshakeTimeout = timeout
			})
			c, err := net.Dial("tcp", tr.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			waitInbound(t, tr, "silent connection accepted", func(s grpctransport.InboundStats) bool { return s.Open == 1 })
			// Far below the default (10 s) and gRPC's own (120 s); the slack
			// is for a loaded test machine.
			if took := closedWithin(t, c, 5*time.Second); took < timeout/2 {
				t.Fatalf("closed after %v, before the %v timeout", took, timeout)
			}
			waitInbound(t, tr, "slot released", func(s grpctransport.InboundStats) bool { return s.Open == 0 })
		})
	}
}

// TestIdleConnectionIsClosed: an established connection that opens no
// stream is closed after IdleTimeout, while a peer's connection, which
// holds its stream, stays open across several idle timeouts.
func TestIdleConnectionIsClosed(t *testing.T) {
	const idle = 200 * time.Millisecond
	rec := transporttest.NewRecorder()
	tr := node(t, 1, rec, func(c *grpctransport.GRPCConfig) { c.IdleTimeout = idle })

	// A stranger completes the HTTP/2 handshake and then sits.
	cc, err := grpc.NewClient("passthrough:///"+tr.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cc.Connect()
	deadline := time.Now().Add(wait)
	for st := cc.GetState(); st != connectivity.Ready; st = cc.GetState() {
		if time.Now().After(deadline) {
			t.Fatalf("stranger's connection never became ready: %v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitInbound(t, tr, "stranger connected", func(s grpctransport.InboundStats) bool { return s.Open == 1 })
	waitInbound(t, tr, "idle connection closed", func(s grpctransport.InboundStats) bool { return s.Open == 0 })

	// A real peer keeps its connection through many idle timeouts.
	rec2 := transporttest.NewRecorder()
	peer := node(t, 2, rec2, nil)
	tr.AddPeer(2, peer.Addr())
	peer.AddPeer(1, tr.Addr())
	peer.Send([]*raftpb.Message{transporttest.Msg(2, 1, 1)})
	rec.WaitMessages(t, 1, wait)
	time.Sleep(5 * idle)
	peer.Send([]*raftpb.Message{transporttest.Msg(2, 1, 2)})
	rec.WaitMessages(t, 2, wait)
	if n := rec.Unreachable(2); n != 0 {
		t.Fatalf("node 1 reported its peer unreachable %d times", n)
	}
	if n := rec2.Unreachable(1); n != 0 {
		t.Fatalf("the peer's stream broke %d times across idle timeouts", n)
	}
}

// TestInboundConnectionLimits: over the per-IP and the total limit a
// connection is closed on arrival and counted by reason, and peers keep
// working once the strangers are gone.
func TestInboundConnectionLimits(t *testing.T) {
	rec := transporttest.NewRecorder()
	tr := node(t, 1, rec, func(c *grpctransport.GRPCConfig) {
		c.MaxInboundConns = 3
		c.MaxInboundConnsPerIP = 2
	})
	dial := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: wait}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		c, err := d.Dial("tcp", tr.Addr())
		if err != nil {
			t.Fatalf("dial from %q: %v", local, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	held := []net.Conn{dial("127.0.0.1"), dial("127.0.0.1")}
	waitInbound(t, tr, "two held", func(s grpctransport.InboundStats) bool { return s.Open == 2 })
	dialRefused(t, tr.Addr(), "127.0.0.1")
	waitInbound(t, tr, "per-IP refusal", func(s grpctransport.InboundStats) bool {
		return s == grpctransport.InboundStats{Open: 2, RefusedPerIP: 1}
	})

	if probe, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: wait}).Dial("tcp", tr.Addr()); err == nil {
		// Linux: 127.0.0.2 is a second source, under its per-IP limit; the
		// next connection from it meets the total limit.
		t.Cleanup(func() { _ = probe.Close() })
		held = append(held, probe)
		waitInbound(t, tr, "third held", func(s grpctransport.InboundStats) bool { return s.Open == 3 })
		dialRefused(t, tr.Addr(), "127.0.0.2")
		waitInbound(t, tr, "total refusal", func(s grpctransport.InboundStats) bool {
			return s == grpctransport.InboundStats{Open: 3, RefusedTotal: 1, RefusedPerIP: 1}
		})
	} else {
		t.Logf("cannot dial from 127.0.0.2 (%v): total limit left to TestLimitListenerTotal", err)
	}

	for _, c := range held {
		_ = c.Close()
	}
	waitInbound(t, tr, "strangers gone", func(s grpctransport.InboundStats) bool { return s.Open == 0 })
	peer := node(t, 2, transporttest.NewRecorder(), nil)
	tr.AddPeer(2, peer.Addr())
	peer.AddPeer(1, tr.Addr())
	peer.Send([]*raftpb.Message{transporttest.Msg(2, 1, 1)})
	rec.WaitMessages(t, 1, wait)
}

// TestPingFloodIsCut: a client that pings faster than the enforcement
// policy allows is sent GOAWAY and disconnected, long before the idle
// timeout (left at its 30 s default here) would close it.
func TestPingFloodIsCut(t *testing.T) {
	tr := node(t, 1, transporttest.NewRecorder(), nil)
	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := func(typ byte, payload []byte) []byte {
		n := len(payload)
		return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, 0, 0, 0, 0, 0}, payload...)
	}
	const settings, ping, goAway = 0x4, 0x6, 0x7
	out := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(settings, nil)...)
	for i := range 10 {
		out = append(out, frame(ping, []byte{0, 0, 0, 0, 0, 0, 0, byte(i)})...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	in, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("ping flood not cut off within %v", wait)
	}
	sawGoAway := false
	for len(in) >= 9 {
		n := int(in[0])<<16 | int(in[1])<<8 | int(in[2])
		if in[3] == goAway {
			sawGoAway = true
		}
		if len(in) < 9+n {
			break
		}
		in = in[9+n:]
	}
	if !sawGoAway {
		t.Fatal("connection closed without GOAWAY")
	}
	waitInbound(t, tr, "slot released", func(s grpctransport.InboundStats) bool { return s.Open == 0 })
}
