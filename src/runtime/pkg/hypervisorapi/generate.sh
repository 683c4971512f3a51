#!/bin/sh
# Regenerates hypervisor.pb.go and hypervisor_ttrpc.pb.go from the hypervisor part's copy of Kata's
# hypervisor.proto (src/hypervisor/proto), the API the shim asks for a sandbox's VM with.
# Needs protoc; the Go plugins are built at the versions go.mod pins.
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install "google.golang.org/protobuf/cmd/protoc-gen-go@$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
GOBIN=$bin go install "github.com/containerd/ttrpc/cmd/protoc-gen-go-ttrpc@$(go list -m -f '{{.Version}}' github.com/containerd/ttrpc)"
map="Mhypervisor.proto=peerpods.io/runtime/pkg/hypervisorapi;hypervisorapi"
PATH="$bin:$PATH" protoc -I ../../../hypervisor/proto --go_out=. --go_opt=paths=source_relative,"$map" \
  --go-ttrpc_out=. --go-ttrpc_opt=paths=source_relative,"$map" hypervisor.proto
