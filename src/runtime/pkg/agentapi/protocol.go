// Package agentapi is the protocol between the node and peerpods-agent in a pod VM (agent.proto).
package agentapi

//go:generate sh generate.sh

// ProtocolVersion is the version of agent.proto's contract this code speaks. Bump it for a change
// an older peer would misread; additions old peers ignore keep it.
const ProtocolVersion uint32 = 1

// ProtocolMetadataKey is the ttrpc metadata key that carries the caller's protocol version on every call.
const ProtocolMetadataKey = "peerpods-agent-protocol"

// ServiceName is the ttrpc service name, the same for every protocol version.
const ServiceName = "peerpods.agent.Agent"

// RootfsTreeName is the tree a container's root filesystem is uploaded as (WriteTree).
const RootfsTreeName = "rootfs"
