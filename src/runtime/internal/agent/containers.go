package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
)

// deleteWaitTimeout bounds how long Delete waits for a killed container's init to be reaped.
const deleteWaitTimeout = 10 * time.Second

// Config is where containers live in the VM and how much they may take.
type Config struct {
	// BundleDir holds a folder per container (bundle, trees); a tmpfs of its own.
	BundleDir string
	// VolumeDir holds the pod volumes (emptyDirs) the pod's containers share.
	VolumeDir string
	RuncRoot  string
	// CgroupRoot is the cgroup2 mount; each container's cgroup is CgroupParent/<id> under it.
	CgroupRoot    string
	CgroupParent  string
	MaxContainers int
	MaxExecs      int
	Tree          TreeLimits
}

// exitWaiter hands out the exit of a pid that runc left to the agent (the Reaper).
type exitWaiter interface {
	WaitPid(pid int) <-chan runc.Exit
}

type container struct {
	id     string
	bundle string
	mu     sync.Mutex
	// trees are complete uploads (name to folder); uploads are those still arriving.
	trees   map[string]string
	uploads map[string]*treeUpload
	// init is set once runc created the container.
	init  *process
	execs map[string]*process
	// deleted is set once Delete removed the container: a call that found it before fails.
	deleted bool
}

// Containers is every container in the VM, by id.
type Containers struct {
	cfg     Config
	runtime Runtime
	exits   exitWaiter
	network *PodNetwork
	mu      sync.Mutex
	byID    map[string]*container
}

// NewContainers keeps the VM's containers; those created once network is set up join the pod's netns.
func NewContainers(cfg Config, runtime Runtime, exits exitWaiter, network *PodNetwork) *Containers {
	return &Containers{cfg: cfg, runtime: runtime, exits: exits, network: network, byID: map[string]*container{}}
}

func (cs *Containers) get(id string) (*container, error) {
	if err := validateContainerID(id); err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.byID[id]
	if !ok {
		return nil, notFound("no container %q in this VM", id)
	}
	return c, nil
}

// prepare is the container id's entry, made (with its bundle folder) by its first tree.
func (cs *Containers) prepare(id string) (*container, error) {
	if err := validateContainerID(id); err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.byID[id]; ok {
		return c, nil
	}
	if len(cs.byID) >= cs.cfg.MaxContainers {
		return nil, exhausted("this VM holds its limit of %d containers", cs.cfg.MaxContainers)
	}
	bundle := filepath.Join(cs.cfg.BundleDir, id)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return nil, internal(err, "making the bundle folder")
	}
	c := &container{id: id, bundle: bundle, trees: map[string]string{}, uploads: map[string]*treeUpload{}, execs: map[string]*process{}}
	cs.byID[id] = c
	return c, nil
}

func (cs *Containers) Count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.byID)
}

func (cs *Containers) WriteTree(req *agentapi.WriteTreeRequest) (*agentapi.WriteTreeResponse, error) {
	if err := validateTreeName(req.GetTree()); err != nil {
		return nil, err
	}
	c, err := cs.prepare(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	upload, err := c.upload(req, cs.cfg.Tree)
	if err != nil {
		return nil, err
	}
	resp, finished, err := upload.write(req)
	if finished {
		c.finishUpload(req.GetTree(), upload, err)
	}
	return resp, err
}

// upload is the tree's upload in progress, started by its first chunk.
func (c *container) upload(req *agentapi.WriteTreeRequest, limits TreeLimits) (*treeUpload, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tree := req.GetTree()
	if c.deleted {
		return nil, notFound("container %q was deleted", c.id)
	}
	if c.init != nil {
		return nil, precondition("container %q is created already: its trees come before CreateContainer", c.id)
	}
	if _, done := c.trees[tree]; done {
		return nil, status.Errorf(codes.AlreadyExists, "tree %q of container %q is uploaded already", tree, c.id)
	}
	if u, ok := c.uploads[tree]; ok {
		return u, nil
	}
	if req.GetOffset() != 0 {
		return nil, precondition("tree %q: the first chunk must be at offset 0, not %d", tree, req.GetOffset())
	}
	dir := treeDir(c.bundle, tree)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, internal(err, "making the tree folder")
	}
	u := startUpload(dir, limits)
	c.uploads[tree] = u
	return u, nil
}

func (c *container) finishUpload(tree string, u *treeUpload, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.uploads[tree] != u {
		return
	}
	delete(c.uploads, tree)
	if err == nil {
		c.trees[tree] = u.dir
	} else {
		_ = os.RemoveAll(u.dir)
	}
}

