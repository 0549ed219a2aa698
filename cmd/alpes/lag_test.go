package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/relay"
)

func lagServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	last := time.Now().Add(-3 * time.Second).UTC()
	report := relay.LagReport{Sources: []relay.SourceLag{{
		Source: "orders", Slot: "alpes_relay_orders", State: relay.StateStreaming, BytesBehind: 4096,
		SecondsBehind: 1.5, InFlight: 12, MessagesPublished: 900, LastPublishTime: &last, WALStatus: "reserved",
		ConfirmedFlushLSN: "0/16B3748", CurrentWALLSN: "0/16B4748",
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/lag" {
			http.NotFound(w, r)
			return
		}
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"title":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(report)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLagPrintsATable(t *testing.T) {
	srv := lagServer(t, "")
	out, err := alpes(t, "lag", "--url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SOURCE", "orders", "alpes_relay_orders", "streaming", "4096", "1.5", "900", "3s ago", "reserved"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestLagJSONAndToken(t *testing.T) {
	srv := lagServer(t, "s3cret")
	if _, err := alpes(t, "lag", "--url", srv.URL); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without the token: err = %v, want the 401 reported", err)
	}
	out, err := alpes(t, "lag", "--url", srv.URL, "--token", "s3cret", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var report relay.LagReport
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Sources) != 1 || report.Sources[0].BytesBehind != 4096 {
		t.Errorf("--json printed %q (%v)", out, err)
	}
}

func TestLagUnreachable(t *testing.T) {
	_, err := alpes(t, "lag", "--url", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "asking the relay") {
		t.Errorf("err = %v", err)
	}
}
