// Package grpctransport is the production transport.Transport: raft messages
// travel between nodes over gRPC (service raftdss.transport.v1.Raft in
// pkg/transport/transportpb).
//
// It owns the listener and gRPC server, one client connection, bounded queue
// and goroutine per peer, and the reassembly of chunked snapshots. Per peer
// it keeps one long-lived client stream, redialled with backoff when it
// breaks; queued messages are written in batches (one Frame per batch), and
// MsgSnap is split into chunks and acknowledged by the receiver once the
// reassembled message has been stepped, which is when ReportSnapshot says
// SnapshotFinish. Inbound messages are stepped into the Handler directly from
// the stream's receiving goroutine (raft-notes: stepping off the Ready loop is
// what makes the node fast), in the order they were sent.
//
// Identity is the raft node ID, never the address: a peer is dialled at the
// address given to AddPeer, and with mutual TLS its certificate must name
// exactly that ID (DNS SAN or CommonName "raft-node-<id>", see NodeName).
// Without TLS the ID in a frame is trusted: run without TLS only on a
// private network.
//
// It never interprets raft state beyond recognising MsgSnap, never calls the
// Handler from the goroutine that called Send, and never lets bad input from
// the network panic or stall the node: an invalid frame (unknown or removed
// sender, From not matching the stream's node ID or certificate, undecodable
// bytes, oversized frame or snapshot) ends that stream with a gRPC error and
// a log line, and the server keeps serving everyone else.
//
// What a stranger who can reach the port costs is bounded before anything
// is authenticated: the listener closes, on arrival, a connection past
// MaxInboundConns in all or MaxInboundConnsPerIP from one IP (limit.go); a
// connection must finish the TLS handshake and HTTP/2 preface within
// HandshakeTimeout, and one that holds no stream is closed after
// IdleTimeout; pings are rate-limited and streams per connection capped.
// InboundStats reports the open connections and the refusals.
package grpctransport
