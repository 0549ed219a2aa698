package broker

import (
	"regexp"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// handle executes one command. It returns false when the connection must be
// closed because the client broke the protocol.
func (c *conn) handle(f *pulsarwire.Frame) bool {
	cmd := f.Command
	switch cmd.GetType() {
	case wirev1.BaseCommand_PING:
		c.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PONG.Enum(), Pong: &wirev1.CommandPong{}}, nil)
	case wirev1.BaseCommand_PONG:
	case wirev1.BaseCommand_PARTITIONED_METADATA:
		c.handlePartitionedMetadata(cmd.GetPartitionMetadata())
	case wirev1.BaseCommand_LOOKUP:
		c.handleLookup(cmd.GetLookupTopic())
	case wirev1.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		c.handleGetTopicsOfNamespace(cmd.GetGetTopicsOfNamespace())
	case wirev1.BaseCommand_PRODUCER:
		c.handleProducer(cmd.GetProducer())
	case wirev1.BaseCommand_SEND:
		return c.handleSend(cmd.GetSend(), f.Message)
	case wirev1.BaseCommand_CLOSE_PRODUCER:
		c.handleCloseProducer(cmd.GetCloseProducer())
	case wirev1.BaseCommand_SUBSCRIBE:
		c.handleSubscribe(cmd.GetSubscribe())
	case wirev1.BaseCommand_FLOW:
		c.handleFlow(cmd.GetFlow())
	case wirev1.BaseCommand_ACK:
		c.handleAck(cmd.GetAck())
	case wirev1.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES:
		c.handleRedeliver(cmd.GetRedeliverUnacknowledgedMessages())
	case wirev1.BaseCommand_UNSUBSCRIBE:
		c.handleUnsubscribe(cmd.GetUnsubscribe())
	case wirev1.BaseCommand_CLOSE_CONSUMER:
		c.handleCloseConsumer(cmd.GetCloseConsumer())
	case wirev1.BaseCommand_SEEK:
		c.handleSeek(cmd.GetSeek())
	case wirev1.BaseCommand_GET_LAST_MESSAGE_ID:
		c.handleGetLastMessageID(cmd.GetGetLastMessageId())
	case wirev1.BaseCommand_GET_SCHEMA:
		c.handleGetSchema(cmd.GetGetSchema())
	case wirev1.BaseCommand_GET_OR_CREATE_SCHEMA:
		c.handleGetOrCreateSchema(cmd.GetGetOrCreateSchema())
	default:
		// Transactions, topic watchers, consumer stats: not supported. The
		// client's request times out, which it reports to the application.
		c.log.Warn("ignoring unsupported command", "type", cmd.GetType())
		return true
	}
	return true
}

func successCommand(requestID uint64) *wirev1.BaseCommand {
	return &wirev1.BaseCommand{
		Type:    wirev1.BaseCommand_SUCCESS.Enum(),
		Success: &wirev1.CommandSuccess{RequestId: proto.Uint64(requestID)},
	}
}

func errorCommand(requestID uint64, code wirev1.ServerError, msg string) *wirev1.BaseCommand {
	return &wirev1.BaseCommand{
		Type: wirev1.BaseCommand_ERROR.Enum(),
		Error: &wirev1.CommandError{
			RequestId: proto.Uint64(requestID),
			Error:     code.Enum(),
			Message:   proto.String(msg),
		},
	}
}

func (c *conn) handlePartitionedMetadata(req *wirev1.CommandPartitionedTopicMetadata) {
	resp := &wirev1.CommandPartitionedTopicMetadataResponse{RequestId: proto.Uint64(req.GetRequestId())}
	if name, err := parseTopicName(req.GetTopic()); err != nil {
		resp.Response = wirev1.CommandPartitionedTopicMetadataResponse_Failed.Enum()
		resp.Error = wirev1.ServerError_InvalidTopicName.Enum()
		resp.Message = proto.String(err.Error())
	} else {
		resp.Response = wirev1.CommandPartitionedTopicMetadataResponse_Success.Enum()
		resp.Partitions = proto.Uint32(uint32(c.b.partitions(name)))
	}
	c.send(&wirev1.BaseCommand{
		Type:                      wirev1.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: resp,
	}, nil)
}

// handleLookup always answers Connect with this broker's own URL, at its
// advertised address: there is only one broker, and it owns every topic.
func (c *conn) handleLookup(req *wirev1.CommandLookupTopic) {
	resp := &wirev1.CommandLookupTopicResponse{RequestId: proto.Uint64(req.GetRequestId())}
	if _, err := parseTopicName(req.GetTopic()); err != nil {
		resp.Response = wirev1.CommandLookupTopicResponse_Failed.Enum()
		resp.Error = wirev1.ServerError_InvalidTopicName.Enum()
		resp.Message = proto.String(err.Error())
	} else {
		resp.Response = wirev1.CommandLookupTopicResponse_Connect.Enum()
		resp.BrokerServiceUrl = proto.String(c.b.ServiceURL())
		resp.Authoritative = proto.Bool(true)
	}
	c.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_LOOKUP_RESPONSE.Enum(), LookupTopicResponse: resp}, nil)
}

// handleGetTopicsOfNamespace lists the namespace's topics (partitions
// included), filtered by the pattern when the client sent one.
func (c *conn) handleGetTopicsOfNamespace(req *wirev1.CommandGetTopicsOfNamespace) {
	var pattern *regexp.Regexp
	if p := req.GetTopicsPattern(); p != "" {
		if re, err := regexp.Compile(p); err == nil {
			pattern = re
		}
	}
	var topics []string
	for _, name := range c.b.topicNames(req.GetNamespace()) {
		if pattern == nil || pattern.MatchString(name) {
			topics = append(topics, name)
		}
	}
	sort.Strings(topics)
	c.send(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE.Enum(),
		GetTopicsOfNamespaceResponse: &wirev1.CommandGetTopicsOfNamespaceResponse{
			RequestId: proto.Uint64(req.GetRequestId()),
			Topics:    topics,
			Filtered:  proto.Bool(pattern != nil),
			Changed:   proto.Bool(true),
		},
	}, nil)
}

// consumerByID returns the connection's consumer with that id, or nil.
func (c *conn) consumerByID(id uint64) *consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consumers[id]
}

// producerByID returns the connection's producer with that id, or nil.
func (c *conn) producerByID(id uint64) *producer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.producers[id]
}
