package relay

import (
	"fmt"
	"unicode/utf8"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay/pgsource"
)

// A row that cannot be published as it is goes to the source's quarantine
// topic with the reason, so that one bad row never stalls the stream. Its
// message keeps the row's sequence id (see sequence.go: ids never depend on
// this decision) and must itself fit the broker's limit, whatever the row
// holds: the payload is dropped when it does not fit, then the row's
// headers, then every remaining value is cut to maxQuarantineValue bytes.

// maxQuarantineValue is the longest key or property value of a quarantined
// row's message once its payload and headers did not make it fit.
const maxQuarantineValue = 1 << 10

// check returns why row, whose message for its topic is msg, cannot be
// published as it is, or ""; and, when it got that far, msg's size as
// messageSize counts it.
func (p *pipeline) check(row *pgsource.Row, msg *pulsar.ProducerMessage) (reason string, size int) {
	cfg := &p.source.cfg
	switch {
	case row.Err != nil:
		return row.Err.Error(), 0
	case !p.topics.valid(row.Topic):
		return fmt.Sprintf("topic %q is not a fully qualified Pulsar topic", row.Topic), 0
	case len(row.Payload) > cfg.MaxPayloadBytes:
		return fmt.Sprintf("payload of %d bytes exceeds the limit of %d", len(row.Payload), cfg.MaxPayloadBytes), 0
	}
	size = messageSize(msg, producerNameLen(cfg.Name, row.Topic))
	if size > cfg.MaxMessageBytes {
		return fmt.Sprintf("message of up to %d bytes (payload %d, the rest key, properties and metadata) exceeds the broker's limit of %d",
			size, len(row.Payload), cfg.MaxMessageBytes), size
	}
	if v := cfg.ValidatePayload; v != nil {
		if err := v(row.Type, row.Payload); err != nil {
			return fmt.Sprintf("payload is not a valid %s: %v", row.Type, err), size
		}
	}
	return "", size
}

// quarantine turns msg, row's message, into its message for the quarantine
// topic: the reason, source and original topic added, keyed by event id when
// it had no key, and shrunk until it fits MaxMessageBytes.
func (p *pipeline) quarantine(row *pgsource.Row, msg *pulsar.ProducerMessage, reason string) {
	cfg := &p.source.cfg
	msg.Properties[eventmeta.QuarantineReason] = reason
	msg.Properties[eventmeta.Source] = cfg.Name
	msg.Properties[eventmeta.OriginalTopic] = row.Topic
	if msg.Key == "" {
		msg.Key = row.EventID
	}
	nameLen := producerNameLen(cfg.Name, cfg.QuarantineTopic)
	fits := func() bool { return messageSize(msg, nameLen) <= cfg.MaxMessageBytes }
	if len(msg.Payload) > cfg.MaxPayloadBytes || !fits() {
		msg.Payload = []byte{}
	}
	if fits() {
		return
	}
	for k := range row.Headers {
		if !relayProperty[k] {
			delete(msg.Properties, k)
		}
	}
	if fits() {
		return
	}
	msg.Key = cut(msg.Key, maxQuarantineValue)
	for k, v := range msg.Properties {
		msg.Properties[k] = cut(v, maxQuarantineValue)
	}
}

// relayProperty holds the properties the relay sets itself, which win over
// a row's header of the same name.
var relayProperty = map[string]bool{
	eventmeta.EventID: true, eventmeta.Type: true, eventmeta.SchemaVersion: true, eventmeta.AggregateID: true,
	eventmeta.CommitLSN: true, eventmeta.CommitTime: true,
	eventmeta.QuarantineReason: true, eventmeta.Source: true, eventmeta.OriginalTopic: true,
}

// cut returns s cut to at most n bytes, at a rune boundary when s is UTF-8.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}
