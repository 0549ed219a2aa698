package devstack_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/lab/loadgen"
)

// TestGrafanaDashboardNamesOnlyMetricsThatExist runs the whole system,
// places orders, scrapes every process's /metrics (bff, orders, payments,
// reporting, the relay and the broker's admin port) and checks that every
// metric the Grafana dashboard in deploy/grafana queries is one of the
// families they serve, so that a renamed metric cannot leave a panel empty.
func TestGrafanaDashboardNamesOnlyMetricsThatExist(t *testing.T) {
	out := startStack(t)
	bff := urlAfter(t, out, "Public API (bff):")
	if _, err := loadgen.Run(context.Background(), loadgen.Config{BFFURL: bff, Rate: 20, Count: 40, Seed: 3, OutcomeWait: 30 * time.Second}); err != nil {
		t.Fatalf("placing orders: %v", err)
	}
	// A report through the bff, so that reporting's HTTP histogram has a
	// series (a labelled family appears with its first observation).
	resp, err := http.Get(bff + "/v1/reports/orders?format=json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/reports/orders through the bff: %s", resp.Status)
	}
	base := func(label, path string) string { return strings.TrimSuffix(urlAfter(t, out, label), path) }
	// Reporting observes a request when its handler has returned, which can
	// be after the bff has passed the whole answer on: wait for it.
	reporting := base("Reports:", "/v1/reports/orders?format=html")
	pgtest.WaitFor(t, 10*time.Second, "reporting's HTTP histogram", func() bool {
		return scrapeFamilies(t, "reporting", reporting+"/metrics")["alpes_reporting_http_request_duration_seconds"] == "histogram"
	})
	endpoints := map[string]string{
		"bff":       bff,
		"relay":     base("Relay lag:", "/v1/lag"),
		"orders":    base("Orders:", "/v1/progress"),
		"payments":  base("Payments:", "/v1/progress"),
		"reporting": reporting,
		"broker":    urlAfter(t, out, "admin:"),
	}
	families := map[string]string{} // name → type
	for name, u := range endpoints {
		for fam, typ := range scrapeFamilies(t, name, u+"/metrics") {
			families[fam] = typ
		}
	}

	raw, err := os.ReadFile("../../deploy/grafana/alpes.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	// The embedded broker's panel is for the embedded broker: a real Apache
	// Pulsar (make test-pulsar) serves its own metrics instead.
	embedded := strings.Contains(out, "(embedded broker)")
	metricName := regexp.MustCompile(`\b(alpes|process|go|pulsar_client|promhttp)_[a-zA-Z0-9_:]*`)
	checked := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, target := range p.Targets {
			for _, m := range metricName.FindAllString(target.Expr, -1) {
				checked++
				if !embedded && strings.HasPrefix(m, "alpes_broker_") {
					continue
				}
				if _, ok := families[m]; ok {
					continue
				}
				if fam, suffix := histogramPart(m); suffix != "" && families[fam] == "histogram" {
					continue
				}
				t.Errorf("panel %q queries %s, which no process serves", p.Title, m)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d metric names found in the dashboard's queries", checked)
	}
}

// histogramPart splits name into a histogram family and the suffix of one
// of its series (_bucket, _sum, _count); suffix is "" for other names.
func histogramPart(name string) (family, suffix string) {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, s); ok {
			return f, s
		}
	}
	return name, ""
}

// scrapeFamilies returns the metric families (# TYPE lines) served at url.
// It reads only the TYPE lines, not metricstest.Scrape's strict parse,
// because a real Apache Pulsar (make test-pulsar) serves the broker's
// metrics in a text that only needs to name its families here.
func scrapeFamilies(t *testing.T, who, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET %s: %s", who, url, resp.Status)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: reading %s: %v", who, url, err)
	}
	if out["process_resident_memory_bytes"] == "" {
		t.Errorf("%s serves no process collector", who)
	}
	return out
}
