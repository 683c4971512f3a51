#!/bin/sh
# Regenerates agent.pb.go and agent_ttrpc.pb.go from agent.proto (`go generate ./...` in src/runtime).
# Needs protoc (Debian: apt-get install protobuf-compiler); the Go plugins are built from the
# module proxy at the versions go.mod pins, so the generated code matches the runtime libraries.
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
for module in google.golang.org/protobuf github.com/containerd/ttrpc; do
  version=$(go list -m -f '{{.Version}}' "$module")
  case "$module" in
    google.golang.org/protobuf) GOBIN=$bin go install "$module/cmd/protoc-gen-go@$version" ;;
    *) GOBIN=$bin go install "$module/cmd/protoc-gen-go-ttrpc@$version" ;;
  esac
done
PATH="$bin:$PATH" protoc --go_out=. --go_opt=paths=source_relative --go-ttrpc_out=. --go-ttrpc_opt=paths=source_relative agent.proto