func treeDir(bundle, tree string) string {
	if tree == RootfsTree {
		return filepath.Join(bundle, RootfsTree)
	}
	return filepath.Join(bundle, "trees", tree)
}

func (cs *Containers) Create(ctx context.Context, req *agentapi.CreateContainerRequest) error {
	if err := validateProcess(req.GetProcess()); err != nil {
		return err
	}
	c, err := cs.get(req.GetContainerId())
	if err != nil {
		return status.Errorf(codes.NotFound, "%s: upload its rootfs first", status.Convert(err).Message())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.init != nil:
		return status.Errorf(codes.AlreadyExists, "container %q is created already", c.id)
	case len(c.uploads) > 0:
		return precondition("container %q still has trees uploading", c.id)
	case c.trees[RootfsTree] == "":
		return precondition("container %q has no rootfs: upload the tree %q first", c.id, RootfsTree)
	}
	if err := validateMounts(req.GetMounts(), c.trees); err != nil {
		return err
	}
	if err := makePodVolumes(cs.cfg.VolumeDir, req.GetMounts()); err != nil {
		return err
	}
	config, err := json.Marshal(containerSpec(c.id, req, c.trees, cs.cfg.VolumeDir, cs.cfg.CgroupParent, cs.network.Netns()))
	if err != nil {
		return internal(err, "writing config.json")
	}
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), config, 0o600); err != nil {
		return internal(err, "writing config.json")
	}
	proc, err := newProcess("", req.GetProcess())
	if err != nil {
		return err
	}
	pid, err := cs.runtime.Create(ctx, c.id, c.bundle, proc)
	if err == nil {
		err = proc.ran(pid, cs.exits.WaitPid(pid))
	}
	if err != nil {
		proc.closeIO()
		return err
	}
	c.init = proc
	return nil
}

func (cs *Containers) Exec(req *agentapi.ExecProcessRequest) error {
	if err := validateExecID(req.GetExecId()); err != nil {
		return err
	}
	if err := validateProcess(req.GetProcess()); err != nil {
		return err
	}
	c, err := cs.get(req.GetContainerId())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running() {
		return precondition("container %q is not running", c.id)
	}
	if _, ok := c.execs[req.GetExecId()]; ok {
		return status.Errorf(codes.AlreadyExists, "container %q already has an exec %q", c.id, req.GetExecId())
	}
	if len(c.execs) >= cs.cfg.MaxExecs {
		return exhausted("container %q holds its limit of %d exec'd processes", c.id, cs.cfg.MaxExecs)
	}
	proc, err := newProcess(req.GetExecId(), req.GetProcess())
	if err != nil {
		return err
	}
	proc.spec = processSpec(req.GetProcess())
	c.execs[req.GetExecId()] = proc
	return nil
}

// running: created, started and its init has not exited.
func (c *container) running() bool {
	return c.init != nil && c.init.started() && !c.init.hasExited()
}

func (cs *Containers) Start(ctx context.Context, ref *agentapi.ProcessRef) (*agentapi.StartProcessResponse, error) {
	c, err := cs.get(ref.GetContainerId())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref.GetExecId() == "" {
		return c.startInit(ctx, cs.runtime)
	}
	proc, ok := c.execs[ref.GetExecId()]
	switch {
	case !ok:
		return nil, notFound("container %q has no exec %q", c.id, ref.GetExecId())
	case proc.started():
		return nil, status.Errorf(codes.AlreadyExists, "exec %q of container %q was started already", proc.execID, c.id)
	case !c.running():
		return nil, precondition("container %q is not running", c.id)
	}
	pid, err := cs.runtime.Exec(ctx, c.id, c.bundle, proc)
	if err == nil {
		err = proc.ran(pid, cs.exits.WaitPid(pid))
	}
	if err != nil {
		proc.closeIO()
		delete(c.execs, proc.execID)
		return nil, err
	}
	proc.markStarted()
	return &agentapi.StartProcessResponse{Pid: uint32(pid)}, nil
}

func (c *container) startInit(ctx context.Context, runtime Runtime) (*agentapi.StartProcessResponse, error) {
	switch {
	case c.init == nil:
		return nil, precondition("container %q is not created yet", c.id)
	case c.init.started():
		return nil, status.Errorf(codes.AlreadyExists, "container %q was started already", c.id)
	}
	if err := runtime.Start(ctx, c.id); err != nil {
		return nil, err
	}
	c.init.markStarted()
	return &agentapi.StartProcessResponse{Pid: uint32(c.init.pid.Load())}, nil
}

