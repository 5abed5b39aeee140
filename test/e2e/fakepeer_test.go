package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/raftdss/dss/internal/peercerts"
	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/transport/grpctransport"
	"github.com/raftdss/dss/pkg/transport/transportpb"
)

// The fake peer: a process that is no member of the cluster but speaks the
// raft transport's wire protocol (pkg/transport/transportpb) to a node's
// raft port, as an attacker who can reach that port would, with forged
// raft messages. It connects in plaintext, or with mutual TLS under a
// certificate of the pool's CA (a stolen or misused node key).

// fakePeer dials one node's raft port.
type fakePeer struct {
	addr string
	// tls is the client configuration; nil dials plaintext.
	tls *tls.Config
}

// send opens one stream to the node, writes one frame (sender frameFrom,
// msgs as a batch), half-closes the stream and waits for the node to end
// it. It returns nil when the node read the frame and closed the stream
// cleanly (the messages reached the node's peer check), and the node's
// gRPC status error when its transport refused the frame or the connection.
func (p fakePeer) send(ctx context.Context, frameFrom uint64, msgs ...*raftpb.Message) error {
	creds := insecure.NewCredentials()
	if p.tls != nil {
		creds = credentials.NewTLS(p.tls)
	}
	cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream, err := transportpb.NewRaftClient(cc).Stream(ctx)
	if err != nil {
		return err
	}
	payloads := make([][]byte, len(msgs))
	for i, m := range msgs {
		if payloads[i], err = proto.Marshal(m); err != nil {
			return err
		}
	}
	// A Send error is io.EOF when the node already ended the stream; its
	// status comes from Recv.
	if err := stream.Send(&transportpb.Frame{From: frameFrom,
		Body: &transportpb.Frame_Batch{Batch: &transportpb.Batch{Messages: payloads}}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("the node sent an acknowledgement without a snapshot transfer")
		}
		return err
	}
	return nil
}

// peerTLS is the client configuration of a fake peer holding node certID's
// certificate (from the cluster's PKI directory) and dialling node
// serverID: exactly what node certID's own transport presents.
func (c *Cluster) peerTLS(certID, serverID uint64) *tls.Config {
	c.t.Helper()
	f := peercerts.NodeFiles(c.PKIDir, certID)
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		c.t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		c.t.Fatalf("no certificate in %s", f.CA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   grpctransport.NodeName(serverID),
		MinVersion:   tls.VersionTLS13,
	}
}

// maxTerm is the term that used to make every node panic, on every restart.
const maxTerm = math.MaxUint64

// undecodableEntry is entry data with an unknown envelope version: applying
// it would halt the node.
var undecodableEntry = []byte{0xee, 0x01, 0x02, 0x03}

// validLookingEntry is entry data that passes the hot-path entry check: a
// version-1 envelope (proposer, epoch, seq, minPending as uvarints) around a
// payload naming a registered operation type, with junk after the type.
func validLookingEntry(proposer uint64) []byte {
	b := []byte{1}
	for _, v := range []uint64{proposer, 1 << 40, 1, 0} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(scd.OpPutOperationalIntent))
	return append(b, "forged operation payload"...)
}

// rejectedMetric is the peer check's counter on /metrics.
const rejectedMetric = "dss_raft_peer_messages_rejected_total"

// Rejections reads node i's refused peer messages per reason from /metrics.
func (c *Cluster) Rejections(i int) (map[string]uint64, error) {
	code, body, err := c.get(context.Background(), i, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", code)
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), rejectedMetric+`{reason="`)
		if !ok {
			continue
		}
		reason, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			return nil, fmt.Errorf("/metrics: cannot parse %q", sc.Text())
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %q: %v", sc.Text(), err)
		}
		out[reason] = uint64(f)
	}
	if len(out) != len(consensus.RejectReasons) {
		return nil, fmt.Errorf("/metrics has %d %s series, want one per reason %v", len(out), rejectedMetric, consensus.RejectReasons)
	}
	return out, sc.Err()
}

// leaderWatch samples every running node's /status until stopped and
// records each term in which some node said it was the leader: the number
// of new terms is the number of elections won (a leader that lasts less
// than a sample period can be missed, never invented).
type leaderWatch struct {
	c    *Cluster
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	terms map[uint64]uint64 // term → the node that led in it
}

