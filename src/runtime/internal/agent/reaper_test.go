package agent

import (
	"os/exec"
	"testing"
	"time"
)

func TestReaperExitCodes(t *testing.T) {
	for script, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -TERM $$": 128 + 15} {
		cmd := exec.Command("/bin/sh", "-c", script)
		exit, err := testReaper.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := testReaper.Wait(cmd, exit); code != want {
			t.Errorf("%q: exit code %d, want %d", script, code, want)
		}
	}
}

// A process runc leaves to the agent can exit before the agent reads its pid.
func TestReaperKeepsAnExitNobodyWaitedForYet(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case exit := <-testReaper.WaitPid(cmd.Process.Pid):
		if exit.Status != 7 {
			t.Errorf("exit %d, want 7", exit.Status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the early exit was lost")
	}
}
