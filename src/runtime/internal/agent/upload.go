package agent

import (
	"errors"
	"io"
	"sync"

	"peerpods.io/runtime/pkg/agentapi"
)

// errUploadAborted ends an upload whose container is deleted before the tree was complete.
var errUploadAborted = errors.New("the container was deleted during the upload")

// treeUpload unpacks one tree while its chunks arrive: WriteTree feeds a pipe, a goroutine reads
// the tar stream from it. Chunks must come in order; a lost or repeated one is refused.
type treeUpload struct {
	mu       sync.Mutex
	dir      string
	received uint64
	pipe     *io.PipeWriter
	done     chan struct{}
	stats    treeStats
	err      error
}

func startUpload(dir string, limits TreeLimits) *treeUpload {
	reader, writer := io.Pipe()
	u := &treeUpload{dir: dir, pipe: writer, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		u.stats, u.err = unpackTree(reader, dir, limits)
		if u.err != nil {
			reader.CloseWithError(u.err)
			return
		}
		// A tar stream ends before its padding: the rest is read and dropped.
		_, _ = io.Copy(io.Discard, reader)
	}()
	return u
}

// write appends one chunk; the last one waits for the tree to be unpacked. finished is true once
// the upload is over, well or not, and the caller forgets it.
func (u *treeUpload) write(req *agentapi.WriteTreeRequest) (resp *agentapi.WriteTreeResponse, finished bool, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if req.GetOffset() != u.received {
		return nil, false, precondition("tree %q: chunk at offset %d, but %d bytes were received", req.GetTree(), req.GetOffset(), u.received)
	}
	if len(req.GetData()) > 0 {
		if _, err := u.pipe.Write(req.GetData()); err != nil {
			<-u.done
			return nil, true, u.failure()
		}
		u.received += uint64(len(req.GetData()))
	}
	if !req.GetLast() {
		return &agentapi.WriteTreeResponse{Received: u.received}, false, nil
	}
	_ = u.pipe.Close()
	<-u.done
	if u.err != nil {
		return nil, true, u.failure()
	}
	return &agentapi.WriteTreeResponse{Received: u.received, UnpackedBytes: u.stats.bytes, Entries: u.stats.entries}, true, nil
}

func (u *treeUpload) failure() error {
	if u.err != nil {
		return u.err
	}
	return errUploadAborted
}

// abort ends an unfinished upload and waits for its goroutine.
func (u *treeUpload) abort() {
	u.pipe.CloseWithError(errUploadAborted)
	<-u.done
}
