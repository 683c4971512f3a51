package agent

import (
	"context"
	"io"
	"testing"
	"time"
)

func TestOutputReadsWhatThePipeHolds(t *testing.T) {
	r, w := io.Pipe()
	o := newOutput()
	go o.pump(r)
	go func() {
		_, _ = w.Write([]byte("hello "))
		_, _ = w.Write([]byte("world"))
		_ = w.Close()
	}()
	var got []byte
	for {
		data, eof, err := o.read(context.Background(), 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 4 {
			t.Fatalf("read %d bytes past the limit of 4", len(data))
		}
		got = append(got, data...)
		if eof {
			break
		}
	}
	if string(got) != "hello world" {
		t.Errorf("got %q", got)
	}
}

func TestOutputKeepsDataForTheNextReader(t *testing.T) {
	r, w := io.Pipe()
	o := newOutput()
	go o.pump(r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := o.read(ctx, 10); err == nil {
		t.Fatal("a read with nothing to read must wait until its deadline")
	}
	go func() { _, _ = w.Write([]byte("late")) }()
	data, eof, err := o.read(context.Background(), 10)
	if string(data) != "late" || eof || err != nil {
		t.Fatalf("got %q eof=%v err=%v", data, eof, err)
	}
	o.close()
	if _, eof, _ := o.read(context.Background(), 10); !eof {
		t.Error("a closed output reads as its end")
	}
}
