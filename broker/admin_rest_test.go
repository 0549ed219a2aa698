package broker_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/alpes/alpes/broker/brokertest"
)

// Differential tests of the admin REST API: each request is one that
// pulsar-admin, pulsarctl or a tool sends, and each expected status is
// what Pulsar 4.0.8 answers; both brokers must answer the same.

const (
	jsonType     = "application/json"
	metadataType = "application/vnd.partitioned-topic-metadata+json"
)

// TestAdminCreatePartitionedTopicBodies creates partitioned topics with
// every body form Pulsar's admin clients send, and the malformed ones, and
// checks the partition count each created topic has.
func TestAdminCreatePartitionedTopicBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, nil)
	for _, tc := range []struct {
		name, mediaType, body string
		status, partitions    int
	}{
		{"pulsar-admin: a bare number", jsonType, "3", http.StatusNoContent, 3},
		{"pulsar-admin with properties", metadataType, `{"partitions":2,"properties":{"owner":"orders"}}`, http.StatusNoContent, 2},
		{"pulsarctl: metadata with null properties", metadataType, `{"properties":null,"partitions":4}`, http.StatusNoContent, 4},
		{"a number under the metadata type", metadataType, "2", http.StatusNoContent, 2},
		{"metadata with unknown fields", metadataType, `{"partitions":2,"deleted":false}`, http.StatusNoContent, 2},
		{"a numeric string", jsonType, `"5"`, http.StatusNoContent, 5},
		{"an integral float", jsonType, "2.0", http.StatusNoContent, 2},
		{"a number as text", "text/plain", "2", http.StatusNoContent, 2},
		{"zero partitions", jsonType, "0", http.StatusNotAcceptable, 0},
		{"negative partitions", jsonType, "-1", http.StatusNotAcceptable, 0},
		{"metadata without partitions", metadataType, `{"properties":{"a":"b"}}`, http.StatusNotAcceptable, 0},
		{"an object as plain JSON", jsonType, `{"partitions":2}`, http.StatusBadRequest, 0},
		{"not JSON", jsonType, "three", http.StatusBadRequest, 0},
		{"an empty body", jsonType, "", http.StatusBadRequest, 0},
		{"a form", "application/x-www-form-urlencoded", "3", http.StatusUnsupportedMediaType, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := adminPath("persistent://" + ns + "/" + brokertest.UniqueName(t))
			t.Cleanup(func() { e.admin(t, "DELETE", path+"/partitions?force=true", "", nil) })
			code, body := e.adminAs(t, "PUT", path+"/partitions", tc.mediaType, tc.body)
			if code != tc.status {
				t.Fatalf("PUT %s (%s %q): %d %s, want %d", path, tc.mediaType, tc.body, code, body, tc.status)
			}
			var meta struct {
				Partitions int  `json:"partitions"`
				Deleted    bool `json:"deleted"`
			}
			code = e.admin(t, "GET", path+"/partitions", "", &meta)
			switch {
			case tc.partitions == 0 && code != http.StatusNotFound:
				t.Fatalf("GET partitions of a topic never created: %d, want 404", code)
			case tc.partitions > 0 && (code != http.StatusOK || meta.Partitions != tc.partitions || meta.Deleted):
				t.Fatalf("GET partitions: %d %+v, want %d partitions", code, meta, tc.partitions)
			}
		})
	}
}

