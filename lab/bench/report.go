package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Report is everything one benchmark run measured. Scenarios that did not
// run are nil. Its JSON form is docs/benchmarks.json.
type Report struct {
	// analysis is the link from the report to docs/performance.md, which
	// depends on where the report is written (see Write).
	analysis string
	Mode     string    `json:"mode"`
	Command  string    `json:"command"`
	Runs     int       `json:"runs"`
	Only     []string  `json:"only,omitempty"`
	Sizes    Sizes     `json:"sizes"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	// Settled says how quiet the box was as each scenario began.
	Settled []Settled `json:"settled,omitempty"`

	Throughput *Throughput       `json:"a_throughput,omitempty"`
	Floor      *Floor            `json:"a_floor,omitempty"`
	Drain      *Drain            `json:"b_drain,omitempty"`
	Latency    []*Latency        `json:"c_latency,omitempty"`
	Constancy  *Constancy        `json:"d_constancy,omitempty"`
	Broker     *BrokerThroughput `json:"broker,omitempty"`
	Scale      *Scale            `json:"scale,omitempty"`
	Errors     []string          `json:"errors,omitempty"`
}

// The files Write creates.
const (
	MarkdownFile = "benchmarks.md"
	JSONFile     = "benchmarks.json"
)

// Write writes the report into dir as MarkdownFile and JSONFile, and its
// pictures as SVG files under ChartsDir. Its links
// to the analysis point at docs/performance.md of the working directory
// (the repository's root, where `alpes bench` runs) from wherever dir is.
func (rep *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rep.analysis = analysisLink(dir)
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, JSONFile), js, 0o644); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, MarkdownFile), rep.Markdown(), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return writeCharts(dir, rep.charts())
}

// JSON is the report as indented JSON.
func (rep *Report) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return nil, fmt.Errorf("encoding the report: %w", err)
	}
	return buf.Bytes(), nil
}

// analysisLink is the relative link from a report in dir to
// docs/performance.md, or "performance.md" when there is no such file.
func analysisLink(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "performance.md"
	}
	target, err := filepath.Abs(filepath.Join("docs", "performance.md"))
	if err != nil {
		return "performance.md"
	}
	if _, err := os.Stat(target); err != nil {
		return "performance.md"
	}
	rel, err := filepath.Rel(abs, target)
	if err != nil {
		return "performance.md"
	}
	return filepath.ToSlash(rel)
}

// analysisPath is the link to docs/performance.md for the report's text.
func (rep *Report) analysisPath() string {
	if rep.analysis == "" {
		return "performance.md"
	}
	return rep.analysis
}
