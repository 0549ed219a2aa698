package pulsarsend

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// frameReader reads the frames a broker sends a producer. Receipts, nearly
// everything it reads, are decoded by hand into a value, without
// allocating; other commands are decoded by pulsarwire. It is not safe for
// concurrent use.
type frameReader struct {
	r   *bufio.Reader
	buf []byte // the last frame's body, reused
}

// maxFrame bounds what a broker sends a producer; it sends no messages.
var maxFrame = pulsarwire.MaxFrameSize(pulsarwire.DefaultMaxMessageSize)

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// frame is one frame read: a receipt (cmd nil), or another command.
type frame struct {
	cmd     *wirev1.BaseCommand
	receipt receipt
}

// receipt is a SEND_RECEIPT.
type receipt struct {
	producerID, sequenceID uint64
	ledgerID, entryID      int64
}

// next reads the next frame.
func (r *frameReader) next() (frame, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.r, size[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if uint64(n) > uint64(maxFrame) {
		return frame{}, fmt.Errorf("%w: %d bytes, limit %d", pulsarwire.ErrFrameTooLarge, n, maxFrame)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	if rc, ok := parseReceipt(body); ok {
		return frame{receipt: rc}, nil
	}
	f, err := pulsarwire.ParseFrame(bytes.Clone(body))
	if err != nil {
		return frame{}, err
	}
	return frame{cmd: f.Command}, nil
}

// parseReceipt decodes body when it is a simple SEND_RECEIPT frame with
// the fields a receipt needs; ok is false for anything else, which the
// general decoder then handles (or refuses).
func parseReceipt(body []byte) (rc receipt, ok bool) {
	if len(body) < 4 {
		return rc, false
	}
	cmdSize := binary.BigEndian.Uint32(body)
	if uint64(cmdSize) != uint64(len(body)-4) {
		return rc, false // a payload, or malformed
	}
	var typ uint64
	var send []byte
	fields(body[4:], func(num protowire.Number, v uint64, b []byte) {
		switch num {
		case 1:
			typ = v
		case 7:
			send = b
		}
	}, &ok)
	if !ok || typ != uint64(wirev1.BaseCommand_SEND_RECEIPT) || send == nil {
		return rc, false
	}
	var haveProducer, haveSeq bool
	var id []byte
	fields(send, func(num protowire.Number, v uint64, b []byte) {
		switch num {
		case 1:
			rc.producerID, haveProducer = v, true
		case 2:
			rc.sequenceID, haveSeq = v, true
		case 3:
			id = b
		}
	}, &ok)
	if !ok || !haveProducer || !haveSeq {
		return rc, false
	}
	rc.ledgerID, rc.entryID = -1, -1
	if id != nil {
		fields(id, func(num protowire.Number, v uint64, _ []byte) {
			switch num {
			case 1:
				rc.ledgerID = int64(v)
			case 2:
				rc.entryID = int64(v)
			}
		}, &ok)
	}
	return rc, ok
}

// fields calls f with each varint (v) or length-delimited (b) field of the
// protobuf message m, skipping other wire types; *ok reports whether m
// parsed.
func fields(m []byte, f func(num protowire.Number, v uint64, b []byte), ok *bool) {
	*ok = false
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return
		}
		m = m[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(m)
			if n < 0 {
				return
			}
			f(num, v, nil)
			m = m[n:]
		case protowire.BytesType:
			b, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return
			}
			f(num, 0, b)
			m = m[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, m)
			if n < 0 {
				return
			}
			m = m[n:]
		}
	}
	*ok = true
}
