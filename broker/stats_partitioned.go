package broker

// PartitionedTopicStats is a partitioned topic's stats document as Pulsar
// builds it (GET .../partitioned-stats): its partitions' figures summed;
// publishers, and each subscription's consumers, merged by position (the
// i-th of every partition into one) with their figures summed and, as in
// Pulsar, without what identifies a connection (a merged consumer keeps
// its name, a merged publisher nothing but figures); the partitioned
// topic's metadata; and each partition's own stats, by partition name.
type PartitionedTopicStats struct {
	TopicFigures
	Publishers    []mergedPublisher                       `json:"publishers"`
	Subscriptions map[string]PartitionedSubscriptionStats `json:"subscriptions"`
	Metadata      partitionedMetadata                     `json:"metadata"`
	Partitions    map[string]TopicStats                   `json:"partitions"`
}

// mergedPublisher is the publishers at one position of every partition,
// merged. ProducerID is always 0, as in Pulsar's merged document.
type mergedPublisher struct {
	PublisherFigures
	ProducerID uint64 `json:"producerId"`
}

// PartitionedSubscriptionStats is a subscription summed over the
// partitions, its consumers merged by position.
type PartitionedSubscriptionStats struct {
	SubscriptionFigures
	Consumers []ConsumerFigures `json:"consumers"`
}

// newPartitionedStats returns the document of a partitioned topic with n
// partitions before any partition is added.
func newPartitionedStats(n int) PartitionedTopicStats {
	return PartitionedTopicStats{
		Publishers:    []mergedPublisher{},
		Subscriptions: map[string]PartitionedSubscriptionStats{},
		Metadata:      partitionedMetadata{Partitions: n},
		Partitions:    map[string]TopicStats{},
	}
}

// add folds one partition's stats in, under the partition's name.
func (st *PartitionedTopicStats) add(partition string, p TopicStats) {
	st.Partitions[partition] = p
	st.TopicFigures.add(p.TopicFigures)
	if len(st.Publishers) != len(p.Publishers) {
		// Pulsar merges by position only while the counts agree; a
		// partition with another count adds its publishers anew.
		for _, pub := range p.Publishers {
			st.Publishers = append(st.Publishers, mergedPublisher{PublisherFigures: pub.PublisherFigures})
		}
	} else {
		for i, pub := range p.Publishers {
			st.Publishers[i].add(pub.PublisherFigures)
		}
	}
	for name, ps := range p.Subscriptions {
		ss, ok := st.Subscriptions[name]
		if !ok {
			ss = PartitionedSubscriptionStats{Consumers: []ConsumerFigures{}}
			ss.Type, ss.IsDurable, ss.Durable = ps.Type, ps.IsDurable, ps.Durable
			ss.SubscriptionProperties = map[string]string{}
		}
		ss.addPartition(ps)
		st.Subscriptions[name] = ss
	}
}

// add sums a partition's figures into f.
func (f *TopicFigures) add(p TopicFigures) {
	f.MsgRateIn += p.MsgRateIn
	f.MsgThroughputIn += p.MsgThroughputIn
	f.MsgRateOut += p.MsgRateOut
	f.MsgThroughputOut += p.MsgThroughputOut
	f.MsgInCounter += p.MsgInCounter
	f.BytesInCounter += p.BytesInCounter
	f.MsgOutCounter += p.MsgOutCounter
	f.BytesOutCounter += p.BytesOutCounter
	f.AverageMsgSize = averageSize(f.MsgThroughputIn, f.MsgRateIn)
	f.MsgChunkPublished = f.MsgChunkPublished || p.MsgChunkPublished
	f.StorageSize += p.StorageSize
	f.BacklogSize += p.BacklogSize
	f.WaitingPublishers += p.WaitingPublishers
	f.NonContiguousDeletedMessagesRanges += p.NonContiguousDeletedMessagesRanges
}

// add sums one partition's publisher figures into m.
func (m *mergedPublisher) add(p PublisherFigures) {
	m.MsgRateIn += p.MsgRateIn
	m.MsgThroughputIn += p.MsgThroughputIn
	m.AverageMsgSize = averageSize(m.MsgThroughputIn, m.MsgRateIn)
}

// addPartition folds one partition's subscription stats into ss.
func (ss *PartitionedSubscriptionStats) addPartition(ps SubscriptionStats) {
	ss.MsgRateOut += ps.MsgRateOut
	ss.MsgThroughputOut += ps.MsgThroughputOut
	ss.MsgOutCounter += ps.MsgOutCounter
	ss.BytesOutCounter += ps.BytesOutCounter
	ss.MsgBacklog += ps.MsgBacklog
	ss.MsgBacklogNoDelayed += ps.MsgBacklogNoDelayed
	ss.MsgDelayed += ps.MsgDelayed
	ss.BacklogSize += ps.BacklogSize
	ss.UnackedMessages += ps.UnackedMessages
	ss.NonContiguousDeletedMessagesRanges += ps.NonContiguousDeletedMessagesRanges
	if len(ss.Consumers) != len(ps.Consumers) {
		for _, c := range ps.Consumers {
			ss.Consumers = append(ss.Consumers, c.ConsumerFigures)
		}
		return
	}
	for i, c := range ps.Consumers {
		ss.Consumers[i].add(c.ConsumerFigures)
	}
}

// add sums one partition's consumer figures into f, keeping the name.
func (f *ConsumerFigures) add(c ConsumerFigures) {
	f.ConsumerName = c.ConsumerName
	f.AvailablePermits += c.AvailablePermits
	f.UnackedMessages += c.UnackedMessages
	f.MsgRateOut += c.MsgRateOut
	f.MsgThroughputOut += c.MsgThroughputOut
	f.MsgOutCounter += c.MsgOutCounter
	f.BytesOutCounter += c.BytesOutCounter
	f.BlockedConsumerOnUnackedMsgs = f.BlockedConsumerOnUnackedMsgs || c.BlockedConsumerOnUnackedMsgs
}
