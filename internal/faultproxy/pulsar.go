package faultproxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// A Pulsar client asks its service URL where a topic lives (LOOKUP) and then
// connects to the broker address in the answer, which is the broker's
// advertised address, not the proxy. To keep a client on the proxy, a Pulsar
// proxy rewrites every lookup answer from the broker to say
// proxy_through_service_url: the client then reaches the broker named in the
// answer through its service URL (the proxy), saying in CONNECT which broker
// it means. Nothing else in the stream changes, byte for byte.

// StartPulsar is Start for a proxy in front of a Pulsar broker's binary
// protocol port: clients whose service URL is the proxy stay on it after
// their lookups (see above), so every fault applies to all their traffic.
func StartPulsar(target string) (*Proxy, error) { return start(target, true) }

// NewPulsar is StartPulsar for tests, as New is for Start.
func NewPulsar(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := StartPulsar(target)
	if err != nil {
		t.Fatalf("starting fault proxy for Pulsar at %s: %v", target, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// maxCommandSize bounds the command of a frame the rewriter decodes: far
// above any real command, which are small, and below what a corrupt size
// field could make it allocate.
const maxCommandSize = 1 << 20

// errNotPulsar ends a connection whose server does not speak Pulsar's framing.
var errNotPulsar = errors.New("faultproxy: not a Pulsar frame")

// lookupRewriter reads a Pulsar broker's byte stream and yields it unchanged
// except for lookup answers, which it re-encodes with
// proxy_through_service_url set. It holds one frame's command at most;
// message payloads pass through as they are read.
type lookupRewriter struct {
	r       *bufio.Reader
	pending []byte // the current frame's head (sizes and command), not yet returned
	body    uint32 // bytes of the current frame after its command, not yet returned
}

func newLookupRewriter(r io.Reader) *lookupRewriter {
	return &lookupRewriter{r: bufio.NewReaderSize(r, chunkSize)}
}

// Read implements io.Reader. It returns io.EOF when the server ends its
// stream, even inside a frame: the client sees it cut short either way.
func (l *lookupRewriter) Read(p []byte) (int, error) {
	if len(l.pending) == 0 && l.body == 0 {
		if err := l.nextFrame(); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			return 0, err
		}
	}
	if len(l.pending) > 0 {
		n := copy(p, l.pending)
		l.pending = l.pending[n:]
		return n, nil
	}
	n, err := l.r.Read(p[:min(uint32(len(p)), l.body)])
	l.body -= uint32(n)
	return n, err
}

// nextFrame reads the next frame's sizes and command into pending,
// rewritten when the command is a lookup answer.
func (l *lookupRewriter) nextFrame() error {
	var head [8]byte
	if _, err := io.ReadFull(l.r, head[:]); err != nil {
		return err
	}
	total, cmdSize := binary.BigEndian.Uint32(head[:4]), binary.BigEndian.Uint32(head[4:])
	if cmdSize > maxCommandSize || uint64(cmdSize)+4 > uint64(total) {
		return fmt.Errorf("%w: frame of %d bytes with a command of %d", errNotPulsar, total, cmdSize)
	}
	raw := make([]byte, 8+cmdSize)
	copy(raw, head[:])
	if _, err := io.ReadFull(l.r, raw[8:]); err != nil {
		return err
	}
	l.pending, l.body = raw, total-4-cmdSize
	cmd := new(wirev1.BaseCommand)
	if err := proto.Unmarshal(raw[8:], cmd); err != nil || cmd.GetType() != wirev1.BaseCommand_LOOKUP_RESPONSE || cmd.LookupTopicResponse == nil {
		return nil // not ours to change: pass it on as it is
	}
	cmd.LookupTopicResponse.ProxyThroughServiceUrl = proto.Bool(true)
	rewritten, err := pulsarwire.AppendFrame(nil, cmd, nil)
	if err != nil {
		return fmt.Errorf("re-encoding a lookup answer: %w", err)
	}
	l.pending = rewritten
	return nil
}