func (c *Cluster) watchLeaders() *leaderWatch {
	w := &leaderWatch{c: c, stop: make(chan struct{}), done: make(chan struct{}), terms: map[uint64]uint64{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, i := range c.Running() {
				w.sample(i)
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *leaderWatch) sample(i int) {
	s, err := w.c.Status(i)
	if err != nil || s.LeaderID == 0 || s.LeaderID != s.NodeID {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.terms[s.Term] = s.NodeID
}

// Stop ends the sampling and waits for it.
func (w *leaderWatch) Stop() {
	close(w.stop)
	<-w.done
}

// Terms returns a copy of the leader terms seen so far.
func (w *leaderWatch) Terms() map[uint64]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[uint64]uint64, len(w.terms))
	for k, v := range w.terms {
		out[k] = v
	}
	return out
}

// writeInterval spaces the writes made during an attack: a few dozen per
// attack, all read back from every node after each.
const writeInterval = 40 * time.Millisecond

// settleTime is how long an attack is left to play out before the checks:
// two of the longest election timeouts, time for raft to answer at a
// forged term, the real leader to step down and a new one to be elected
// (the checks then wait for an agreed leader anyway).
const settleTime = 4 * electionTicks * tickInterval

// writer makes OIR writes through the nodes in turn, one at a time, until
// stopped, and keeps what was acknowledged. A write may fail while an
// election runs (it is then unacknowledged, and never checked); one that
// hangs past the client timeout fails the test.
type writer struct {
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	acked map[string]string
	tried int
	hangs []string
}

func (c *Cluster) startWriter() *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]string{}}
	go func() {
		defer close(w.done)
		for k := 0; ; k++ {
			select {
			case <-w.stop:
				return
			default:
			}
			id, r := c.PutOIR(k % len(c.Nodes))
			w.mu.Lock()
			w.tried++
			switch {
			case r.hung():
				w.hangs = append(w.hangs, r.String())
			case r.err == nil && r.status == http.StatusCreated:
				if ovn, err := ovnOf(r.body); err == nil {
					w.acked[id] = ovn
				}
			}
			w.mu.Unlock()
			time.Sleep(writeInterval)
		}
	}()
	return w
}

// Stop ends the writes and returns those acknowledged, failing t if a
// write hung.
func (w *writer) Stop(t *testing.T) map[string]string {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hangs) > 0 {
		t.Errorf("%d writes hung until the client timeout; first: %s", len(w.hangs), w.hangs[0])
	}
	t.Logf("writes during the attack: %d acknowledged of %d", len(w.acked), w.tried)
	return w.acked
}

// forgery is one attack: what a fake peer sends to one victim node.
type forgery struct {
	name string
	// peer is how the fake peer connects to victim v (an index).
	peer func(v int) fakePeer
	// frameFrom is the sender the frame claims.
	frameFrom func(v int) uint64
	// msgs are the forged messages, built from the victim's status just
	// before the attack.
	msgs func(v int, st Status) []*raftpb.Message
	// wantCode is the gRPC status the node's transport answers with;
	// codes.OK: it reads the frame and hands the messages on.
	wantCode codes.Code
	// refused is the peer check's reason for refusing every message;
	// "": raft itself handles them (it may move its term, or ignore them).
	refused string
	// refusedFor, when set, replaces refused: the reason depends on the
	// victim's view (a leader's message at the victim's term is refused
	// unless it claims the victim's leader).
	refusedFor func(v int, st Status) string
}

// leaderOrEntry is the refusal of an append at the victim's current term
// claiming sender from: its leader's passes the leader check and is judged
// by its entries (then refused as ifLeader, or "" for raft to handle).
func leaderOrEntry(from func(v int) uint64, ifLeader string) func(v int, st Status) string {
	return func(v int, st Status) string {
		if from(v) == st.LeaderID {
			return ifLeader
		}
		return consensus.RejectLeader
	}
}

