// peerpods-agent is the agent in a pod VM: it serves agent.proto (pkg/agentapi) on the VM's agent
// port, runs the pod's containers with runc, and reports readiness and heartbeats on the status
// port the node reads. The VM's init execs it, so it is PID 1 and reaps every orphan.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"
	"github.com/containerd/ttrpc"
	"peerpods.io/runtime/internal/agent"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agenttls"
)

// version is set at build time to the hash of the runtime's sources.
var version = "dev"

type options struct {
	listen, tlsDir, statusPort, instanceID, stateDir, bootWorkload, bundleDir, volumeDir, runcBinary, runcRoot, cgroupParent, podNetns string
	heartbeat                                                                                                                          time.Duration
	maxTreeBytes, maxTreeEntries                                                                                                       uint64
	maxContainers, maxExecs                                                                                                            int
	noPivot                                                                                                                            bool
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.listen, "listen", ":1024", "TCP address the agent serves on")
	flag.StringVar(&o.tlsDir, "tls-dir", "", "folder of the VM's certificate and key ("+agenttls.CertFile+", "+agenttls.KeyFile+") and the trust bundle of client CAs ("+agenttls.BundleFile+"); without them the agent serves plain TCP")
	flag.StringVar(&o.statusPort, "status-port", "", "where ready and heartbeat lines go (the virtio-serial status port); none if empty")
	flag.StringVar(&o.instanceID, "instance-id", "", "the VM's instance id, reported by Health")
	flag.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "interval of heartbeat lines")
	flag.StringVar(&o.stateDir, "state-dir", "/run/peerpods", "user data, the workload script")
	flag.StringVar(&o.bootWorkload, "boot-workload", "", "a workload script the VM was booted with, started at once if it exists")
	flag.StringVar(&o.bundleDir, "bundle-dir", "/run/peerpods/containers", "container bundles and trees (a tmpfs of their own)")
	flag.StringVar(&o.volumeDir, "volume-dir", "/run/peerpods/volumes", "the pod volumes (emptyDirs) its containers share")
	flag.StringVar(&o.runcBinary, "runc", "/bin/runc", "the runc binary")
	flag.StringVar(&o.runcRoot, "runc-root", "/run/runc", "runc's state folder")
	flag.StringVar(&o.podNetns, "pod-netns", "/run/netns/pod", "where SetupNetwork bind-mounts the pod's network namespace, which its containers join")
	flag.StringVar(&o.cgroupParent, "cgroup-parent", "/peerpods", "the cgroup (under /sys/fs/cgroup) that holds each container's")
	flag.BoolVar(&o.noPivot, "no-pivot", true, "runc without pivot_root (the VM's root is an initramfs)")
	flag.Uint64Var(&o.maxTreeBytes, "max-tree-bytes", 1<<30, "largest tree (rootfs or files) one upload may unpack")
	flag.Uint64Var(&o.maxTreeEntries, "max-tree-entries", 200_000, "most entries in one tree")
	flag.IntVar(&o.maxContainers, "max-containers", 64, "most containers in the VM")
	flag.IntVar(&o.maxExecs, "max-execs", 256, "most exec'd processes per container")
	flag.Parse()
	return o
}

