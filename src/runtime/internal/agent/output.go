package agent

import (
	"context"
	"io"
)

const (
	outputChunkBytes = 32 << 10
	// DefaultReadBytes and MaxReadBytes bound one ReadOutput answer.
	DefaultReadBytes = 64 << 10
	MaxReadBytes     = 1 << 20
)

// output is one output stream of a process. A pump reads it a chunk at a time into a channel
// that ReadOutput drains, so output waits in the process's pipe until a client asks for it (the
// process blocks when nobody reads) and a reader that gives up loses nothing.
type output struct {
	chunks chan []byte
	// turn admits one reader at a time; held is what the last reader took but did not return.
	turn chan struct{}
	held []byte
	quit chan struct{}
}

func newOutput() *output {
	return &output{chunks: make(chan []byte, 1), turn: make(chan struct{}, 1), quit: make(chan struct{})}
}

// closedOutput is an output with nothing in it (stderr of a process on a terminal).
func closedOutput() *output {
	o := newOutput()
	close(o.chunks)
	return o
}

// pump copies r into the output until r ends or the output is closed.
func (o *output) pump(r io.Reader) {
	defer close(o.chunks)
	for {
		buf := make([]byte, outputChunkBytes)
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case o.chunks <- buf[:n]:
			case <-o.quit:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close ends the output for its readers and stops a pump that waits for one; the process's pipe is
// closed by its owner.
func (o *output) close() {
	select {
	case <-o.quit:
	default:
		close(o.quit)
	}
}

// read answers up to limit bytes, waiting for the first; eof once the stream has ended.
func (o *output) read(ctx context.Context, limit int) (data []byte, eof bool, err error) {
	select {
	case o.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-o.turn }()
	if len(o.held) == 0 {
		select {
		case chunk, ok := <-o.chunks:
			if !ok {
				return nil, true, nil
			}
			o.held = chunk
		case <-o.quit:
			return nil, true, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	for len(data) < limit {
		if len(o.held) == 0 && !o.next() {
			break
		}
		n := min(limit-len(data), len(o.held))
		data = append(data, o.held[:n]...)
		o.held = o.held[n:]
	}
	return data, false, nil
}

// next takes a chunk that is already waiting, without blocking.
func (o *output) next() bool {
	select {
	case chunk, ok := <-o.chunks:
		if ok {
			o.held = chunk
		}
		return ok
	default:
		return false
	}
}
