package chaos_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/alpes/alpes/lab/chaos"
	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
)

// cleanReport is a run that should pass: enough orders and injections, all
// healed, nothing exited by itself, a clean verdict.
func cleanReport() chaos.Report {
	return chaos.Report{
		MinOrders: 1000, MinInjections: 2,
		Injections: []chaos.Injection{{Fault: chaos.Fault{Action: chaos.Kill, Target: "relay"}}, {Fault: chaos.Fault{Action: chaos.Crash, Target: chaos.Postgres}}},
		Client:     loadgen.Summary{Accepted: 1500},
		Verdict:    oracle.Verdict{Quiet: true, Checks: []oracle.CheckResult{{Name: "broker", Checked: 1500}}},
	}
}

// TestReportErr checks the soak's decision over a report: a clean report
// passes, and each way to fail trips it alone, with the right sentinel and
// the reason in the error and the summary.
func TestReportErr(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*chaos.Report)
		want   error  // nil: clean
		reason string // in the error and the summary
	}{
		{"clean", func(*chaos.Report) {}, nil, ""},
		{"violation", func(r *chaos.Report) { r.Verdict.Checks[0].Failed = 1 }, chaos.ErrViolated, "verdict is not clean (broker: 1 violations)"},
		{"violations of two checks", func(r *chaos.Report) {
			r.Verdict.Checks = append(r.Verdict.Checks, oracle.CheckResult{Name: "load", Checked: 1, Failed: 1})
			r.Verdict.Checks[0].Failed = 2
		}, chaos.ErrViolated, "verdict is not clean (broker: 2 violations, load: 1 violations)"},
		{"not quiet", func(r *chaos.Report) { r.Verdict.Quiet = false }, chaos.ErrViolated, "verdict is not clean (not quiet)"},
		{"exited by itself", func(r *chaos.Report) { r.Crashes = []string{"orders: signal: segmentation fault"} }, chaos.ErrInconclusive, "exited by themselves"},
		{"could not heal", func(r *chaos.Report) { r.Injections[0].Err = "relay not ready" }, chaos.ErrInconclusive, "could not heal"},
		{"too few orders", func(r *chaos.Report) { r.Client.Accepted = 999 }, chaos.ErrInconclusive, "too little load"},
		{"no minimum, no order", func(r *chaos.Report) { r.MinOrders, r.Client.Accepted = 0, 0 }, chaos.ErrInconclusive, "too little load"},
		{"too few injections", func(r *chaos.Report) { r.MinInjections = 3 }, chaos.ErrInconclusive, "too few faults"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cleanReport()
			tc.change(&r)
			err := r.Err()
			sum := r.Summary()
			if tc.want == nil {
				if err != nil || len(r.Problems()) > 0 {
					t.Fatalf("clean report: err %v, problems %q", err, r.Problems())
				}
				if !strings.Contains(sum, "chaos verdict: CLEAN") {
					t.Errorf("summary does not say CLEAN:\n%s", sum)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			other := chaos.ErrInconclusive
			if tc.want == chaos.ErrInconclusive {
				other = chaos.ErrViolated
			}
			if errors.Is(err, other) {
				t.Errorf("err = %v also wraps %v", err, other)
			}
			if len(r.Problems()) != 1 {
				t.Errorf("problems = %q, want one", r.Problems())
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err %q does not say %q", err, tc.reason)
			}
			if !strings.Contains(sum, "chaos verdict: NOT CLEAN") || !strings.Contains(sum, tc.reason) {
				t.Errorf("summary does not say NOT CLEAN because %q:\n%s", tc.reason, sum)
			}
		})
	}
}

// TestSummaryDuplicates checks that the summary shows the duplicates the
// broker dropped and the inboxes absorbed.
func TestSummaryDuplicates(t *testing.T) {
	r := cleanReport()
	r.Duplicates = chaos.Duplicates{Broker: 7, Inboxes: map[string]int64{"reporting": 3, "orders": 2}, Unexposed: []string{"bff"}}
	sum := r.Summary()
	if !strings.Contains(sum, "duplicates dropped by the broker: 7, absorbed by inboxes: 5") {
		t.Errorf("summary:\n%s", sum)
	}
}
