package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Schemas are kept per topic as a list of versions; registering a schema
// identical to an existing version returns that version. A version travels
// as 8 big-endian bytes, as in Pulsar. Compatibility is checked as far as
// the type: as with Pulsar's default strategy, a schema whose type differs
// from the latest version's is refused (errIncompatible, answered
// IncompatibleSchema), from producers and consumers alike, whether or not
// the topic is in use. Within a type every new schema is accepted as a new
// version: unlike Pulsar, the broker does not check how a schema evolves
// (Avro field changes, a protobuf root message change).

// schemaVersion returns the version of s on t, registering (and storing)
// it when it is new. Caller holds t.mu.
func (t *topic) schemaVersion(s *wirev1.Schema) ([]byte, error) {
	for i, known := range t.schemas {
		if known.GetType() == s.GetType() && bytes.Equal(known.GetSchemaData(), s.GetSchemaData()) {
			return encodeSchemaVersion(int64(i)), nil
		}
	}
	if latest := t.latestTypedSchema(); latest != nil && s.GetType() != wirev1.Schema_None && latest.GetType() != s.GetType() {
		return nil, fmt.Errorf("%w: the topic's schema is of type %s, not %s", errIncompatible, latest.GetType(), s.GetType())
	}
	if err := t.store.saveSchema(s); err != nil {
		return nil, fmt.Errorf("storing schema: %w", err)
	}
	t.schemas = append(t.schemas, proto.CloneOf(s))
	return encodeSchemaVersion(int64(len(t.schemas) - 1)), nil
}

// latestTypedSchema returns the newest schema version that has a type
// (not None, raw bytes), or nil. Caller holds t.mu.
func (t *topic) latestTypedSchema() *wirev1.Schema {
	for i := len(t.schemas) - 1; i >= 0; i-- {
		if t.schemas[i].GetType() != wirev1.Schema_None {
			return t.schemas[i]
		}
	}
	return nil
}

func encodeSchemaVersion(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func (c *conn) handleGetOrCreateSchema(req *wirev1.CommandGetOrCreateSchema) {
	resp := &wirev1.CommandGetOrCreateSchemaResponse{RequestId: proto.Uint64(req.GetRequestId())}
	if t, err := c.topicOf(req.GetTopic(), true); err != nil {
		resp.ErrorCode = topicErrorCode(err).Enum()
		resp.ErrorMessage = proto.String(err.Error())
	} else {
		t.mu.Lock()
		v, err := t.schemaVersion(req.GetSchema())
		t.mu.Unlock()
		if err != nil {
			resp.ErrorCode = schemaErrorCode(err).Enum()
			resp.ErrorMessage = proto.String(err.Error())
		}
		resp.SchemaVersion = v
	}
	c.send(&wirev1.BaseCommand{
		Type:                      wirev1.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE.Enum(),
		GetOrCreateSchemaResponse: resp,
	}, nil)
}

// handleGetSchema answers the requested version, or the latest one when
// the request names none.
func (c *conn) handleGetSchema(req *wirev1.CommandGetSchema) {
	resp := &wirev1.CommandGetSchemaResponse{RequestId: proto.Uint64(req.GetRequestId())}
	notFound := func(msg string) {
		resp.ErrorCode = wirev1.ServerError_TopicNotFound.Enum()
		resp.ErrorMessage = proto.String(msg)
	}
	if t, err := c.topicOf(req.GetTopic(), false); err != nil {
		notFound(err.Error())
	} else {
		t.mu.Lock()
		v := int64(len(t.schemas) - 1)
		if b := req.GetSchemaVersion(); len(b) == 8 {
			v = int64(binary.BigEndian.Uint64(b))
		}
		if v >= 0 && v < int64(len(t.schemas)) {
			resp.Schema = proto.CloneOf(t.schemas[v])
			resp.SchemaVersion = encodeSchemaVersion(v)
		} else {
			notFound("schema version not found")
		}
		t.mu.Unlock()
	}
	c.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_GET_SCHEMA_RESPONSE.Enum(), GetSchemaResponse: resp}, nil)
}

// schemaErrorCode is the error code for a failed schema registration.
func schemaErrorCode(err error) wirev1.ServerError {
	if errors.Is(err, errIncompatible) {
		return wirev1.ServerError_IncompatibleSchema
	}
	return wirev1.ServerError_PersistenceError
}

// topicOf parses a topic name and returns the topic.
func (c *conn) topicOf(name string, create bool) (*topic, error) {
	tn, err := parseTopicName(name)
	if err != nil {
		return nil, err
	}
	return c.b.topic(tn, create)
}
