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
	mux.HandleFunc("PUT /admin/v2/tenants/{tenant}", noContent)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, []string{r.PathValue("tenant") + "/default"})
	})
	mux.HandleFunc("PUT /admin/v2/namespaces/{tenant}/{ns}", noContent)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.getDeduplication)
	mux.HandleFunc("POST /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.setDeduplication)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.removeDeduplication)

	for _, domain := range []string{"persistent", "non-persistent"} {
		base := "/admin/v2/" + domain + "/{tenant}/{ns}"
		mux.HandleFunc("GET "+base, b.listTopics)
		mux.HandleFunc("GET "+base+"/partitioned", b.listPartitionedTopics)
		mux.HandleFunc("PUT "+base+"/{topic}", b.createTopicHandler)
		mux.HandleFunc("DELETE "+base+"/{topic}", b.deleteTopicHandler)
		mux.HandleFunc("GET "+base+"/{topic}/stats", b.topicStats)
		mux.HandleFunc("GET "+base+"/{topic}/partitioned-stats", b.partitionedStats)
		mux.HandleFunc("GET "+base+"/{topic}/partitions", b.getPartitions)
		mux.HandleFunc("PUT "+base+"/{topic}/partitions", b.createPartitionedHandler)
		mux.HandleFunc("POST "+base+"/{topic}/partitions", b.updatePartitionsHandler)
		mux.HandleFunc("DELETE "+base+"/{topic}/partitions", b.deletePartitionedHandler)
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
	case errors.Is(err, errTopicNotFound):
		status = http.StatusNotFound
	case errors.Is(err, errTopicExists):
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

func (b *Broker) getDeduplication(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("tenant") + "/" + r.PathValue("ns")
	b.policyMu.RLock()
	on, ok := b.dedupPolicy[ns]
	b.policyMu.RUnlock()
	if !ok {
		writeJSON(w, nil) // no namespace policy: the broker default applies
		return
	}
	writeJSON(w, on)
}

func (b *Broker) setDeduplication(w http.ResponseWriter, r *http.Request) {
	var on bool
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64)).Decode(&on); err != nil {
		writeError(w, fmt.Errorf("%w: body must be true or false", errBadRequest))
		return
	}
	b.policyMu.Lock()
	b.dedupPolicy[r.PathValue("tenant")+"/"+r.PathValue("ns")] = on
	b.policyMu.Unlock()
	b.savePolicies(w)
}

func (b *Broker) removeDeduplication(w http.ResponseWriter, r *http.Request) {
	b.policyMu.Lock()
	delete(b.dedupPolicy, r.PathValue("tenant")+"/"+r.PathValue("ns"))
	b.policyMu.Unlock()
	b.savePolicies(w)
}

func (b *Broker) listTopics(w http.ResponseWriter, r *http.Request) {
	names := b.topicNames(r.PathValue("tenant") + "/" + r.PathValue("ns"))
	if names == nil {
		names = []string{}
	}
	writeJSON(w, sortedStrings(names))
}

func (b *Broker) listPartitionedTopics(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("tenant") + "/" + r.PathValue("ns")
	b.mu.Lock()
	names := []string{}
	for base := range b.partitioned {
		if tn, err := parseTopicName(base); err == nil && tn.namespaceName() == ns {
			names = append(names, base)
		}
	}
	b.mu.Unlock()
	writeJSON(w, sortedStrings(names))
}

func (b *Broker) getPartitions(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]int{"partitions": b.partitions(name)})
}

func (b *Broker) topicStats(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := b.topic(name, false)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, t.stats())
}

// partitionedStats sums the stats of a partitioned topic's partitions.
func (b *Broker) partitionedStats(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err != nil {
		writeError(w, err)
		return
	}
	n := b.partitions(name)
	if n == 0 {
		writeError(w, fmt.Errorf("%w: %s is not a partitioned topic", errTopicNotFound, name))
		return
	}
	total := TopicStats{Publishers: []PublisherStats{}, Subscriptions: map[string]SubscriptionStats{}}
	for i := range n {
		if t, err := b.topic(name.partitionName(i), false); err == nil {
			total.add(t.stats())
		}
	}
	writeJSON(w, struct {
		TopicStats
		Metadata struct {
			Partitions int `json:"partitions"`
		} `json:"metadata"`
	}{TopicStats: total, Metadata: struct {
		Partitions int `json:"partitions"`
	}{n}})
}

func (b *Broker) createTopicHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil {
		err = b.createTopic(name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) deleteTopicHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil {
		err = b.deleteTopic(name, r.URL.Query().Get("force") == "true")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) createPartitionedHandler(w http.ResponseWriter, r *http.Request) {
	b.partitionsChange(w, r, false)
}

func (b *Broker) updatePartitionsHandler(w http.ResponseWriter, r *http.Request) {
	b.partitionsChange(w, r, true)
}

func (b *Broker) partitionsChange(w http.ResponseWriter, r *http.Request, update bool) {
	name, err := pathTopic(r)
	var n int
	if err == nil {
		n, err = readCount(r)
	}
	if err == nil {
		err = b.setPartitions(name, n, update)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) deletePartitionedHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil {
		err = b.deletePartitioned(name, r.URL.Query().Get("force") == "true")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// savePolicies stores the changed policies and answers the request.
func (b *Broker) savePolicies(w http.ResponseWriter) {
	b.mu.Lock()
	err := b.saveMetadataLocked()
	b.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
