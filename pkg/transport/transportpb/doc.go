// Package transportpb is the generated wire format (transport.proto) of the
// gRPC raft transport in pkg/transport/grpctransport.
//
// It owns only the message and service definitions. It must never import
// etcd's raft .proto files: raft messages travel as opaque bytes
// (proto.Marshal of raftpb.Message) so the wire format does not depend on
// how etcd generates raftpb.
//
// Regenerate after editing transport.proto (protoc, protoc-gen-go v1.36.x and
// protoc-gen-go-grpc v1.6.x on PATH):
//
//	PATH=$PATH:$(go env GOPATH)/bin go generate ./pkg/transport/transportpb
package transportpb
