package agent

import (
	"os"
	"testing"
)

// testReaper is the one reaper of this test process: a second would race it for exits.
var testReaper *Reaper

func TestMain(m *testing.M) {
	var err error
	if testReaper, err = NewReaper(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
