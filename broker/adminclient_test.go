package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/alpes/alpes/broker/brokertest"
)

// The suite's admin API client: plain HTTP with Pulsar's paths, so that
// the same calls check the embedded broker and a real Pulsar.

// admin calls the admin API and decodes a JSON answer into out (if not
// nil and the answer has a body), returning the status code. It may be
// called from a cleanup: its deadline does not depend on t.Context().
func (e *env) admin(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	code, data := e.adminAs(t, method, path, jsonType, body)
	if out != nil && code < 300 && len(data) > 0 {
		if err := json.Unmarshal([]byte(data), out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return code
}

// adminAs calls the admin API with a body of the given media type ("" for
// none) and returns the status code and the body.
func (e *env) adminAs(t *testing.T, method, path, mediaType, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), receiveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.adminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if mediaType != "" {
		req.Header.Set("Content-Type", mediaType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// mustAdmin is admin for calls that must answer 204 No Content.
func (e *env) mustAdmin(t *testing.T, method, path, body string) {
	t.Helper()
	if code := e.admin(t, method, path, body, nil); code != http.StatusNoContent {
		t.Fatalf("%s %s: %d, want 204", method, path, code)
	}
}

// adminPath turns persistent://t/ns/x into /admin/v2/persistent/t/ns/x.
func adminPath(topic string) string {
	return "/admin/v2/" + strings.Replace(topic, "://", "/", 1)
}

// namespace creates a namespace of its own for the test, public/<unique>,
// with the given deduplication policy (nil: none, the broker's default
// applies), and deletes it with its topics when the test ends. Call it
// before creating the test's clients, so that they close first.
func (e *env) namespace(t *testing.T, dedup *bool) string {
	t.Helper()
	ns := "public/" + brokertest.UniqueName(t)
	e.mustAdmin(t, "PUT", "/admin/v2/namespaces/"+ns, "")
	t.Cleanup(func() { e.deleteNamespace(t, ns) })
	if dedup != nil {
		e.mustAdmin(t, "POST", "/admin/v2/namespaces/"+ns+"/deduplication", strconv.FormatBool(*dedup))
	}
	return ns
}

// deleteNamespace deletes the namespace's topics, then the namespace (a
// real Pulsar refuses to delete a namespace that has topics). Failures
// are reported, not fatal: the test's verdict stands.
func (e *env) deleteNamespace(t *testing.T, ns string) {
	var topics []string
	e.admin(t, "GET", "/admin/v2/persistent/"+ns, "", &topics)
	for _, tp := range topics {
		if code := e.admin(t, "DELETE", adminPath(tp)+"?force=true", "", nil); code != http.StatusNoContent && code != http.StatusNotFound {
			t.Logf("cleanup: deleting topic %s: %d", tp, code)
		}
	}
	if code := e.admin(t, "DELETE", "/admin/v2/namespaces/"+ns, "", nil); code != http.StatusNoContent {
		t.Logf("cleanup: deleting namespace %s: %d", ns, code)
	}
}

// unload unloads a topic: its clients are disconnected and reconnect, and
// Pulsar reloads it from storage. To send on a producer it disconnected,
// wait for its reconnection first (reconnectWatch).
func (e *env) unload(t *testing.T, topic string) {
	t.Helper()
	e.mustAdmin(t, "PUT", adminPath(topic)+"/unload", "")
}

func ptr[T any](v T) *T { return &v }

type subStats struct {
	MsgRateOut      float64 `json:"msgRateOut"`
	MsgBacklog      int64   `json:"msgBacklog"`
	UnackedMessages int64   `json:"unackedMessages"`
	Consumers       []struct {
		ConsumerName    string `json:"consumerName"`
		UnackedMessages int64  `json:"unackedMessages"`
	} `json:"consumers"`
}

type topicStats struct {
	MsgInCounter  int64               `json:"msgInCounter"`
	Publishers    []json.RawMessage   `json:"publishers"`
	Subscriptions map[string]subStats `json:"subscriptions"`
}
