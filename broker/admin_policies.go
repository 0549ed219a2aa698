package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Deduplication policies: per namespace
// (/admin/v2/namespaces/{tenant}/{ns}/deduplication) and per topic
// (/admin/v2/persistent/{tenant}/{ns}/{topic}/deduplicationEnabled). A
// topic's policy wins over its namespace's, which wins over the broker's
// default (Config.Deduplication).

// dedupPolicyKey returns the policy map and key a deduplication request
// addresses: a namespace, or a topic when the path names one. As in
// Pulsar, the namespace or topic must exist (else errNamespaceNotFound or
// errTopicNotFound, answered 404).
func (b *Broker) dedupPolicyKey(r *http.Request) (map[string]bool, string, error) {
	if r.PathValue("topic") == "" {
		ns := namespaceOf(r)
		return b.dedupPolicy, ns, b.requireNamespace(ns)
	}
	name, err := pathTopic(r)
	if err != nil {
		return nil, "", err
	}
	if !b.topicExists(name) {
		return nil, "", fmt.Errorf("%w: %s", errTopicNotFound, name)
	}
	return b.topicDedupPolicy, name.base().String(), nil
}

func (b *Broker) getDeduplication(w http.ResponseWriter, r *http.Request) {
	policies, key, err := b.dedupPolicyKey(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b.policyMu.RLock()
	on, ok := policies[key]
	b.policyMu.RUnlock()
	if !ok {
		// No policy of its own (the next level's applies): Pulsar answers
		// 200 with an empty body.
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, on)
}

func (b *Broker) setDeduplication(w http.ResponseWriter, r *http.Request) {
	policies, key, err := b.dedupPolicyKey(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var on bool
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64)).Decode(&on); err != nil {
		writeError(w, fmt.Errorf("%w: body must be true or false", errBadRequest))
		return
	}
	b.policyMu.Lock()
	policies[key] = on
	b.policyMu.Unlock()
	b.savePolicies(w)
}

func (b *Broker) removeDeduplication(w http.ResponseWriter, r *http.Request) {
	policies, key, err := b.dedupPolicyKey(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b.policyMu.Lock()
	delete(policies, key)
	b.policyMu.Unlock()
	b.savePolicies(w)
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
