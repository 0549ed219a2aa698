package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

func TestDefaultAdminURL(t *testing.T) {
	for _, c := range []struct{ service, want string }{
		{"pulsar://127.0.0.1:6650", "http://127.0.0.1:8080"},
		{"pulsar://broker.example:6650", "http://broker.example:8080"},
		{"pulsar+ssl://broker.example:6651", "https://broker.example:8443"},
		{"pulsar://b1:6650,b2:6650", "http://b1:8080"},
		{"pulsar://[::1]:6650", "http://[::1]:8080"},
		{"pulsar://broker", "http://broker:8080"},
	} {
		got, err := defaultAdminURL(c.service)
		if err != nil || got != c.want {
			t.Errorf("defaultAdminURL(%q) = %q, %v; want %q", c.service, got, err, c.want)
		}
	}
	if _, err := defaultAdminURL("not a url"); err == nil {
		t.Error("defaultAdminURL accepted a URL without a host")
	}
}

// TestRelayHelpShowsTheRunFlags: `alpes relay --help` shows the flags of
// the command an operator starts (run, relay's default), not only the list
// of relay's subcommands; explicit subcommands keep their own help.
func TestRelayHelpShowsTheRunFlags(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"relay", "--help"}, []string{"relay", "run", "--help"}},
		{[]string{"--log-level", "debug", "relay", "-h"}, []string{"--log-level", "debug", "relay", "run", "-h"}},
		{[]string{"relay", "replay", "--help"}, []string{"relay", "replay", "--help"}},
		{[]string{"relay", "--source", "a=b"}, []string{"relay", "--source", "a=b"}},
		{[]string{"lag", "--help"}, []string{"lag", "--help"}},
	} {
		if got := helpOfDefault(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("helpOfDefault(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var out bytes.Buffer
	parser, err := kong.New(&cli{}, defaults, kong.Name("alpes"), kong.Writers(&out, &out), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	parser.Parse(helpOfDefault([]string{"relay", "--help"}))
	if !strings.Contains(out.String(), "--source=NAME=DSN") || !strings.Contains(out.String(), "replay") {
		t.Errorf("alpes relay --help:\n%s\nwant run's flags and a word about replay", out.String())
	}
}
