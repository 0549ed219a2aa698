package pulsarwire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// ParseFrame decodes one frame from body, the bytes that follow the frame's
// u32 total size. The returned Message, if any, aliases body. ParseFrame does
// not verify the checksum (see Message.VerifyChecksum): a SEND with a bad
// checksum is answered, not dropped.
func ParseFrame(body []byte) (*Frame, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: %d bytes cannot hold a command size", ErrMalformedFrame, len(body))
	}
	cmdSize := uint64(binary.BigEndian.Uint32(body))
	rest := body[4:]
	if cmdSize > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: command size %d exceeds the %d bytes left", ErrMalformedFrame, cmdSize, len(rest))
	}
	cmd, err := decodeCommand(rest[:cmdSize])
	if err != nil {
		return nil, err
	}
	rest = rest[cmdSize:]
	if len(rest) == 0 {
		return &Frame{Command: cmd}, nil
	}
	msg, err := parseMessage(rest)
	if err != nil {
		return nil, err
	}
	return &Frame{Command: cmd, Message: msg}, nil
}

// parseMessage decodes the payload part of a frame: an optional broker
// entry metadata block, an optional checksum block, then the metadata size,
// metadata and payload.
func parseMessage(b []byte) (*Message, error) {
	if magicAt(b) == magicBrokerEntryMetadata {
		if len(b) < 6 {
			return nil, fmt.Errorf("%w: truncated broker entry metadata header", ErrMalformedFrame)
		}
		n := uint64(binary.BigEndian.Uint32(b[2:]))
		if n > uint64(len(b)-6) {
			return nil, fmt.Errorf("%w: broker entry metadata size %d exceeds the frame", ErrMalformedFrame, n)
		}
		b = b[6+n:]
	}
	msg := &Message{}
	if magicAt(b) == magicChecksum {
		if len(b) < 6 {
			return nil, fmt.Errorf("%w: truncated checksum header", ErrMalformedFrame)
		}
		msg.HasChecksum = true
		msg.Checksum = binary.BigEndian.Uint32(b[2:])
		b = b[6:]
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes cannot hold a metadata size", ErrMalformedFrame, len(b))
	}
	if n := uint64(binary.BigEndian.Uint32(b)); n > uint64(len(b)-4) {
		return nil, fmt.Errorf("%w: metadata size %d exceeds the %d bytes left", ErrMalformedFrame, n, len(b)-4)
	}
	msg.Raw = b
	return msg, nil
}

func magicAt(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// AppendFrame appends the encoding of cmd, and of msg when it is not nil,
// to dst. A message is always sent with its checksum block; its Checksum
// field is trusted, so a stored message is replayed without recomputing it.
func AppendFrame(dst []byte, cmd *wirev1.BaseCommand, msg *Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	dst, err = proto.MarshalOptions{}.MarshalAppend(dst, cmd)
	if err != nil {
		return dst[:start], fmt.Errorf("encoding %s command: %w", cmd.GetType(), err)
	}
	cmdSize := len(dst) - start - 8
	if msg != nil {
		dst = binary.BigEndian.AppendUint16(dst, magicChecksum)
		dst = binary.BigEndian.AppendUint32(dst, msg.Checksum)
		dst = append(dst, msg.Raw...)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(cmdSize))
	return dst, nil
}

// Reader reads frames from a byte stream, refusing frames larger than its
// limit before reading them. It is not safe for concurrent use.
type Reader struct {
	r            *bufio.Reader
	maxFrameSize int
}

// NewReader returns a Reader that refuses frames whose size, size prefix
// excluded, is above maxFrameSize.
func NewReader(r io.Reader, maxFrameSize int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), maxFrameSize: maxFrameSize}
}

// ReadFrame reads and decodes the next frame. It returns io.EOF when the
// stream ends cleanly between frames and io.ErrUnexpectedEOF when it ends
// inside one. Each frame gets its own buffer, so a returned Message may be
// kept.
func (r *Reader) ReadFrame() (*Frame, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if uint64(n) > uint64(r.maxFrameSize) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, r.maxFrameSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return ParseFrame(body)
}
