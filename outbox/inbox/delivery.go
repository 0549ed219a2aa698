package inbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/alpes/alpes/outbox/eventmeta"
)

// disposition is what applying a delivery does once its inbox row is new.
type disposition int

const (
	dispHandle       disposition = iota // call its handler
	dispSkip                            // a known type this service does not need
	dispPark                            // insert it into parked_messages
	dispDeadLettered                    // on the DLQ already: record it in the inbox and parked_messages
	dispNoEventID                       // no usable event id: straight to the DLQ, no inbox row possible
)

// delivery is one received message, decoded and classified.
type delivery struct {
	msg         Message
	eventID     pgtype.UUID
	committedAt pgtype.Timestamptz // Valid only when the message carries a commit time
	handle      func(ctx context.Context, tx Tx, msg Message) error
	disp        disposition
	reason      string // why it is parked or dead-lettered
}

// classify reads the envelope of raw and decodes its payload with the
// registered type. It never fails: what cannot be applied is marked for
// parking or dead-lettering, with the reason.
func classify(raw pulsar.Message, entries map[protoreflect.FullName]entry) *delivery {
	props := raw.Properties()
	d := &delivery{msg: Message{
		EventID:     props[eventmeta.EventID],
		Type:        props[eventmeta.Type],
		AggregateID: props[eventmeta.AggregateID],
		Topic:       raw.Topic(),
		Raw:         raw,
	}}
	if d.msg.AggregateID == "" {
		d.msg.AggregateID = raw.Key()
	}
	if err := d.eventID.Scan(d.msg.EventID); err != nil || !d.eventID.Valid {
		d.disp, d.reason = dispNoEventID, fmt.Sprintf("%s %q is not a uuid", eventmeta.EventID, d.msg.EventID)
		return d
	}
	if ct, err := time.Parse(time.RFC3339Nano, props[eventmeta.CommitTime]); err == nil {
		d.msg.CommitTime = ct
		d.committedAt = pgtype.Timestamptz{Time: ct, Valid: true}
	}

	if d.msg.Type == "" {
		d.disp, d.reason = dispPark, "no "+eventmeta.Type+" property"
		return d
	}
	if v, ok := props[eventmeta.SchemaVersion]; ok {
		if want := topicVersion(d.msg.Topic); want != "" && v != want {
			d.disp, d.reason = dispPark, fmt.Sprintf("schema version %q on a v%s topic", v, want)
			return d
		}
	}
	e, ok := entries[protoreflect.FullName(d.msg.Type)]
	switch {
	case !ok:
		d.disp, d.reason = dispPark, fmt.Sprintf("unknown type %s", d.msg.Type)
		return d
	case e.handle == nil:
		d.disp = dispSkip
		return d
	}
	body := e.msgType.New().Interface()
	if err := proto.Unmarshal(raw.Payload(), body); err != nil {
		d.disp, d.reason = dispPark, fmt.Sprintf("decoding %s: %v", d.msg.Type, err)
		return d
	}
	d.msg.Body, d.handle, d.disp = body, e.handle, dispHandle
	return d
}

// topicVersion returns the major version a topic's name ends with
// (events.v1 → "1"), or "" when it has none.
func topicVersion(topic string) string {
	name := topic[strings.LastIndexByte(topic, '/')+1:]
	i := strings.LastIndex(name, ".v")
	if i < 0 || i+2 == len(name) {
		return ""
	}
	v := name[i+2:]
	for _, r := range v {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return v
}

// progressTime is the time a delivery contributes to apply_progress: its
// source commit time, or the broker's publish time when it has none.
func (d *delivery) progressTime() time.Time {
	if d.committedAt.Valid {
		return d.committedAt.Time
	}
	return d.msg.Raw.PublishTime()
}
