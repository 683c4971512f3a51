// ttrpc-peer calls peerpods' remote hypervisor the way the Kata shim does: containerd's own ttrpc
// client, one connection per call, service "hypervisor.Hypervisor". It prints one JSON object per
// call: the response fields, the call's duration, and the ttrpc status code when the call failed.
//
//	ttrpc-peer -socket PATH version VERSION
//	ttrpc-peer -socket PATH create ID [-netns PATH] [-a key=value ...]
//	ttrpc-peer -socket PATH start ID [-timeout 60s]
//	ttrpc-peer -socket PATH stop ID
//	ttrpc-peer -socket PATH call SERVICE METHOD   (an empty request, e.g. to see UNIMPLEMENTED)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type annotations map[string]string

func (a annotations) String() string { return fmt.Sprint(map[string]string(a)) }
func (a annotations) Set(value string) error {
	key, val, ok := strings.Cut(value, "=")
	if !ok {
		return fmt.Errorf("annotation %q is not key=value", value)
	}
	a[key] = val
	return nil
}

func main() {
	socket := flag.String("socket", "/run/peerpod/hypervisor.sock", "the remote hypervisor's socket")
	flag.Parse()
	args := flag.Args()
	if len(args) < 2 {
		fail("usage: ttrpc-peer -socket PATH version|create|start|stop|call ARGS")
	}
	command, rest := args[0], args[1:]

	var service, method string
	var request proto.Message
	var response proto.Message
	timeout := 10 * time.Minute
	switch command {
	case "version":
		service, method = hypervisorService, "Version"
		request, response = newMessage("VersionRequest", map[string]any{"version": rest[0]}), newMessage("VersionResponse", nil)
	case "create":
		flags := flag.NewFlagSet("create", flag.ExitOnError)
		netns := flags.String("netns", "", "network namespace path")
		ann := annotations{}
		flags.Var(ann, "a", "annotation key=value (repeatable)")
		_ = flags.Parse(rest[1:])
		service, method = hypervisorService, "CreateVM"
		request = newMessage("CreateVMRequest", map[string]any{"id": rest[0], "annotations": map[string]string(ann), "networkNamespacePath": *netns})
		response = newMessage("CreateVMResponse", nil)
	case "start":
		flags := flag.NewFlagSet("start", flag.ExitOnError)
		flags.DurationVar(&timeout, "timeout", 60*time.Second, "deadline sent with the call, as the shim does")
		_ = flags.Parse(rest[1:])
		service, method = hypervisorService, "StartVM"
		request, response = newMessage("StartVMRequest", map[string]any{"id": rest[0]}), newMessage("StartVMResponse", nil)
	case "stop":
		service, method = hypervisorService, "StopVM"
		request, response = newMessage("StopVMRequest", map[string]any{"id": rest[0]}), newMessage("StopVMResponse", nil)
	case "call":
		if len(rest) < 2 {
			fail("call needs SERVICE METHOD")
		}
		service, method = rest[0], rest[1]
		request, response = newMessage("StopVMRequest", nil), newMessage("StopVMResponse", nil)
	default:
		fail("unknown command " + command)
	}

	conn, err := net.Dial("unix", *socket)
	if err != nil {
		fail(fmt.Sprintf("connect to the remote hypervisor socket: %v", err))
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	started := time.Now()
	err = client.Call(ctx, service, method, request, response)
	out := map[string]any{"ms": float64(time.Since(started).Microseconds()) / 1000}
	if err != nil {
		st, _ := status.FromError(err)
		out["code"] = st.Code().String()
		out["message"] = st.Message()
	} else {
		for key, value := range toMap(response) {
			out[key] = value
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "ttrpc-peer:", message)
	os.Exit(2)
}
