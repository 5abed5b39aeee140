package transportpb

// Requires protoc (Debian: protobuf-compiler) and, on PATH, protoc-gen-go
// v1.36.x and protoc-gen-go-grpc v1.6.x:
//   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative transport.proto
