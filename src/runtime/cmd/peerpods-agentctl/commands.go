package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// processFlags are the flags run and exec share.
type processFlags struct {
	id, exec   string
	uid, gid   uint
	env        repeated
	cwd        string
	stdin, tty bool
	rows, cols uint
}

func (p *processFlags) register(flags *flag.FlagSet) {
	flags.StringVar(&p.id, "id", "", "container id")
	flags.UintVar(&p.uid, "uid", 0, "user id")
	flags.UintVar(&p.gid, "gid", 0, "group id")
	flags.Var(&p.env, "env", "NAME=value (repeatable)")
	flags.StringVar(&p.cwd, "cwd", "", "working folder")
	flags.BoolVar(&p.stdin, "stdin", false, "copy this command's stdin to the process")
	flags.BoolVar(&p.tty, "tty", false, "a terminal")
	flags.UintVar(&p.rows, "rows", 0, "terminal rows set after start")
	flags.UintVar(&p.cols, "cols", 0, "terminal columns set after start")
}

func (p *processFlags) process(args []string) *agentapi.Process {
	return &agentapi.Process{
		Args: args, Env: p.env, Cwd: p.cwd, User: &agentapi.User{Uid: uint32(p.uid), Gid: uint32(p.gid)},
		Terminal: p.tty, Stdin: p.stdin || p.tty,
	}
}

// outcome is what running a process showed: its output, exit code and timings in milliseconds.
type outcome struct {
	Stdout        string           `json:"stdout"`
	Stderr        string           `json:"stderr"`
	ExitCode      int32            `json:"exitCode"`
	Pid           uint32           `json:"pid"`
	Timings       map[string]int64 `json:"timings"`
	UnpackedBytes uint64           `json:"unpackedBytes,omitempty"`
}

func run(ctx context.Context, client *agentclient.Client, args []string) (any, error) {
	var p processFlags
	var rootfs string
	var trees, mounts repeated
	var detach bool
	flags := flag.NewFlagSet("run", flag.ContinueOnError)
	p.register(flags)
	flags.StringVar(&rootfs, "rootfs", "", "folder shipped as the rootfs")
	flags.Var(&trees, "tree", "NAME=DIR shipped as a tree (repeatable)")
	flags.Var(&mounts, "mount", "TREE:DEST[:ro] or TREE/PATH:DEST[:ro] (repeatable)")
	flags.BoolVar(&detach, "detach", false, "start the container and answer at once")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	parsedMounts, err := parseMounts(mounts)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	uploaded, err := uploadTrees(ctx, client, p.id, rootfs, trees)
	if err != nil {
		return nil, err
	}
	uploadMs := time.Since(began).Milliseconds()
	createdAt := time.Now()
	if _, err := client.CreateContainer(ctx, &agentapi.CreateContainerRequest{ContainerId: p.id, Process: p.process(flags.Args()), Mounts: parsedMounts}); err != nil {
		return nil, err
	}
	ref := &agentapi.ProcessRef{ContainerId: p.id}
	var result *outcome
	if detach {
		resp, err := client.StartProcess(ctx, ref)
		if err != nil {
			return nil, err
		}
		result = &outcome{Pid: resp.GetPid(), Timings: map[string]int64{"startMs": time.Since(createdAt).Milliseconds()}}
	} else if result, err = attachAndRun(ctx, client, ref, &p, createdAt); err != nil {
		return nil, err
	}
	result.Timings["uploadMs"] = uploadMs
	result.UnpackedBytes = uploaded
	return result, nil
}

func uploadTrees(ctx context.Context, client *agentclient.Client, id, rootfs string, trees repeated) (uint64, error) {
	all := append(repeated{agentapi.RootfsTreeName + "=" + rootfs}, trees...)
	var total uint64
	for _, tree := range all {
		name, dir, ok := strings.Cut(tree, "=")
		if !ok || dir == "" {
			return 0, fmt.Errorf("tree %q must be NAME=DIR", tree)
		}
		resp, err := client.PutTree(ctx, id, name, agentclient.TarDir(dir))
		if err != nil {
			return 0, err
		}
		total += resp.GetUnpackedBytes()
	}
	return total, nil
}

func parseMounts(specs repeated) ([]*agentapi.Mount, error) {
	var mounts []*agentapi.Mount
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("mount %q must be TREE[/PATH]:DEST[:ro]", spec)
		}
		tree, path, _ := strings.Cut(parts[0], "/")
		mounts = append(mounts, &agentapi.Mount{Tree: tree, Path: path, Destination: parts[1], Readonly: len(parts) == 3 && parts[2] == "ro"})
	}
	return mounts, nil
}

