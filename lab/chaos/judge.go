package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/procstack"
)

// ErrInconclusive means the run cannot vouch for the system even when the
// oracle found nothing: a component exited by itself, an injection could not
// heal, or the run saw too little (fewer accepted orders than
// Report.MinOrders, fewer injections than Report.MinInjections). Report.Err
// wraps it with the reasons, which the summary lists too.
var ErrInconclusive = errors.New("the soak is not clean")

// Problems lists, for people, why the run is not clean: the oracle's
// verdict, components that exited by themselves, injections that could not
// heal, and a run that saw too little. It is empty for a clean run.
func (r Report) Problems() []string {
	var ps []string
	if !r.Verdict.OK() {
		ps = append(ps, fmt.Sprintf("the oracle's verdict is not clean (%s)", verdictFaults(r.Verdict)))
	}
	ps = append(ps, r.runProblems()...)
	return ps
}

// verdictFaults names what makes a verdict not clean: the system did not
// go quiet, and each check with violations, with their count.
func verdictFaults(v oracle.Verdict) string {
	var fs []string
	if !v.Quiet {
		fs = append(fs, "not quiet")
	}
	for _, c := range v.Checks {
		if c.Failed > 0 {
			fs = append(fs, fmt.Sprintf("%s: %d violations", c.Name, c.Failed))
		}
	}
	return strings.Join(fs, ", ")
}

// runProblems are the problems of the run itself, the oracle's aside.
func (r Report) runProblems() []string {
	var ps []string
	if n := len(r.Crashes); n > 0 {
		ps = append(ps, fmt.Sprintf("%d component(s) exited by themselves: %s", n, strings.Join(r.Crashes, "; ")))
	}
	var unhealed []string
	for _, in := range r.Injections {
		if in.Err != "" {
			unhealed = append(unhealed, in.Fault.String()+": "+in.Err)
		}
	}
	if len(unhealed) > 0 {
		ps = append(ps, fmt.Sprintf("%d injection(s) could not heal: %s", len(unhealed), strings.Join(unhealed, "; ")))
	}
	// A run that accepted no order proves nothing, whatever the minimum said.
	if minOrders := max(r.MinOrders, 1); r.Client.Accepted < int64(minOrders) {
		ps = append(ps, fmt.Sprintf("too little load: %d orders accepted, fewer than the %d required", r.Client.Accepted, minOrders))
	}
	if len(r.Injections) < r.MinInjections {
		ps = append(ps, fmt.Sprintf("too few faults: %d injections, fewer than the %d required", len(r.Injections), r.MinInjections))
	}
	return ps
}

// Err is the run's outcome as an error: nil when it is clean; else it wraps
// ErrViolated when the oracle's verdict is not clean, and ErrInconclusive
// when the run itself went wrong or saw too little (both when both), with
// the reasons (Problems).
func (r Report) Err() error {
	ps := r.Problems()
	if len(ps) == 0 {
		return nil
	}
	var errs []error
	if !r.Verdict.OK() {
		errs = append(errs, ErrViolated)
	}
	if len(r.runProblems()) > 0 {
		errs = append(errs, ErrInconclusive)
	}
	return fmt.Errorf("%w: %s", errors.Join(errs...), strings.Join(ps, "; "))
}

// Duplicates are the re-sends the system absorbed, so that the oracle's
// "nothing twice" shows re-sends were really exercised. The components count
// them in memory, from zero in each incarnation: the soak reads a count
// just before it kills the component, and every count at the end (after
// the oracle, so that redeliveries while it waits for quiet count too), and sums
// them. A count lost (an incarnation that exited by itself, a reading that
// failed) is named in Lost, and the sums are lower bounds then; so they are
// for the instants between a reading and its kill.
type Duplicates struct {
	// Broker counts re-sends the broker receipted as duplicates and
	// dropped: the relay's duplicates_dropped (GET /v1/lag), over its
	// sources and incarnations.
	Broker int64 `json:"broker_dropped"`
	// Inboxes counts, by consumer, redeliveries its inbox found already
	// applied and skipped (inbox.Stats.Duplicates), for the consumers that
	// expose the count: orders, payments, reporting and the bff, as
	// alpes_<service>_events_duplicate_total at /metrics.
	Inboxes map[string]int64 `json:"inboxes_absorbed"`
	// Unexposed names the consumers whose inbox does not expose its count
	// (neither GET /v1/progress nor /metrics has it).
	Unexposed []string `json:"inboxes_unexposed,omitempty"`
	// Lost names the readings that could not be made.
	Lost []string `json:"lost,omitempty"`
}

// InboxTotal sums the inboxes' counts.
func (d Duplicates) InboxTotal() int64 {
	var n int64
	for _, c := range d.Inboxes {
		n += c
	}
	return n
}

// unexposedInboxes are the consumers whose inbox counts cannot be read:
// none, since every consumer serves them at /metrics.
var unexposedInboxes []string

// dupReader reads the duplicates count of component name's current
// incarnation (any instance: relay-2, orders-2, …); nil when it has none the
// soak can read. Relays report theirs at GET /v1/lag; orders, payments and
// reporting and the bff as alpes_<service>_events_duplicate_total at /metrics.
func dupReader(s *procstack.Stack, name string) func(context.Context) (int64, error) {
	p := s.Proc(name)
	if p == nil || p.URL == "" {
		return nil
	}
	service, _, _ := strings.Cut(name, "-")
	switch service {
	case "relay":
		return func(ctx context.Context) (int64, error) { return relayDuplicates(ctx, p.URL+"/v1/lag") }
	case "orders", "payments", "reporting", "bff":
		return func(ctx context.Context) (int64, error) {
			return promCounter(ctx, p.URL+"/metrics", "alpes_"+service+"_events_duplicate_total")
		}
	}
	return nil
}

// bank adds the current count of component name, if it has one,
// to d; failed readings go to d.Lost.
func (d *Duplicates) bank(ctx context.Context, s *procstack.Stack, name, when string) {
	read := dupReader(s, name)
	if read == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	n, err := read(ctx)
	if err != nil {
		d.Lost = append(d.Lost, fmt.Sprintf("%s %s: %v", name, when, err))
		return
	}
	service, _, _ := strings.Cut(name, "-")
	if service == "relay" {
		d.Broker += n
		return
	}
	if d.Inboxes == nil {
		d.Inboxes = map[string]int64{}
	}
	d.Inboxes[service] += n // the instances of a service together
}

// lose records that component name's count ended unread.
func (d *Duplicates) lose(s *procstack.Stack, name, why string) {
	if dupReader(s, name) != nil {
		d.Lost = append(d.Lost, name+": "+why)
	}
}

func getBody(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// relayDuplicates sums duplicates_dropped over the sources of the relay's
// GET /v1/lag (relay.LagReport).
func relayDuplicates(ctx context.Context, url string) (int64, error) {
	resp, err := getBody(ctx, url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var lag struct {
		Sources []struct {
			DuplicatesDropped int64 `json:"duplicates_dropped"`
		} `json:"sources"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&lag); err != nil {
		return 0, fmt.Errorf("reading %s: %w", url, err)
	}
	var n int64
	for _, s := range lag.Sources {
		n += s.DuplicatesDropped
	}
	return n, nil
}

// promCounter reads an unlabelled counter from a Prometheus text exposition.
func promCounter(ctx context.Context, url, name string) (int64, error) {
	resp, err := getBody(ctx, url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("reading %s from %s: %w", name, url, err)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no %s", url, name)
}
