package main

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	cases := map[string]struct {
		args     []string
		mentions string
	}{
		"no command":      {nil, "no command"},
		"unknown command": {[]string{"connect"}, `unknown command "connect"`},
		"missing flags":   {[]string{"attach", "--netns", "/run/netns/x"}, "--sandbox --vm-ip"},
		"unknown flag":    {[]string{"detach", "--netns", "/x", "--force"}, "force"},
		"extra argument":  {[]string{"detach", "--netns", "/x", "now"}, `unexpected argument "now"`},
	}
	for name, c := range cases {
		err := run(c.args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.mentions) {
			t.Errorf("%s: got %v, want a usage error mentioning %q", name, err, c.mentions)
		}
	}
}

func TestDetachOfAGoneNetnsSucceeds(t *testing.T) {
	if err := run([]string{"detach", "--netns", filepath.Join(t.TempDir(), "gone")}, io.Discard, io.Discard); err != nil {
		t.Errorf("detach: %v", err)
	}
}
