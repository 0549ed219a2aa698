package pulsarbroker

import (
	"fmt"
	"net/http"
)

// Topic handlers of the admin API: list, create and delete topics and
// partitioned topics, and their stats.

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

// unloadTopicHandler unloads a topic, or every partition of a partitioned
// one, as Pulsar's PUT .../unload does: its producers and consumers are
// disconnected and reconnect. Pulsar then reloads the topic from storage;
// the embedded broker keeps its state in place (see topic.unloadLocked).
func (b *Broker) unloadTopicHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err != nil {
		writeError(w, err)
		return
	}
	names := []topicName{name}
	if n := b.partitions(name); n > 0 {
		names = names[:0]
		for i := range n {
			names = append(names, name.partitionName(i))
		}
	}
	found := false
	for _, tn := range names {
		t, err := b.topic(tn, false)
		if err != nil {
			continue // a partition nobody used yet: nothing to unload
		}
		found = true
		t.mu.Lock()
		t.unloadLocked()
		t.mu.Unlock()
	}
	if !found && b.partitions(name) == 0 {
		writeError(w, fmt.Errorf("%w: %s", errTopicNotFound, name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
