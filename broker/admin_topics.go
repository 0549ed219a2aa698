package broker

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Topic handlers of the admin API: list, create and delete topics and
// partitioned topics, and their stats.

// listTopics lists a namespace's topics; 404 for an unknown namespace.
func (b *Broker) listTopics(w http.ResponseWriter, r *http.Request) {
	if err := b.requireNamespace(namespaceOf(r)); err != nil {
		writeError(w, err)
		return
	}
	names := b.topicNames(namespaceOf(r))
	if names == nil {
		names = []string{}
	}
	writeJSON(w, sortedStrings(names))
}

// listPartitionedTopics lists a namespace's partitioned topics; 404 for
// an unknown namespace.
func (b *Broker) listPartitionedTopics(w http.ResponseWriter, r *http.Request) {
	ns := namespaceOf(r)
	if err := b.requireNamespace(ns); err != nil {
		writeError(w, err)
		return
	}
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

// partitionedMetadata is Pulsar's PartitionedTopicMetadata document.
type partitionedMetadata struct {
	Partitions int  `json:"partitions"`
	Deleted    bool `json:"deleted"`
}

// getPartitions answers a topic's partition count, 0 for a topic that is
// not partitioned, and 404 for one that does not exist, as Pulsar does.
func (b *Broker) getPartitions(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil && !b.topicExists(name) {
		err = fmt.Errorf("%w: %s", errTopicNotFound, name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, partitionedMetadata{Partitions: b.partitions(name)})
}

func (b *Broker) topicStats(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := b.existingTopic(name)
	if errors.Is(err, errPartitionedTopic) {
		// Pulsar has no topic of that name, only its partitions.
		err = fmt.Errorf("%w: %s is partitioned: ask for its partitioned-stats", errTopicNotFound, name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, t.stats())
}

// partitionedStats answers a partitioned topic's stats (see
// PartitionedTopicStats); ?perPartition=false leaves the partitions' own
// stats out, as in Pulsar.
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
	total := newPartitionedStats(n)
	for i := range n {
		part := name.partitionName(i)
		if t, err := b.existingTopic(part); err == nil {
			total.add(part.String(), t.stats())
		}
	}
	if r.URL.Query().Get("perPartition") == "false" {
		clear(total.Partitions)
	}
	writeJSON(w, total)
}

// createTopicHandler creates a non-partitioned topic. The body, when
// there is one, holds the topic's properties (see readTopicProperties).
func (b *Broker) createTopicHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil {
		err = readTopicProperties(r)
	}
	if err == nil {
		err = b.createTopic(name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteTopicHandler deletes a non-partitioned topic; a partitioned one
// is refused with 409, as Pulsar does (its partitions go with DELETE
// .../partitions).
func (b *Broker) deleteTopicHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil && b.partitions(name) > 0 {
		err = fmt.Errorf("%w: %s is a partitioned topic: delete it with its partitions", errConflict, name)
	}
	if err == nil {
		err = b.deleteTopic(name, r.URL.Query().Get("force") == "true")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createPartitionedHandler creates a partitioned topic from any of the
// bodies Pulsar's admin clients send (see readPartitionCount). As in
// Pulsar, a name that holds "-partition-" is refused with 412.
func (b *Broker) createPartitionedHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil && strings.Contains(name.local, partitionSuffix) {
		err = fmt.Errorf("%w: a partitioned topic's name must not contain %q", errPrecondition, partitionSuffix)
	}
	var n int
	if err == nil {
		n, err = readPartitionCount(r)
	}
	if err == nil {
		err = b.setPartitions(name, n, false)
	}
	respond(w, err)
}

// updatePartitionsHandler raises a partitioned topic's partition count.
// Its body is a bare number only: Pulsar refuses the metadata object here.
func (b *Broker) updatePartitionsHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	var data []byte
	if err == nil {
		data, err = readBody(r)
	}
	var n int
	if err == nil {
		n, err = parseCount(data)
	}
	if err == nil {
		err = b.setPartitions(name, n, true)
	}
	respond(w, err)
}

// deletePartitionedHandler deletes a partitioned topic and its
// partitions; a non-partitioned topic is refused with 409, as Pulsar does.
func (b *Broker) deletePartitionedHandler(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil && b.partitions(name) == 0 && b.topicExists(name) {
		err = fmt.Errorf("%w: %s is a non-partitioned topic: delete it without /partitions", errConflict, name)
	}
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
