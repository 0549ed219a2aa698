package oracle

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
)

// maxListed bounds the violations a CheckResult lists; Failed counts them all.
const maxListed = 25

// CheckResult is the result of one check: how many things it looked at, how many
// broke its rule, and the first few of those, described.
type CheckResult struct {
	Name string `json:"name"`
	// Rule says what the check asserts, in one sentence.
	Rule       string   `json:"rule"`
	Checked    int      `json:"checked"`
	Failed     int      `json:"failed"`
	Violations []string `json:"violations,omitempty"`
}

// fail records one violation.
func (c *CheckResult) fail(format string, args ...any) {
	c.Failed++
	if len(c.Violations) < maxListed {
		c.Violations = append(c.Violations, fmt.Sprintf(format, args...))
	}
}

// Verdict is what the oracle found. It is clean when every check passed and
// the system was quiet.
type Verdict struct {
	// Quiet says whether the system went quiet before the deadline
	// (Config.QuietTimeout): every relay slot caught up with the WAL, every
	// outbox event in every consumer's inbox, every order terminal, nothing
	// changing. QuietWait is how long the oracle waited, and StillMoving
	// what was still moving when it was not quiet. (The JSON names are
	// older than these and kept for the reports' readers.)
	Quiet       bool          `json:"settled"`
	QuietWait   time.Duration `json:"settle_took_ns"`
	StillMoving string        `json:"unsettled,omitempty"`
	// Ops counts the ledger's operations by fate; UnknownWritten of the
	// unknown ones created an order, the others nothing.
	Ops            loadgen.FateCounts `json:"ops"`
	UnknownWritten int                `json:"unknown_written"`
	// Orders is how many orders the system should hold: the ok ones and
	// the unknown ones that were written. Unrecorded of them come from
	// operations that did not record what they placed: their content is
	// compared among the databases only.
	Orders     int `json:"orders"`
	Unrecorded int `json:"orders_unrecorded,omitempty"`
	// Events counts outbox events by topic; BrokerMessages the messages
	// read from the broker by topic (duplicates included).
	Events         map[string]int `json:"events"`
	BrokerMessages map[string]int `json:"broker_messages"`
	Checks         []CheckResult  `json:"checks"`
}

// OK reports whether the system was quiet and no check found a violation.
func (v Verdict) OK() bool { return v.Quiet && v.Violations() == 0 }

// Violations counts the violations of every check.
func (v Verdict) Violations() int {
	n := 0
	for _, c := range v.Checks {
		n += c.Failed
	}
	return n
}

// String renders the verdict for people: one line per check, then the
// violations found.
func (v Verdict) String() string {
	var b strings.Builder
	verdict := "CLEAN"
	if !v.OK() {
		verdict = fmt.Sprintf("VIOLATED (%d violations)", v.Violations())
	}
	fmt.Fprintf(&b, "oracle verdict: %s\n", verdict)
	if v.Quiet {
		fmt.Fprintf(&b, "  quiet after %s\n", v.QuietWait.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "  NOT quiet after %s: %s\n", v.QuietWait.Round(time.Millisecond), v.StillMoving)
	}
	fmt.Fprintf(&b, "  ops: %d ok, %d failed, %d unknown (%d of them written); %d orders expected\n",
		v.Ops.OK, v.Ops.Failed, v.Ops.Unknown, v.UnknownWritten, v.Orders)
	if v.Unrecorded > 0 {
		fmt.Fprintf(&b, "  %d orders of operations that did not record what they placed: compared among the databases only\n", v.Unrecorded)
	}
	for _, topic := range slices.Sorted(maps.Keys(v.Events)) {
		fmt.Fprintf(&b, "  %s: %d outbox events, %d broker messages\n", topic, v.Events[topic], v.BrokerMessages[topic])
	}
	for _, c := range v.Checks {
		mark := "ok  "
		if c.Failed > 0 {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-22s %7d checked, %d violations: %s\n", mark, c.Name, c.Checked, c.Failed, c.Rule)
		for _, s := range c.Violations {
			fmt.Fprintf(&b, "         - %s\n", s)
		}
		if c.Failed > len(c.Violations) {
			fmt.Fprintf(&b, "         … and %d more\n", c.Failed-len(c.Violations))
		}
	}
	return b.String()
}