// TestAdminStatusCodes walks the admin endpoints the broker serves through
// the situations pulsar-admin meets, in order, with Pulsar's answers.
func TestAdminStatusCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, nil)
	topics := "/admin/v2/persistent/" + ns
	plain, parted, missing := topics+"/plain", topics+"/parted", topics+"/missing"
	unknownNS := "/admin/v2/namespaces/public/" + brokertest.UniqueName(t)
	steps := []struct {
		method, path, mediaType, body string
		status                        int
	}{
		{"PUT", "/admin/v2/namespaces/" + ns, jsonType, "", http.StatusConflict},
		{"GET", unknownNS + "/deduplication", "", "", http.StatusNotFound},
		{"GET", "/admin/v2/persistent/" + strings.TrimPrefix(unknownNS, "/admin/v2/namespaces/"), "", "", http.StatusNotFound},
		{"GET", "/admin/v2/persistent/" + strings.TrimPrefix(unknownNS, "/admin/v2/namespaces/") + "/partitioned", "", "", http.StatusNotFound},
		// pulsar-admin topics create: a body of properties, {} without any.
		{"PUT", plain, jsonType, "{}", http.StatusNoContent},
		{"PUT", plain, jsonType, "{}", http.StatusConflict},
		{"PUT", topics + "/with-props", jsonType, `{"owner":"orders"}`, http.StatusNoContent},
		{"PUT", topics + "/no-body", "", "", http.StatusNoContent},
		{"PUT", topics + "/bad-props", jsonType, "props", http.StatusBadRequest},
		{"GET", plain + "/partitions", "", "", http.StatusOK},
		{"GET", missing + "/partitions", "", "", http.StatusNotFound},
		{"PUT", plain + "/partitions", jsonType, "2", http.StatusConflict},
		{"PUT", parted + "/partitions", jsonType, "3", http.StatusNoContent},
		{"PUT", parted + "/partitions", jsonType, "3", http.StatusConflict},
		{"PUT", parted, jsonType, "{}", http.StatusConflict},
		// Pulsar creates the partitions with the partitioned topic.
		{"PUT", parted + "-partition-0", jsonType, "{}", http.StatusConflict},
		{"GET", parted + "-partition-1/partitions", "", "", http.StatusOK},
		{"GET", parted + "-partition-1/stats", "", "", http.StatusOK},
		{"GET", parted + "-partition-2/subscriptions", "", "", http.StatusOK},
		{"PUT", parted + "-partition-0/partitions", jsonType, "2", http.StatusPreconditionFailed},
		// pulsar-admin topics update-partitioned-topic: a bare number.
		{"POST", parted + "/partitions", jsonType, "2", http.StatusUnprocessableEntity},
		{"POST", parted + "/partitions", jsonType, "3", http.StatusNoContent},
		{"POST", parted + "/partitions", jsonType, "4", http.StatusNoContent},
		{"POST", parted + "/partitions", metadataType, `{"partitions":5}`, http.StatusBadRequest},
		{"POST", plain + "/partitions", jsonType, "4", http.StatusConflict},
		{"POST", missing + "/partitions", jsonType, "4", http.StatusConflict},
		{"GET", plain + "/stats", "", "", http.StatusOK},
		{"GET", parted + "/stats", "", "", http.StatusNotFound},
		{"GET", missing + "/stats", "", "", http.StatusNotFound},
		{"GET", parted + "/partitioned-stats", "", "", http.StatusOK},
		{"GET", plain + "/partitioned-stats", "", "", http.StatusNotFound},
		{"GET", plain + "/subscriptions", "", "", http.StatusOK},
		{"GET", missing + "/subscriptions", "", "", http.StatusNotFound},
		{"PUT", plain + "/subscription/s", jsonType, "", http.StatusNoContent},
		{"PUT", plain + "/subscription/s", jsonType, "", http.StatusConflict},
		{"POST", plain + "/subscription/s/skip_all", jsonType, "", http.StatusNoContent},
		{"POST", plain + "/subscription/none/skip_all", jsonType, "", http.StatusNotFound},
		{"POST", plain + "/subscription/s/resetcursor/0", jsonType, "", http.StatusNoContent},
		{"POST", plain + "/subscription/none/resetcursor/0", jsonType, "", http.StatusNotFound},
		{"POST", plain + "/subscription/s/resetcursor/yesterday", jsonType, "", http.StatusNotFound},
		{"DELETE", plain + "/subscription/s", "", "", http.StatusNoContent},
		{"DELETE", plain + "/subscription/s", "", "", http.StatusNotFound},
		{"GET", plain + "/deduplicationEnabled", "", "", http.StatusOK},
		{"POST", plain + "/deduplicationEnabled", jsonType, "true", http.StatusNoContent},
		{"POST", plain + "/deduplicationEnabled", jsonType, "maybe", http.StatusBadRequest},
		{"DELETE", plain + "/deduplicationEnabled", "", "", http.StatusNoContent},
		{"PUT", plain + "/unload", jsonType, "", http.StatusNoContent},
		{"PUT", parted + "/unload", jsonType, "", http.StatusNoContent},
		{"DELETE", plain + "/partitions", "", "", http.StatusConflict},
		{"DELETE", parted, "", "", http.StatusConflict},
		{"DELETE", parted + "/partitions", "", "", http.StatusNoContent},
		{"DELETE", parted + "/partitions", "", "", http.StatusNotFound},
		{"DELETE", plain, "", "", http.StatusNoContent},
		{"DELETE", plain, "", "", http.StatusNotFound},
	}
	for _, s := range steps {
		if code, body := e.adminAs(t, s.method, s.path, s.mediaType, s.body); code != s.status {
			t.Errorf("%s %s %q: %d %s, want %d", s.method, s.path, s.body, code, body, s.status)
		}
	}
}
