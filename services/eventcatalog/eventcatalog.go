// Package eventcatalog knows alpes's messages by their fully qualified
// protobuf names (the alpes-type property): it imports every generated
// package of proto/, which registers the messages with the protobuf runtime.
// It also names the topics they travel on, per Pulsar tenant (Topics).
package eventcatalog

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/alpes/alpes/proto/alpes/catalog/v1"
	_ "github.com/alpes/alpes/proto/alpes/orders/v1"
	_ "github.com/alpes/alpes/proto/alpes/payments/v1"
)

// ErrUnknownType is returned by New for a name that is not an alpes message.
var ErrUnknownType = errors.New("unknown message type")

// New returns an empty message of the named type.
func New(typeName string) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typeName)
	}
	return mt.New().Interface(), nil
}

// ValidatePayload reports whether payload decodes as the named message. A
// type it does not know is accepted: a newer producer may know more messages
// than this binary, and consumers park what they do not know.
func ValidatePayload(typeName string, payload []byte) error {
	m, err := New(typeName)
	if errors.Is(err, ErrUnknownType) {
		return nil
	}
	if err != nil {
		return err
	}
	return proto.Unmarshal(payload, m)
}