// attachAndRun reads the process's output from before it starts, starts it, feeds stdin, and
// waits for the exit. Its timings count from since, when the container or exec was asked for.
func attachAndRun(ctx context.Context, client *agentclient.Client, ref *agentapi.ProcessRef, p *processFlags, since time.Time) (*outcome, error) {
	var stdout, stderr bytes.Buffer
	first := &firstByte{w: &stdout}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	copyOut := func(i int, stream agentapi.OutputStream, w io.Writer) {
		defer wg.Done()
		errs[i] = client.CopyOutput(ctx, ref, stream, w)
	}
	wg.Add(2)
	go copyOut(0, agentapi.OutputStream_STDOUT, first)
	go copyOut(1, agentapi.OutputStream_STDERR, &stderr)
	resp, err := client.StartProcess(ctx, ref)
	if err != nil {
		return nil, err
	}
	if p.rows > 0 {
		if _, err := client.ResizeTerminal(ctx, &agentapi.ResizeTerminalRequest{Process: ref, Rows: uint32(p.rows), Columns: uint32(p.cols)}); err != nil {
			return nil, err
		}
	}
	if p.stdin {
		errs[2] = client.CopyStdin(ctx, ref, os.Stdin)
	}
	exit, err := client.WaitProcess(ctx, ref)
	if err != nil {
		return nil, err
	}
	exitMs := time.Since(since).Milliseconds()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	timings := map[string]int64{"firstOutputMs": first.at(since), "exitMs": exitMs}
	return &outcome{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: exit.GetExitCode(), Pid: resp.GetPid(), Timings: timings}, nil
}

// firstByte notes when the first byte passed through it.
type firstByte struct {
	w    io.Writer
	mu   sync.Mutex
	when time.Time
}

func (f *firstByte) Write(b []byte) (int, error) {
	f.mu.Lock()
	if f.when.IsZero() && len(b) > 0 {
		f.when = time.Now()
	}
	f.mu.Unlock()
	return f.w.Write(b)
}

func (f *firstByte) at(since time.Time) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.when.IsZero() {
		return -1
	}
	return f.when.Sub(since).Milliseconds()
}

func execute(ctx context.Context, client *agentclient.Client, args []string) (any, error) {
	var p processFlags
	flags := flag.NewFlagSet("exec", flag.ContinueOnError)
	p.register(flags)
	flags.StringVar(&p.exec, "exec", "", "exec id")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	started := time.Now()
	if _, err := client.ExecProcess(ctx, &agentapi.ExecProcessRequest{ContainerId: p.id, ExecId: p.exec, Process: p.process(flags.Args())}); err != nil {
		return nil, err
	}
	ref := &agentapi.ProcessRef{ContainerId: p.id, ExecId: p.exec}
	result, err := attachAndRun(ctx, client, ref, &p, started)
	if err != nil {
		return nil, err
	}
	if _, err := client.DeleteProcess(ctx, ref); err != nil {
		return nil, err
	}
	return result, nil
}

func signal(ctx context.Context, client *agentclient.Client, args []string) (any, error) {
	var id, exec string
	var number uint
	flags := flag.NewFlagSet("signal", flag.ContinueOnError)
	flags.StringVar(&id, "id", "", "container id")
	flags.StringVar(&exec, "exec", "", "exec id (none: the init process)")
	flags.UintVar(&number, "signal", 15, "signal number")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	ref := &agentapi.ProcessRef{ContainerId: id, ExecId: exec}
	if _, err := client.SignalProcess(ctx, &agentapi.SignalProcessRequest{Process: ref, Signal: uint32(number)}); err != nil {
		return nil, err
	}
	return client.WaitProcess(ctx, ref)
}

func remove(ctx context.Context, client *agentclient.Client, args []string) (any, error) {
	var id string
	var force bool
	flags := flag.NewFlagSet("delete", flag.ContinueOnError)
	flags.StringVar(&id, "id", "", "container id")
	flags.BoolVar(&force, "force", false, "kill a running container")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if _, err := client.DeleteContainer(ctx, &agentapi.DeleteContainerRequest{ContainerId: id, Force: force}); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": id}, nil
}

// oversizeTree sends a tar whose one entry claims more bytes than the agent takes.
func oversizeTree(ctx context.Context, client *agentclient.Client, args []string) (any, error) {
	var id string
	var size int64
	flags := flag.NewFlagSet("oversize-tree", flag.ContinueOnError)
	flags.StringVar(&id, "id", "", "container id")
	flags.Int64Var(&size, "bytes", 1<<40, "size the tar entry claims")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(&tar.Header{Name: "huge", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	buf.Write(make([]byte, 64<<10))
	return client.PutTree(ctx, id, agentapi.RootfsTreeName, &buf)
}

// callAsProtocol calls Health claiming another protocol version, as a mismatched node would.
func callAsProtocol(ctx context.Context, endpoint string, config *tls.Config, args []string) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("call-as-protocol needs a version")
	}
	conn, err := agentclient.ConnectTLS(ctx, endpoint, config)
	if err != nil {
		return nil, err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	md := ttrpc.MD{}
	md.Set(agentapi.ProtocolMetadataKey, args[0])
	return agentapi.NewAgentClient(client).Health(ttrpc.WithMetadata(ctx, md), &agentapi.HealthRequest{})
}
