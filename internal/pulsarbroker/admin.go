package pulsarbroker

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The admin API serves the subset of Pulsar's REST API (/admin/v2) that
// alpes and its tests use, with Pulsar's paths, status codes and JSON, so
// the same calls work against a real Pulsar.

var errBadRequest = errors.New("bad request")

// adminHandler routes the admin API.
func (b *Broker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v2/brokers/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /admin/v2/tenants", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, []string{"public"})
	})
	mux.HandleFunc("GET /admin/v2/brokers/configuration/runtime", b.runtimeConfiguration)
	mux.HandleFunc("PUT /admin/v2/tenants/{tenant}", noContent)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}", b.listNamespaces)
	mux.HandleFunc("PUT /admin/v2/namespaces/{tenant}/{ns}", b.createNamespace)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{ns}", b.deleteNamespace)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.getDeduplication)
	mux.HandleFunc("POST /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.setDeduplication)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.removeDeduplication)

	for _, domain := range []string{"persistent", "non-persistent"} {
		base := "/admin/v2/" + domain + "/{tenant}/{ns}"
		mux.HandleFunc("GET "+base, b.listTopics)
		mux.HandleFunc("GET "+base+"/partitioned", b.listPartitionedTopics)
		mux.HandleFunc("PUT "+base+"/{topic}", b.createTopicHandler)
		mux.HandleFunc("DELETE "+base+"/{topic}", b.deleteTopicHandler)
		mux.HandleFunc("PUT "+base+"/{topic}/unload", b.unloadTopicHandler)
		mux.HandleFunc("GET "+base+"/{topic}/stats", b.topicStats)
		mux.HandleFunc("GET "+base+"/{topic}/partitioned-stats", b.partitionedStats)
		mux.HandleFunc("GET "+base+"/{topic}/partitions", b.getPartitions)
		mux.HandleFunc("PUT "+base+"/{topic}/partitions", b.createPartitionedHandler)
		mux.HandleFunc("POST "+base+"/{topic}/partitions", b.updatePartitionsHandler)
		mux.HandleFunc("DELETE "+base+"/{topic}/partitions", b.deletePartitionedHandler)
		mux.HandleFunc("GET "+base+"/{topic}/subscriptions", b.listSubscriptions)
		mux.HandleFunc("PUT "+base+"/{topic}/subscription/{sub}", b.createSubscription)
		mux.HandleFunc("DELETE "+base+"/{topic}/subscription/{sub}", b.deleteSubscription)
		mux.HandleFunc("POST "+base+"/{topic}/subscription/{sub}/skip_all", b.skipAll)
		mux.HandleFunc("POST "+base+"/{topic}/subscription/{sub}/resetcursor/{timestamp}", b.resetCursor)
		mux.HandleFunc("GET "+base+"/{topic}/deduplicationEnabled", b.getDeduplication)
		mux.HandleFunc("POST "+base+"/{topic}/deduplicationEnabled", b.setDeduplication)
		mux.HandleFunc("DELETE "+base+"/{topic}/deduplicationEnabled", b.removeDeduplication)
	}
	return b.requireToken(mux)
}

// requireToken enforces token authentication when the broker has one.
func (b *Broker) requireToken(next http.Handler) http.Handler {
	if b.cfg.AuthToken == "" {
		return next
	}
	want := []byte("Bearer " + b.cfg.AuthToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/admin/v2/brokers/health" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeError(w, fmt.Errorf("%w: missing or wrong token", errUnauthorized))
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errUnauthorized = errors.New("unauthorized")

// writeError maps the broker's errors to HTTP statuses, in one place, with
// Pulsar's {"reason": ...} body.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errTopicNotFound), errors.Is(err, errSubscriptionNotFound), errors.Is(err, errNamespaceNotFound):
		status = http.StatusNotFound
	case errors.Is(err, errTopicExists), errors.Is(err, errNamespaceExists), errors.Is(err, errNamespaceNotEmpty):
		status = http.StatusConflict
	case errors.Is(err, errTopicBusy):
		status = http.StatusPreconditionFailed
	case errors.Is(err, errBadRequest), errors.Is(err, errPartitionedTopic):
		status = http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		status = http.StatusUnauthorized
	case errors.Is(err, errBrokerClosed):
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"reason": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func noContent(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// pathTopic returns the topic named by the request's path.
func pathTopic(r *http.Request) (topicName, error) {
	domain, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/admin/v2/"), "/")
	name := topicName{domain: domain, tenant: r.PathValue("tenant"), namespace: r.PathValue("ns"), local: r.PathValue("topic")}
	if _, err := parseTopicName(name.String()); err != nil {
		return name, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return name, nil
}

// readCount reads a request body holding one non-negative integer, the
// number of partitions.
func readCount(r *http.Request) (int, error) {
	var n int
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1024)).Decode(&n); err != nil || n < 0 {
		return 0, fmt.Errorf("%w: body must be a number of partitions", errBadRequest)
	}
	return n, nil
}