// attackCluster runs each forgery against every node of c in turn, with
// writes going on, and after each checks: no node died or logged a panic,
// at most one election was won, a leader is agreed on, every acknowledged
// write (from before and during the attacks) is read back from every node,
// the replicas converge to one state hash, and the refusals are counted.
// Then it stops every node, starts them again and checks that they come
// back with every write and take new ones.
func attackCluster(t *testing.T, c *Cluster, forgeries []forgery) {
	all := c.Running()
	acked := c.WriteOIRs(t, 12, all)
	watch := c.watchLeaders()
	defer watch.Stop()
	for _, f := range forgeries {
		// The current leader's term is known before the attack, however
		// briefly the watch has run.
		watch.sample(c.Leader())
		before := watch.Terms()
		rej := make([]map[string]uint64, len(c.Nodes))
		for _, i := range all {
			r, err := c.Rejections(i)
			if err != nil {
				t.Fatalf("node %d: %v", i+1, err)
			}
			rej[i] = r
		}
		w := c.startWriter()
		sent := map[int]int{}
		refused := map[int]string{}
		for _, v := range all {
			st, err := c.Status(v)
			if err != nil {
				w.Stop(t)
				t.Fatalf("%s: node %d: %v", f.name, v+1, err)
			}
			msgs := f.msgs(v, st)
			sent[v] = len(msgs)
			refused[v] = f.refused
			if f.refusedFor != nil {
				refused[v] = f.refusedFor(v, st)
			}
			err = f.peer(v).send(context.Background(), f.frameFrom(v), msgs...)
			if got := status.Code(err); got != f.wantCode {
				t.Errorf("%s: node %d answered %v (%v), want %v", f.name, v+1, got, err, f.wantCode)
			}
		}
		// Leave time for what the forgery could set off: raft answering
		// at a forged term, the real leader stepping down, an election.
		time.Sleep(settleTime)
		for k, v := range w.Stop(t) {
			acked[k] = v
		}
		for _, i := range all {
			if err := c.exitedErr(i); err != nil {
				t.Fatalf("%s: node %d: %v", f.name, i+1, err)
			}
			if line := panicLine(c.LogSinceStart(i)); line != "" {
				t.Fatalf("%s: node %d logged %q", f.name, i+1, line)
			}
		}
		leader := c.Leader()
		watch.sample(leader)
		var won []string
		for term, id := range watch.Terms() {
			if _, ok := before[term]; !ok {
				won = append(won, fmt.Sprintf("node %d in term %d", id, term))
			}
		}
		if len(won) > 1 {
			t.Errorf("%s: %d elections won after the attack (want at most 1): %v", f.name, len(won), won)
		}
		c.CheckOIRs(t, acked, all)
		c.WaitEqualHashes()
		for _, i := range all {
			r, err := c.Rejections(i)
			if err != nil {
				t.Fatalf("node %d: %v", i+1, err)
			}
			for _, reason := range consensus.RejectReasons {
				want := rej[i][reason]
				if reason == refused[i] {
					want += uint64(sent[i])
				}
				if r[reason] != want {
					t.Errorf("%s: node %d: %s{reason=%q} = %d, want %d", f.name, i+1, rejectedMetric, reason, r[reason], want)
				}
			}
		}
		t.Logf("%s: every node up, elections won after it: %v, %d acknowledged writes on every node",
			f.name, won, len(acked))
	}

	// Every node restarts cleanly from what the attacks left on its disk.
	for _, i := range all {
		c.StopNode(i)
	}
	for _, i := range all {
		c.Start(i)
	}
	c.WaitAllReady()
	c.CheckOIRs(t, acked, all)
	more := c.WriteOIRs(t, 6, all)
	c.CheckOIRs(t, more, all)
	c.WaitEqualHashes()
}

// panicLine returns the first line of log that reports a panic, a fatal
// runtime error or a data race, or "".
func panicLine(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "panic") || strings.Contains(line, "panic: ") ||
			strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "WARNING: DATA RACE") {
			return line
		}
	}
	return ""
}

// other returns a member of c other than node index v and skip: the node a
// forgery claims to come from.
func (c *Cluster) other(v int, skip ...uint64) uint64 {
	for k := 1; k < len(c.Nodes); k++ {
		id := c.Nodes[(v+k)%len(c.Nodes)].ID
		if !containsID(skip, id) {
			return id
		}
	}
	c.t.Fatalf("no member other than node %d and %v", v+1, skip)
	return 0
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Forged messages, from a claimed sender to victim v, made from v's status.

func heartbeat(from uint64, v Status, term uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(from), To: proto.Uint64(v.NodeID),
		Term: proto.Uint64(term)}
}

