package pulsarwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Protocol constants.
const (
	// ProtocolVersion is the protocol version the broker announces.
	ProtocolVersion = 20
	// DefaultMaxMessageSize is Pulsar's default limit on a message
	// (metadata plus payload), announced in CONNECTED.
	DefaultMaxMessageSize = 5 << 20
	// FramePadding is what a frame may carry on top of the maximum message
	// size: the command and the frame's headers.
	FramePadding = 10 << 10

	magicChecksum            uint16 = 0x0e01
	magicBrokerEntryMetadata uint16 = 0x0e02
)

// Errors returned by the decoder. Malformed and oversized frames are
// protocol violations: the connection that sent them cannot be trusted to be
// in sync any more and should be closed.
var (
	ErrMalformedFrame   = errors.New("malformed frame")
	ErrFrameTooLarge    = errors.New("frame too large")
	ErrChecksumMismatch = errors.New("checksum mismatch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC32C of b, the checksum Pulsar puts in front of a
// message's metadata and payload.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// MaxFrameSize returns the largest frame, size prefix excluded, that a peer
// may send when maxMessageSize is the announced message size limit.
func MaxFrameSize(maxMessageSize int) int { return maxMessageSize + FramePadding }

// Frame is one decoded frame: a command and, for SEND and MESSAGE, the
// message that travels with it.
type Frame struct {
	Command *wirev1.BaseCommand
	// Message is nil for a simple command.
	Message *Message
}

// ChecksumBlockLen is the length of the checksum block (magic number and
// CRC32C) that precedes Raw when HasChecksum is set.
const ChecksumBlockLen = 6

// Message is the payload part of a frame. Raw holds the bytes covered by the
// checksum, [u32 metadataSize][MessageMetadata][payload], exactly as they
// were received; the broker stores and replays them unchanged.
type Message struct {
	// HasChecksum reports whether the frame carried the 0x0e01 block;
	// clients of protocol version 6 and later always send it.
	HasChecksum bool
	Checksum    uint32
	// Raw is [u32 metadataSize][MessageMetadata][payload].
	Raw []byte
}

// Metadata returns the raw MessageMetadata bytes inside m.Raw.
func (m *Message) Metadata() []byte {
	n := binary.BigEndian.Uint32(m.Raw)
	return m.Raw[4 : 4+n]
}

// WireLen is the length of the message as it travels and is stored: Raw,
// plus the checksum block when there is one. Pulsar counts a message's
// bytes this way in its stats.
func (m *Message) WireLen() int64 {
	if m.HasChecksum {
		return int64(len(m.Raw)) + ChecksumBlockLen
	}
	return int64(len(m.Raw))
}

// Payload returns the payload bytes after the metadata inside m.Raw.
func (m *Message) Payload() []byte {
	n := binary.BigEndian.Uint32(m.Raw)
	return m.Raw[4+n:]
}

// VerifyChecksum reports ErrChecksumMismatch when the message carried a
// checksum that does not match its bytes. A message without a checksum
// passes.
func (m *Message) VerifyChecksum() error {
	if !m.HasChecksum {
		return nil
	}
	if got := Checksum(m.Raw); got != m.Checksum {
		return fmt.Errorf("%w: frame says %#08x, bytes give %#08x", ErrChecksumMismatch, m.Checksum, got)
	}
	return nil
}

// DecodeMetadata unmarshals the message's metadata.
func (m *Message) DecodeMetadata() (*wirev1.MessageMetadata, error) {
	var md wirev1.MessageMetadata
	if err := proto.Unmarshal(m.Metadata(), &md); err != nil {
		return nil, fmt.Errorf("%w: decoding message metadata: %w", ErrMalformedFrame, err)
	}
	return &md, nil
}

// NewMessage builds the checksummed part of a payload frame from metadata
// and payload, as a producer does.
func NewMessage(md *wirev1.MessageMetadata, payload []byte) (*Message, error) {
	mdBytes, err := proto.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("encoding message metadata: %w", err)
	}
	raw := make([]byte, 4, 4+len(mdBytes)+len(payload))
	binary.BigEndian.PutUint32(raw, uint32(len(mdBytes)))
	raw = append(append(raw, mdBytes...), payload...)
	return &Message{HasChecksum: true, Checksum: Checksum(raw), Raw: raw}, nil
}
