package grpctransport

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

const (
	// refusedLogInterval is how often at most a refused connection is
	// logged per remote IP: a flood is counted in full (InboundStats) but
	// costs one log line per IP and interval.
	refusedLogInterval = 30 * time.Second
	// maxRefusedLogIPs bounds the memory of refusedLogInterval's rate
	// limiter; connections from further IPs within one interval share the
	// rate limit of manyAddresses.
	maxRefusedLogIPs = 1024
	manyAddresses    = "many addresses"
)

// Reasons a connection is refused, as reported by InboundStats.
const (
	RefusedTotal = "total"  // MaxInboundConns connections were open
	RefusedPerIP = "per_ip" // MaxInboundConnsPerIP connections from the same IP were open
)

// InboundStats describes the connections accepted by the raft listener.
type InboundStats struct {
	// Open is the number of inbound connections open now.
	Open int
	// RefusedTotal and RefusedPerIP count connections closed on arrival
	// because the limit of that name was reached.
	RefusedTotal, RefusedPerIP uint64
}

// limitListener bounds the connections a net.Listener hands out: at most
// maxTotal open in all and maxPerIP per remote IP (0: unbounded). A
// connection over a limit is reset as soon as it is accepted, before any
// byte is read from it (so before the TLS handshake), and Accept waits for
// the next one; Accept itself only returns the inner listener's errors, so
// it blocks in the inner Accept rather than spin. Each accepted connection
// holds one slot until its first Close.
type limitListener struct {
	net.Listener
	maxTotal, maxPerIP int
	// ipOf returns the key a connection is counted under for maxPerIP.
	ipOf func(net.Addr) string
	log  *zap.Logger
	now  func() time.Time

	mu     sync.Mutex
	open   int
	perIP  map[string]int
	logged map[string]time.Time // last refusal logged per IP, or manyAddresses
	pruned time.Time            // when logged was last cleared of old entries

	refusedTotal, refusedPerIP atomic.Uint64
}

func newLimitListener(inner net.Listener, maxTotal, maxPerIP int, log *zap.Logger) *limitListener {
	return &limitListener{
		Listener: inner,
		maxTotal: maxTotal,
		maxPerIP: maxPerIP,
		ipOf:     remoteIP,
		log:      log,
		now:      time.Now,
		perIP:    make(map[string]int),
		logged:   make(map[string]time.Time),
	}
}

// remoteIP is the IP of a TCP address, or the whole address of another
// kind.
func remoteIP(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := l.ipOf(c.RemoteAddr())
		reason := l.acquire(ip)
		if reason == "" {
			return &limitedConn{Conn: c, l: l, ip: ip}, nil
		}
		// Reset rather than close: a flood of refused connections then
		// leaves no TIME_WAIT sockets on this node.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		l.refused(ip, reason)
	}
}

// acquire takes a slot for ip and returns "", or the reason there is none.
func (l *limitListener) acquire(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.maxTotal > 0 && l.open >= l.maxTotal:
		return RefusedTotal
	case l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP:
		return RefusedPerIP
	}
	l.open++
	l.perIP[ip]++
	return ""
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// refused counts a refusal and logs it unless ip's last one was logged less
// than refusedLogInterval ago.
func (l *limitListener) refused(ip, reason string) {
	if reason == RefusedTotal {
		l.refusedTotal.Add(1)
	} else {
		l.refusedPerIP.Add(1)
	}
	now := l.now()
	l.mu.Lock()
	key := ip
	if _, ok := l.logged[key]; !ok && len(l.logged) >= maxRefusedLogIPs {
		// Pruning walks the whole map, so it is done at most once per
		// interval: a flood from many addresses costs O(1) per refusal.
		if now.Sub(l.pruned) >= refusedLogInterval {
			l.pruned = now
			for k, at := range l.logged {
				if now.Sub(at) >= refusedLogInterval {
					delete(l.logged, k)
				}
			}
		}
		if len(l.logged) >= maxRefusedLogIPs {
			key = manyAddresses
		}
	}
	last, seen := l.logged[key]
	doLog := !seen || now.Sub(last) >= refusedLogInterval
	if doLog {
		l.logged[key] = now
	}
	open, fromIP := l.open, l.perIP[ip]
	l.mu.Unlock()
	if doLog {
		l.log.Warn("grpctransport: refused an inbound raft connection: too many open (further refusals from this "+
			"address are counted, not logged, for a while)",
			zap.String("remote_ip", ip), zap.String("limit", reason),
			zap.Int("open", open), zap.Int("open_from_ip", fromIP),
			zap.Int("max_inbound_conns", l.maxTotal), zap.Int("max_inbound_conns_per_ip", l.maxPerIP),
			zap.Duration("log_interval", refusedLogInterval))
	}
}

func (l *limitListener) stats() InboundStats {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return InboundStats{Open: open, RefusedTotal: l.refusedTotal.Load(), RefusedPerIP: l.refusedPerIP.Load()}
}

// limitedConn is an accepted connection; its first Close frees its slot.
type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
