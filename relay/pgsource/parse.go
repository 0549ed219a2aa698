package pgsource

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// parseMessage parses one pgoutput message, or returns nil for one the
// stream has no use for: updates, deletes and truncates are not published
// (publish = 'insert') and logical messages (heartbeats) matter only for
// the transaction around them, so they are not parsed at all.
//
// pglogrepl's decoders trust their input. A message whose lengths are wrong
// makes them allocate what it claims (up to 4 GiB per column of an insert),
// slice past its end into whatever follows it in the read buffer, or panic.
// So an insert's tuple lengths are checked first, the message is handed
// over with its capacity cut to its length, and a panic becomes an error:
// the session ends and streams again from the confirmed position, rather
// than the process, with every source, going down. (FuzzDecodePgoutput
// found all three.)
func parseMessage(wal []byte) (msg pglogrepl.Message, err error) {
	if len(wal) == 0 {
		return nil, errors.New("empty message")
	}
	switch pglogrepl.MessageType(wal[0]) {
	case pglogrepl.MessageTypeUpdate, pglogrepl.MessageTypeDelete, pglogrepl.MessageTypeTruncate, pglogrepl.MessageTypeMessage:
		return nil, nil
	case pglogrepl.MessageTypeInsert:
		if err := checkInsert(wal); err != nil {
			return nil, fmt.Errorf("malformed insert: %w", err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed message of type %q, %d bytes: %v", wal[0], len(wal), r)
		}
	}()
	return pglogrepl.Parse(wal[:len(wal):len(wal)])
}

// checkInsert checks that an insert message holds what its lengths claim:
// 'I', the relation id (4 bytes), 'N', the column count (2 bytes), then for
// each column its kind and, for a text or binary value, its length (4 bytes)
// and the value.
func checkInsert(wal []byte) error {
	if len(wal) < 8 || wal[5] != 'N' {
		return fmt.Errorf("%d bytes without a new tuple", len(wal))
	}
	columns, rest := int(binary.BigEndian.Uint16(wal[6:8])), wal[8:]
	for i := range columns {
		if len(rest) == 0 {
			return fmt.Errorf("ends before column %d of %d", i+1, columns)
		}
		kind := rest[0]
		rest = rest[1:]
		switch kind {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if len(rest) < 4 {
				return fmt.Errorf("ends in the length of column %d", i+1)
			}
			n := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(n) > uint64(len(rest)) {
				return fmt.Errorf("column %d claims %d bytes, %d are left", i+1, n, len(rest))
			}
			rest = rest[n:]
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
		default:
			return fmt.Errorf("column %d of unknown kind %q", i+1, kind)
		}
	}
	return nil
}

// canonicalUUID reports whether s is a uuid as Postgres prints one:
// 8-4-4-4-12 lowercase hex digits.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case ('0' <= c && c <= '9') || ('a' <= c && c <= 'f'):
		default:
			return false
		}
	}
	return true
}
