package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/alpes/alpes/lab/bench"
)

type benchCmd struct {
	Quick bool     `help:"Small sizes and one run: minutes, for a check, not for the record."`
	Runs  int      `help:"Runs of each scenario; figures are their median (default 3, 1 with --quick)."`
	Out   string   `help:"Directory that receives benchmarks.md and benchmarks.json." default:"docs" type:"path"`
	Only  []string `help:"Run only these scenarios: A (with its reference, floor), floor (the Postgres floor alone), B, C, D, E (B and D), broker, scale (the consumer stage with 1, 2 and 4 instances, each process held to a share of a core in a CPU cgroup, which needs root or a delegated cgroup). B and broker also run the real Apache Pulsar standalone (needs Java 17+, and Maven for its first fetch)." sep:","`
}

func (c *benchCmd) Run(ctx context.Context, e env) error {
	opts := bench.Options{
		Sizes: bench.FullSizes(), Mode: "full", Runs: 3, Out: c.Out, Only: c.Only,
		Progress: os.Stderr, Logger: e.log, Command: c.commandLine(),
	}
	if c.Quick {
		opts.Sizes, opts.Mode, opts.Runs = bench.QuickSizes(), "quick", 1
	}
	if c.Runs > 0 {
		opts.Runs = c.Runs
	}
	rep, err := bench.Run(ctx, opts)
	if rep != nil && c.Out != "" {
		fmt.Fprintf(e.stdout, "report: %s/%s, raw numbers: %s/%s\n", c.Out, bench.MarkdownFile, c.Out, bench.JSONFile)
	}
	return err
}

// commandLine is the command as the report shows it.
func (c *benchCmd) commandLine() string {
	s := "alpes bench"
	if c.Quick {
		s += " --quick"
	}
	if c.Runs > 0 {
		s += fmt.Sprintf(" --runs %d", c.Runs)
	}
	if len(c.Only) > 0 {
		s += " --only " + strings.Join(c.Only, ",")
	}
	return s
}