// process is a container's process by reference (exec id "" for init).
func (cs *Containers) process(ref *agentapi.ProcessRef) (*container, *process, error) {
	c, err := cs.get(ref.GetContainerId())
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref.GetExecId() == "" {
		if c.init == nil {
			return nil, nil, precondition("container %q is not created yet", c.id)
		}
		return c, c.init, nil
	}
	proc, ok := c.execs[ref.GetExecId()]
	if !ok {
		return nil, nil, notFound("container %q has no exec %q", c.id, ref.GetExecId())
	}
	return c, proc, nil
}

func (cs *Containers) ReadOutput(ctx context.Context, req *agentapi.ReadOutputRequest) (*agentapi.ReadOutputResponse, error) {
	_, proc, err := cs.process(req.GetProcess())
	if err != nil {
		return nil, err
	}
	out := proc.stdout
	if req.GetStream() == agentapi.OutputStream_STDERR {
		out = proc.stderr
	} else if req.GetStream() != agentapi.OutputStream_STDOUT {
		return nil, invalid("unknown output stream %d", req.GetStream())
	}
	limit := int(req.GetMaxBytes())
	if limit == 0 {
		limit = DefaultReadBytes
	}
	data, eof, err := out.read(ctx, min(limit, MaxReadBytes))
	if err != nil {
		return nil, err
	}
	return &agentapi.ReadOutputResponse{Data: data, Eof: eof}, nil
}

func (cs *Containers) Signal(ctx context.Context, req *agentapi.SignalProcessRequest) error {
	if err := validateSignal(req.GetSignal()); err != nil {
		return err
	}
	c, proc, err := cs.process(req.GetProcess())
	if err != nil {
		return err
	}
	if !proc.started() || proc.hasExited() {
		return precondition("process %q of container %q is not running", proc.execID, c.id)
	}
	if proc == c.init {
		return cs.runtime.Kill(ctx, c.id, int(req.GetSignal()), req.GetAll())
	}
	if err := unix.Kill(int(proc.pid.Load()), unix.Signal(req.GetSignal())); err != nil {
		return internal(err, "signalling exec %q", proc.execID)
	}
	return nil
}

// Delete removes the container's runc state, cgroup, processes' stdio and bundle.
func (cs *Containers) Delete(ctx context.Context, req *agentapi.DeleteContainerRequest) error {
	c, err := cs.get(req.GetContainerId())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running() && !req.GetForce() {
		return precondition("container %q is running: signal it first, or delete with force", c.id)
	}
	for _, u := range c.uploads {
		u.abort()
	}
	if c.init != nil {
		if err := cs.runtime.Delete(ctx, c.id, true); err != nil {
			return err
		}
		c.init.awaitExit(deleteWaitTimeout)
		c.init.closeIO()
	}
	for _, proc := range c.execs {
		proc.closeIO()
	}
	c.deleted = true
	if err := os.RemoveAll(c.bundle); err != nil {
		return internal(err, "removing the bundle")
	}
	cs.mu.Lock()
	delete(cs.byID, c.id)
	cs.mu.Unlock()
	return nil
}

// DeleteProcess forgets an exec'd process that has exited (or never started).
func (cs *Containers) DeleteProcess(ref *agentapi.ProcessRef) error {
	if err := validateExecID(ref.GetExecId()); err != nil {
		return err
	}
	c, err := cs.get(ref.GetContainerId())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	proc, ok := c.execs[ref.GetExecId()]
	if !ok {
		return notFound("container %q has no exec %q", c.id, ref.GetExecId())
	}
	if proc.started() && !proc.hasExited() {
		return precondition("exec %q of container %q is still running: signal it first", proc.execID, c.id)
	}
	proc.closeIO()
	delete(c.execs, proc.execID)
	return nil
}

// makePodVolumes makes the pod volumes the mounts name that the pod has not got yet: empty, and
// writable by every user, as kubelet makes an emptyDir.
func makePodVolumes(dir string, mounts []*agentapi.Mount) error {
	for _, m := range mounts {
		if m.GetPodVolume() == "" {
			continue
		}
		volume := filepath.Join(dir, m.GetPodVolume())
		err := os.Mkdir(volume, 0o777)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			err = os.Chmod(volume, 0o777) // past the umask
		}
		if err != nil {
			return internal(err, "making pod volume %q", m.GetPodVolume())
		}
	}
	return nil
}
