// peerpods-agentctl drives a pod VM's agent from the node, for tests and for a person debugging a
// VM: one connection per command, one JSON object printed per command (with the gRPC code and
// message when the agent refused).
//
//	peerpods-agentctl -agent ENDPOINT version|health
//	peerpods-agentctl -agent ENDPOINT call-as-protocol N        (Health, claiming protocol version N)
//	peerpods-agentctl -agent ENDPOINT run -id ID -rootfs DIR [-tree NAME=DIR] [-mount TREE:DEST[:ro]] [-uid N] [-stdin] [-detach] -- ARGS
//	peerpods-agentctl -agent ENDPOINT exec -id ID -exec EID [-tty] [-rows R -cols C] [-stdin] -- ARGS
//	peerpods-agentctl -agent ENDPOINT signal -id ID [-exec EID] -signal N
//	peerpods-agentctl -agent ENDPOINT delete -id ID [-force]
//	peerpods-agentctl -agent ENDPOINT oversize-tree -id ID -bytes N   (a tar entry claiming N bytes)
//
// With -tls-dir DIR -instance NAME it speaks mutual TLS to the VM's agent port directly (DIR holds
// a node-side client certificate, its key and the trust bundle).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentclient"
	"peerpods.io/runtime/pkg/agenttls"
)

func main() {
	endpoint := flag.String("agent", "", "the agent's endpoint: tcp:HOST:PORT or a unix socket path")
	tlsDir := flag.String("tls-dir", "", "a node-side TLS folder (client tls.crt, tls.key, ca.crt): speak mutual TLS to the agent port")
	instance := flag.String("instance", "", "with -tls-dir: the VM's instance name its certificate must carry")
	timeout := flag.Duration("timeout", 5*time.Minute, "deadline for the whole command")
	flag.Parse()
	if *endpoint == "" || flag.NArg() < 1 {
		fail(fmt.Errorf("usage: peerpods-agentctl -agent ENDPOINT COMMAND [ARGS]"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var config *tls.Config
	if *tlsDir != "" {
		var err error
		if config, err = agenttls.ClientConfig(*tlsDir, *instance); err != nil {
			fail(err)
		}
	}
	command, args := flag.Arg(0), flag.Args()[1:]
	if command == "call-as-protocol" {
		print(callAsProtocol(ctx, *endpoint, config, args))
		return
	}
	client, err := agentclient.DialTLS(ctx, *endpoint, config)
	if err != nil {
		print(nil, err)
		return
	}
	defer client.Close()
	print(runCommand(ctx, client, command, args))
}

func runCommand(ctx context.Context, client *agentclient.Client, command string, args []string) (any, error) {
	switch command {
	case "version":
		return client.Version(ctx, nil)
	case "health":
		return client.Health(ctx, nil)
	case "run":
		return run(ctx, client, args)
	case "exec":
		return execute(ctx, client, args)
	case "signal":
		return signal(ctx, client, args)
	case "delete":
		return remove(ctx, client, args)
	case "oversize-tree":
		return oversizeTree(ctx, client, args)
	default:
		return nil, fmt.Errorf("unknown command %q", command)
	}
}

// print writes the result as JSON, or the error's gRPC code and message.
func print(result any, err error) {
	out := result
	if err != nil {
		st := status.Convert(err)
		out = map[string]any{"code": st.Code().String(), "message": st.Message()}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
