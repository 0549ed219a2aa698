package reporting_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

// TestProblemsCarryTheRequestIDAndA405ItsAllow: reporting answers problems
// as the bff does, with the request id (the client's X-Request-Id when it
// sends a usable one, a minted one otherwise, echoed in the header), and a
// 405 lists the methods the path has.
func TestProblemsCarryTheRequestIDAndA405ItsAllow(t *testing.T) {
	e := newEnv(t)
	do := func(method, path, requestID string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, e.baseURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatalf("%s %s: decoding the problem: %v", method, path, err)
		}
		return resp, p
	}

	resp, p := do(http.MethodGet, "/v1/reports/orders?format=pdf", "client-chose-this:1")
	if p["request_id"] != "client-chose-this:1" || resp.Header.Get("X-Request-Id") != "client-chose-this:1" {
		t.Errorf("400 with request_id %v and X-Request-Id %q, want the client's", p["request_id"], resp.Header.Get("X-Request-Id"))
	}
	resp, p = do(http.MethodGet, "/v1/reports/orders?format=pdf", "not a token!")
	if id, _ := p["request_id"].(string); id == "" || id == "not a token!" || id != resp.Header.Get("X-Request-Id") {
		t.Errorf("400 with request_id %v and X-Request-Id %q, want one minted and echoed", p["request_id"], resp.Header.Get("X-Request-Id"))
	}

	resp, p = do(http.MethodDelete, "/v1/reports/orders", "")
	if resp.StatusCode != http.StatusMethodNotAllowed || p["request_id"] == nil {
		t.Fatalf("DELETE: status %d, problem %v; want 405 with a request id", resp.StatusCode, p)
	}
	if allow := resp.Header.Get("Allow"); allow != "GET" {
		t.Errorf("405 with Allow %q, want GET", allow)
	}
}