func vote(typ raftpb.MessageType, from uint64, v Status, term uint64) *raftpb.Message {
	// A log that looks further ahead than the victim's, so that only the
	// leader lease (CheckQuorum) or the peer check stands in the way.
	return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(v.NodeID), Term: proto.Uint64(term),
		LogTerm: proto.Uint64(v.Term), Index: proto.Uint64(v.CommitIndex + 100)}
}

// ackBeyond is an append response acknowledging an entry far beyond the
// victim's log: a leader that counted it panicked on its next append to
// the claimed follower ("need non-empty snapshot"), and so did every new
// leader the attacker sent it to.
func ackBeyond(from uint64, v Status) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: proto.Uint64(from), To: proto.Uint64(v.NodeID),
		Term: proto.Uint64(v.Term), Index: proto.Uint64(v.CommitIndex + 1000)}
}

// appendAt is an append under term that follows the entry at index
// (claimed to be of term logTerm) with one entry of data, and commits it.
func appendAt(from uint64, v Status, term, logTerm, index uint64, data []byte) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(v.NodeID),
		Term: proto.Uint64(term), LogTerm: proto.Uint64(logTerm), Index: proto.Uint64(index), Commit: proto.Uint64(index + 1),
		Entries: []*raftpb.Entry{{Type: raftpb.EntryNormal.Enum(), Term: proto.Uint64(logTerm), Index: proto.Uint64(index + 1),
			Data: data}}}
}

// TestFakePeerPlaintext attacks a cluster whose raft peers are plaintext
// (--raft_insecure_plaintext_peers): a fake peer reaches every node's raft
// port and claims to be another member. Without authentication the
// message checks are all that protect the nodes.
func TestFakePeerPlaintext(t *testing.T) {
	c := NewCluster(t, Options{Dev: true, PlaintextPeers: true})
	plain := func(v int) fakePeer { return fakePeer{addr: c.Nodes[v].RaftAddr} }
	claim := func(v int) uint64 { return c.other(v) }
	forgeries := []forgery{
		{
			name: "heartbeat with a higher term", peer: plain, frameFrom: claim,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(claim(v), st, st.Term+3)}
			},
		},
		{
			name: "vote and pre-vote requests with a higher term", peer: plain, frameFrom: claim,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{vote(raftpb.MsgPreVote, claim(v), st, st.Term+3), vote(raftpb.MsgVote, claim(v), st, st.Term+3)}
			},
		},
		{
			name: "append of an undecodable entry", peer: plain, frameFrom: claim,
			refusedFor: leaderOrEntry(claim, consensus.RejectEntry),
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{appendAt(claim(v), st, st.Term, st.Term, st.CommitIndex, undecodableEntry)}
			},
		},
		{
			name: "append of a valid-looking entry at a high index", peer: plain, frameFrom: claim,
			refusedFor: leaderOrEntry(claim, ""),
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{appendAt(claim(v), st, st.Term, st.Term, st.CommitIndex+1000, validLookingEntry(claim(v)))}
			},
		},
		{
			name: "append acknowledgement beyond the node's log", peer: plain, frameFrom: claim, refused: consensus.RejectShape,
			msgs: func(v int, st Status) []*raftpb.Message { return []*raftpb.Message{ackBeyond(claim(v), st)} },
		},
		{
			name: "messages with term 2^64-1", peer: plain, frameFrom: claim, refused: consensus.RejectTerm,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{
					heartbeat(claim(v), st, maxTerm),
					vote(raftpb.MsgPreVote, claim(v), st, maxTerm),
					vote(raftpb.MsgVote, claim(v), st, maxTerm),
					appendAt(claim(v), st, maxTerm, st.Term, st.CommitIndex, validLookingEntry(claim(v))),
				}
			},
		},
		{
			// Plaintext has one notion of identity: the frame's sender,
			// which every message in it must repeat.
			name: "message From other than the frame's sender", peer: plain, frameFrom: claim,
			wantCode: codes.PermissionDenied,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(c.other(v, claim(v)), st, st.Term+3)}
			},
		},
		{
			name: "frame from a node that is not a member", peer: plain, frameFrom: func(int) uint64 { return 99 },
			wantCode: codes.PermissionDenied,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(99, st, st.Term+3)}
			},
		},
	}
	attackCluster(t, c, forgeries)
}

