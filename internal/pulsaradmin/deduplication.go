package pulsaradmin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Deduplication is the deduplication that applies to a topic, and where it
// was decided.
type Deduplication struct {
	Enabled bool
	// Level is where the setting comes from: "topic" (the topic's own
	// policy), "namespace" (the namespace's policy) or "broker" (the
	// broker's brokerDeduplicationEnabled, for a namespace without policy).
	Level string
	// Namespace is the topic's namespace, tenant/name.
	Namespace string
}

// TopicDeduplication resolves the deduplication that applies to topic
// (persistent://tenant/ns/name) as the broker does: the topic's own policy,
// else its namespace's, else the broker's default. It reads the levels one
// by one: real Pulsar's deduplicationEnabled?applied=true answers 404 for a
// topic that does not exist yet, and for one that does it hides which level
// decided.
func (c *Client) TopicDeduplication(ctx context.Context, topic string) (Deduplication, error) {
	domain, tenant, ns, local, err := splitTopic(topic)
	if err != nil {
		return Deduplication{}, err
	}
	d := Deduplication{Namespace: tenant + "/" + ns}
	var own *bool
	err = c.do(ctx, http.MethodGet, "/admin/v2/"+domain+"/"+tenant+"/"+ns+"/"+local+"/deduplicationEnabled", nil, &own)
	switch {
	case err == nil && own != nil:
		d.Enabled, d.Level = *own, "topic"
		return d, nil
	case err != nil && !IsStatus(err, http.StatusNotFound) && !IsStatus(err, http.StatusMethodNotAllowed):
		// 404: no such topic yet; 405: the broker has no topic policies.
		return d, fmt.Errorf("reading the deduplication of %s: %w", topic, err)
	}
	nsOn, set, err := c.NamespaceDeduplication(ctx, d.Namespace)
	if err != nil {
		return d, err
	}
	if set {
		d.Enabled, d.Level = nsOn, "namespace"
		return d, nil
	}
	d.Enabled, err = c.BrokerDeduplication(ctx)
	d.Level = "broker"
	return d, err
}

// NamespaceDeduplication returns namespace's deduplication policy; set is
// false when the namespace has none (the broker's default applies). A
// namespace that does not exist is a *StatusError with code 404.
func (c *Client) NamespaceDeduplication(ctx context.Context, namespace string) (on, set bool, err error) {
	var policy *bool
	if err := c.do(ctx, http.MethodGet, "/admin/v2/namespaces/"+namespace+"/deduplication", nil, &policy); err != nil {
		return false, false, fmt.Errorf("reading the deduplication of namespace %s: %w", namespace, err)
	}
	if policy == nil {
		return false, false, nil
	}
	return *policy, true, nil
}

// BrokerDeduplication returns the broker's default deduplication, which
// applies to namespaces without a policy: brokerDeduplicationEnabled of its
// runtime configuration.
func (c *Client) BrokerDeduplication(ctx context.Context) (bool, error) {
	var conf map[string]string
	if err := c.do(ctx, http.MethodGet, "/admin/v2/brokers/configuration/runtime", nil, &conf); err != nil {
		return false, fmt.Errorf("reading the broker's configuration: %w", err)
	}
	v, ok := conf["brokerDeduplicationEnabled"]
	if !ok {
		return false, fmt.Errorf("reading the broker's configuration: no brokerDeduplicationEnabled")
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("reading the broker's configuration: brokerDeduplicationEnabled %q: %w", v, err)
	}
	return on, nil
}

// splitTopic splits a fully qualified topic name.
func splitTopic(topic string) (domain, tenant, ns, local string, err error) {
	domain, rest, ok := strings.Cut(topic, "://")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", "", fmt.Errorf("topic %q is not domain://tenant/namespace/name", topic)
	}
	return domain, parts[0], parts[1], parts[2], nil
}