func main() {
	o := parseFlags()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("instance", o.instanceID)
	if err := run(o, log); err != nil {
		log.Error("agent stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(o options, log *slog.Logger) error {
	for _, dir := range []string{o.stateDir, o.bundleDir, o.volumeDir, o.runcRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	reaper, err := agent.NewReaper()
	if err != nil {
		return fmt.Errorf("becoming the reaper of orphans: %w", err)
	}
	runc.Monitor = reaper
	status, err := openStatusPort(o.statusPort)
	if err != nil {
		return err
	}
	cfg := agent.Config{
		BundleDir: o.bundleDir, VolumeDir: o.volumeDir, RuncRoot: o.runcRoot, CgroupRoot: "/sys/fs/cgroup", CgroupParent: o.cgroupParent,
		MaxContainers: o.maxContainers, MaxExecs: o.maxExecs,
		Tree: agent.TreeLimits{MaxBytes: o.maxTreeBytes, MaxEntries: o.maxTreeEntries, Room: agent.FolderRoom(o.bundleDir)},
	}
	runtime := &agent.Runc{Binary: o.runcBinary, Root: o.runcRoot, NoPivot: o.noPivot}
	workload := &agent.Workload{
		Script: o.stateDir + "/workload.sh", Shell: "/bin/sh", Output: workloadOutput, Monitor: reaper, Status: status,
	}
	network := &agent.PodNetwork{Path: o.podNetns}
	server := &agent.Server{
		Containers: agent.NewContainers(cfg, runtime, reaper, network), Config: cfg, Network: network, Workload: workload,
		UserDataFile: o.stateDir + "/user-data", InstanceID: o.instanceID, AgentVersion: version,
		RuncVersion: sync.OnceValue(func() string { return runcVersion(o.runcBinary) }), Log: log,
	}
	if userData, err := os.ReadFile(server.UserDataFile); err == nil {
		server.NotePod(userData)
	}
	ttrpcServer, err := ttrpc.NewServer(ttrpc.WithUnaryServerInterceptor(server.Intercept))
	if err != nil {
		return err
	}
	agentapi.RegisterAgentService(ttrpcServer, server)
	agent.RegisterKataRefusal(ttrpcServer)
	listener, err := listen(o, log)
	if err != nil {
		return err
	}
	if err := startBootWorkload(workload, o.bootWorkload); err != nil {
		log.Error("the boot workload did not start", "error", err.Error())
	}
	served := make(chan error, 1)
	go func() { served <- ttrpcServer.Serve(context.Background(), listener) }()
	status.Ready(agent.UptimeMs(), agent.KernelRelease())
	log.Info("agent serving", "pod", server.Pod(), "listen", o.listen, "mutualTLS", agenttls.Present(o.tlsDir), "version", version)
	go status.Heartbeats(context.Background(), o.heartbeat, agent.UptimeMs, workload.State)
	return <-served
}

// listen opens the agent port: mutual TLS when the VM was given its certificate, plain TCP (and a
// warning) only when it was given none at all; a certificate that does not load stops the agent.
func listen(o options, log *slog.Logger) (net.Listener, error) {
	listener, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	if !agenttls.Present(o.tlsDir) {
		log.Warn("no agent TLS certificate in the user data: the agent port is plain TCP and anyone who reaches it can run processes here", "tlsDir", o.tlsDir)
		return listener, nil
	}
	config, err := agenttls.ServerConfig(o.tlsDir)
	if err != nil {
		_ = listener.Close()
		return nil, err
	}
	return agenttls.NewListener(listener, config, 10*time.Second, log), nil
}

func openStatusPort(path string) (*agent.StatusPort, error) {
	if path == "" {
		return agent.NewStatusPort(io.Discard), nil
	}
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the status port: %w", err)
	}
	return agent.NewStatusPort(file), nil
}

// workloadOutput is the virtio port the node logs the workload's output from, or /dev/null.
func workloadOutput() (*os.File, error) {
	if port := agent.VirtioPort("peerpods.workload"); port != "" {
		return os.OpenFile(port, os.O_WRONLY, 0)
	}
	return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
}

// startBootWorkload runs the workload the VM was booted with (its initramfs overlay), if any.
func startBootWorkload(workload *agent.Workload, script string) error {
	if script == "" {
		return nil
	}
	data, err := os.ReadFile(script)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return workload.Start(string(data))
}

func runcVersion(binary string) string {
	cmd := exec.Command(binary, "--version")
	var out strings.Builder
	cmd.Stdout = &out
	exit, err := runc.Monitor.Start(cmd)
	if err != nil {
		return ""
	}
	_, _ = runc.Monitor.Wait(cmd, exit)
	first, _, _ := strings.Cut(out.String(), "\n")
	return first
}