// TestFakePeerMutualTLS attacks a mutual-TLS cluster with valid
// certificates of the pool's CA: of another node (which may speak only as
// that node), and of the attacked node itself.
func TestFakePeerMutualTLS(t *testing.T) {
	c := NewCluster(t, Options{Dev: true})
	// The certificate of the next node (raft-node-2 attacks node 1, ...).
	certOf := func(v int) uint64 { return c.other(v) }
	asOther := func(v int) fakePeer {
		return fakePeer{addr: c.Nodes[v].RaftAddr, tls: c.peerTLS(certOf(v), c.Nodes[v].ID)}
	}
	asSelf := func(v int) fakePeer {
		return fakePeer{addr: c.Nodes[v].RaftAddr, tls: c.peerTLS(c.Nodes[v].ID, c.Nodes[v].ID)}
	}
	forgeries := []forgery{
		{
			name: "another node's certificate claiming a third node", peer: asOther,
			frameFrom: func(v int) uint64 { return c.other(v, certOf(v)) }, wantCode: codes.PermissionDenied,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(c.other(v, certOf(v)), st, st.Term+3)}
			},
		},
		{
			name: "another node's certificate, its own ID, messages from a third node", peer: asOther,
			frameFrom: certOf, wantCode: codes.PermissionDenied,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(c.other(v, certOf(v)), st, st.Term+3)}
			},
		},
		{
			name: "another node's certificate, term 2^64-1", peer: asOther, frameFrom: certOf, refused: consensus.RejectTerm,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{
					heartbeat(certOf(v), st, maxTerm),
					vote(raftpb.MsgPreVote, certOf(v), st, maxTerm),
					vote(raftpb.MsgVote, certOf(v), st, maxTerm),
					appendAt(certOf(v), st, maxTerm, st.Term, st.CommitIndex, validLookingEntry(certOf(v))),
				}
			},
		},
		{
			name: "another node's certificate, append of an undecodable entry", peer: asOther, frameFrom: certOf,
			refusedFor: leaderOrEntry(certOf, consensus.RejectEntry),
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{appendAt(certOf(v), st, st.Term, st.Term, st.CommitIndex, undecodableEntry)}
			},
		},
		{
			name: "another node's certificate, append acknowledgement beyond the node's log", peer: asOther, frameFrom: certOf,
			refused: consensus.RejectShape,
			msgs:    func(v int, st Status) []*raftpb.Message { return []*raftpb.Message{ackBeyond(certOf(v), st)} },
		},
		{
			name: "another node's certificate, heartbeat and votes with a higher term", peer: asOther, frameFrom: certOf,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{
					vote(raftpb.MsgPreVote, certOf(v), st, st.Term+3),
					vote(raftpb.MsgVote, certOf(v), st, st.Term+3),
					heartbeat(certOf(v), st, st.Term+3),
				}
			},
		},
		{
			name: "the node's own certificate", peer: asSelf, frameFrom: func(v int) uint64 { return c.Nodes[v].ID },
			wantCode: codes.PermissionDenied,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(c.Nodes[v].ID, st, st.Term+3)}
			},
		},
		{
			name: "the node's own certificate claiming another node", peer: asSelf, frameFrom: claimOther(c),
			wantCode: codes.PermissionDenied,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(c.other(v), st, st.Term+3)}
			},
		},
		{
			name: "no certificate", peer: func(v int) fakePeer {
				cfg := c.peerTLS(c.Nodes[v].ID, c.Nodes[v].ID)
				cfg.Certificates = nil
				return fakePeer{addr: c.Nodes[v].RaftAddr, tls: cfg}
			},
			frameFrom: claimOther(c), wantCode: codes.Unavailable,
			msgs: func(v int, st Status) []*raftpb.Message {
				return []*raftpb.Message{heartbeat(c.other(v), st, st.Term+3)}
			},
		},
	}
	attackCluster(t, c, forgeries)
}

func claimOther(c *Cluster) func(int) uint64 { return func(v int) uint64 { return c.other(v) } }
