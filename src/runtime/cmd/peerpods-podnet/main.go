// peerpods-podnet connects a peer pod's network namespace on the node to its VM (pkg/podnet), for
// the node's control plane to run once CNI has set the pod's netns up:
//
//	peerpods-podnet attach --netns PATH --sandbox ID --vm-ip IP   prints the pod's Network as one JSON line
//	peerpods-podnet detach --netns PATH
//
// A failure is one line on stderr and exit code 1; a usage error exits 2.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"peerpods.io/runtime/pkg/podnet"
)

const usage = `usage:
  peerpods-podnet attach --netns PATH --sandbox ID --vm-ip IP
  peerpods-podnet detach --netns PATH`

// errUsage marks errors in how the command was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "peerpods-podnet: %v\n%s\n", err, usage)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "peerpods-podnet: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(stderr)
	netnsPath := flags.String("netns", "", "the pod's network namespace (a bind-mounted path)")
	switch args[0] {
	case "attach":
		sandbox := flags.String("sandbox", "", "the pod sandbox's id")
		vmIP := flags.String("vm-ip", "", "the VM's address the node reaches")
		if err := parse(flags, args[1:]); err != nil {
			return err
		}
		network, err := podnet.Attach(*netnsPath, *sandbox, *vmIP)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(network)
	case "detach":
		if err := parse(flags, args[1:]); err != nil {
			return err
		}
		return podnet.Detach(*netnsPath)
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}

// parse parses the command's flags, each of which is required.
func parse(flags *flag.FlagSet, args []string) error {
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, flags.Arg(0))
	}
	var missing []string
	flags.VisitAll(func(f *flag.Flag) {
		if f.Value.String() == "" {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s needs %s", errUsage, flags.Name(), strings.Join(missing, " "))
	}
	return nil
}
