package inbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Message is one delivered message with its alpes envelope, as a handler
// sees it. It is valid only for the duration of the handler call.
type Message struct {
	// EventID is alpes-event-id: the producer's outbox id, the inbox key.
	EventID string
	// Type is alpes-type, the fully qualified protobuf message name.
	Type string
	// AggregateID is alpes-aggregate-id (the message key when absent).
	AggregateID string
	// Topic is the topic the message was consumed from.
	Topic string
	// CommitTime is alpes-commit-time, the source transaction's commit
	// time; zero when the message does not carry one.
	CommitTime time.Time
	// Body is the decoded payload, of the type the handler registered for.
	Body proto.Message
	// Raw is the message as the Pulsar client delivered it.
	Raw pulsar.Message
}

// ErrPark, wrapped in a handler's error, parks the message instead of
// retrying it: the handler's writes are rolled back, the message is inserted
// into parked_messages with the error's text as reason, and acknowledged.
// Use it for a message the handler can never apply, such as an enum value
// this version does not know and must not guess (ADR 0002):
//
//	return fmt.Errorf("%w: unknown payment status %d", inbox.ErrPark, status)
var ErrPark = errors.New("parked by handler")

// HandlerFunc applies one message of type M within tx, the transaction that
// also records the message in the inbox. It must do all its work through
// tx, and must not commit or roll it back. An error rolls the work back: one
// wrapping ErrPark parks the message, any other is retried and finally
// dead-lettered (see the package documentation).
type HandlerFunc[M proto.Message] func(ctx context.Context, tx Tx, msg Message, body M) error

// Registry maps alpes-type names to handlers. Register everything before
// passing it to New; it is safe for concurrent use, but a Consumer sees only
// what was registered when it was created.
type Registry struct {
	mu      sync.Mutex
	entries map[protoreflect.FullName]entry
}

// entry is what a Consumer knows about one message type.
type entry struct {
	msgType protoreflect.MessageType
	// handle applies a decoded message; nil for a skipped type.
	handle func(ctx context.Context, tx Tx, msg Message) error
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{entries: map[protoreflect.FullName]entry{}}
}

// Handle registers h for the messages whose alpes-type is M's full protobuf
// name, e.g.
//
//	inbox.Handle(reg, func(ctx context.Context, tx Tx, msg inbox.Message, placed *ordersv1.OrderPlaced) error {…})
//
// It panics if the type is already registered: that is a programming error.
func Handle[M proto.Message](r *Registry, h HandlerFunc[M]) {
	if h == nil {
		panic("inbox: nil handler")
	}
	r.add(messageType[M](), func(ctx context.Context, tx Tx, msg Message) error {
		return h(ctx, tx, msg, msg.Body.(M))
	})
}

// Skip registers M as a type this service knows but does not need: its
// messages are recorded in the inbox and acknowledged, without decoding or
// any other effect (ADR 0002), instead of being parked as unknown. It panics
// if the type is already registered.
func Skip[M proto.Message](r *Registry) {
	r.add(messageType[M](), nil)
}

// messageType returns the protobuf type of M, a generated message pointer
// type such as *ordersv1.OrderPlaced.
func messageType[M proto.Message]() protoreflect.MessageType {
	var zero M
	if any(zero) == nil {
		panic("inbox: register a concrete message type, such as *ordersv1.OrderPlaced, not an interface")
	}
	return zero.ProtoReflect().Type()
}

func (r *Registry) add(mt protoreflect.MessageType, handle func(context.Context, Tx, Message) error) {
	name := mt.Descriptor().FullName()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.entries[name]; dup {
		panic(fmt.Sprintf("inbox: %s registered twice", name))
	}
	r.entries[name] = entry{msgType: mt, handle: handle}
}

// Types returns the registered type names, handled and skipped, sorted.
func (r *Registry) Types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, string(n))
	}
	slices.Sort(names)
	return names
}

// len returns how many types are registered.
func (r *Registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// snapshot returns a copy of the entries, for one Consumer.
func (r *Registry) snapshot() map[protoreflect.FullName]entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.entries)
}
