package pgsource

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/alpes/alpes/outbox/schema"
)

// ErrMalformedRow marks an outbox row the relay cannot publish as it is.
var ErrMalformedRow = errors.New("malformed outbox row")

// relations decodes pgoutput tuples by column name, so that a relation
// message announcing a changed outbox (ALTER TABLE mid-stream) simply replaces
// the column layout used for the rows that follow it.
type relations struct {
	types  *pgtype.Map
	byID   map[uint32]*relation
	outbox string // schema-qualified name of the streamed table, "public.outbox"
}

type relation struct {
	name    string
	columns []*pglogrepl.RelationMessageColumn
}

func newRelations() *relations {
	return &relations{types: pgtype.NewMap(), byID: map[uint32]*relation{}}
}

func (r *relations) add(m *pglogrepl.RelationMessage) {
	r.byID[m.RelationID] = &relation{name: m.Namespace + "." + m.RelationName, columns: m.Columns}
}

// isOutbox reports whether an insert into relation id is an outbox insert.
// Only the outbox is in the publication, so any table named outbox is ours.
func (r *relations) isOutbox(id uint32) (bool, error) {
	rel, ok := r.byID[id]
	if !ok {
		return false, fmt.Errorf("insert for relation %d before its relation message", id)
	}
	_, table := splitQualified(rel.name)
	return table == schema.OutboxTable, nil
}

func splitQualified(name string) (schema, table string) {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[:i], name[i+1:]
		}
	}
	return "", name
}

// decodeRow turns an outbox insert into a Row. Columns it does not know (added
// by a later migration) are ignored; a missing or unreadable required column
// makes the row malformed rather than stopping the stream.
func (r *relations) decodeRow(id uint32, tuple *pglogrepl.TupleData) *Row {
	rel := r.byID[id]
	row := &Row{}
	var headers []byte // jsonb, decoded into row.Headers below
	seen := 0
	var errs []error
	for i, col := range tuple.Columns {
		if i >= len(rel.columns) {
			errs = append(errs, fmt.Errorf("tuple has %d columns, relation %d", len(tuple.Columns), len(rel.columns)))
			break
		}
		meta := rel.columns[i]
		dst, required := row.field(meta.Name, &headers)
		if dst == nil {
			continue
		}
		if required {
			seen++
		}
		if col.DataType == pglogrepl.TupleDataTypeNull {
			if required {
				errs = append(errs, fmt.Errorf("column %s is null", meta.Name))
			}
			continue
		}
		if col.DataType == pglogrepl.TupleDataTypeBinary && scanBinary(meta.DataType, col.Data, dst) {
			continue
		}
		format := int16(pgtype.TextFormatCode)
		if col.DataType == pglogrepl.TupleDataTypeBinary {
			format = pgtype.BinaryFormatCode
		}
		if err := r.types.Scan(meta.DataType, format, col.Data, dst); err != nil {
			errs = append(errs, fmt.Errorf("column %s: %w", meta.Name, err))
		}
	}
	if seen < requiredColumns {
		errs = append(errs, fmt.Errorf("outbox has %d of the %d required columns", seen, requiredColumns))
	}
	// The column is uuid in every migration, which decodes to the canonical
	// form. A column of another type (a domain over uuid, text after an
	// ALTER TABLE) decodes to whatever its bytes are, and consumers
	// deduplicate by this id: such a row is not published as it is.
	if row.EventID != "" && !canonicalUUID(row.EventID) {
		errs = append(errs, fmt.Errorf("column id: %q is not a uuid in canonical form", row.EventID))
	}
	if headers != nil && string(headers) != "{}" { // many rows carry no headers
		h, err := decodeHeaders(headers)
		if err != nil {
			errs = append(errs, fmt.Errorf("column headers: %w", err))
		}
		row.Headers = h
	}
	if len(errs) > 0 {
		row.Err = fmt.Errorf("%w: %w", ErrMalformedRow, errors.Join(errs...))
	}
	return row
}

// scanBinary decodes the binary form of the outbox's usual column types
// into dst directly, as pgtype would, and reports whether it did: without
// pgtype's scan plans, which cost five allocations a row. Anything it does
// not know, or data of an unexpected shape, is left to pgtype (false), so
// that errors read the same.
func scanBinary(oid uint32, data []byte, dst any) bool {
	switch dst := dst.(type) {
	case *string:
		switch {
		case oid == pgtype.TextOID || oid == pgtype.VarcharOID:
			*dst = string(data)
			return true
		case oid == pgtype.UUIDOID && len(data) == 16:
			*dst = formatUUID(data)
			return true
		}
	case *[]byte:
		switch {
		case oid == pgtype.ByteaOID:
			*dst = bytes.Clone(data) // nil stays nil, as with pgtype
			return true
		case oid == pgtype.JSONBOID && len(data) > 0 && data[0] == 1: // jsonb's version 1
			*dst = bytes.Clone(data[1:])
			return true
		}
	case *int32:
		if oid == pgtype.Int4OID && len(data) == 4 {
			*dst = int32(binary.BigEndian.Uint32(data))
			return true
		}
	}
	return false
}

// formatUUID is the canonical text form of a 16-byte uuid, lowercase.
func formatUUID(u []byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], u[10:16])
	return string(buf[:])
}

// requiredColumns counts the columns every outbox row must carry.
const requiredColumns = 5 // id, topic, aggregate_id, type, payload

// field returns where the column named name decodes to, and whether the
// column is required. The headers column goes to headers for a second step.
func (row *Row) field(name string, headers *[]byte) (dst any, required bool) {
	switch name {
	case schema.OutboxID:
		return &row.EventID, true
	case schema.OutboxTopic:
		return &row.Topic, true
	case schema.OutboxAggregateID:
		return &row.AggregateID, true
	case schema.OutboxType:
		return &row.Type, true
	case schema.OutboxPayload:
		return &row.Payload, true
	case schema.OutboxSchemaVersion:
		return &row.SchemaVersion, false
	case schema.OutboxHeaders:
		return headers, false
	case schema.OutboxCreatedAt:
		return &row.CreatedAt, false
	}
	return nil, false
}

// decodeHeaders returns the string-valued entries of a row's headers, a JSON
// object. The common shape, a flat object of plain ASCII strings such as
// {"traceparent": "00-…"}, is read directly; anything else goes through
// encoding/json, so both give the same result.
func decodeHeaders(raw []byte) (map[string]string, error) {
	if h, ok := flatStringObject(raw); ok {
		return h, nil
	}
	var m map[string]any
	err := json.Unmarshal(raw, &m)
	return HeaderStrings(m), err
}

// flatStringObject parses raw when it is a JSON object whose keys and values
// are all strings of printable ASCII without escapes; ok is false for
// anything else, which the caller then hands to encoding/json. An empty
// object gives nil, as HeaderStrings does.
func flatStringObject(raw []byte) (h map[string]string, ok bool) {
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return nil, false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return nil, skipSpace(raw, i+1) == len(raw)
	}
	for {
		key, next, ok := plainString(raw, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(raw, next)
		if i == len(raw) || raw[i] != ':' {
			return nil, false
		}
		value, next, ok := plainString(raw, skipSpace(raw, i+1))
		if !ok {
			return nil, false
		}
		if h == nil {
			h = make(map[string]string, 2)
		}
		h[key] = value // a repeated key: the last one wins, as with encoding/json
		i = skipSpace(raw, next)
		if i == len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return h, skipSpace(raw, i+1) == len(raw)
		default:
			return nil, false
		}
	}
}

// plainString reads the JSON string starting at raw[i] when it holds only
// printable ASCII other than a backslash, and returns it with the index just
// past its closing quote.
func plainString(raw []byte, i int) (s string, next int, ok bool) {
	if i >= len(raw) || raw[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return string(raw[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// HeaderStrings keeps the string-valued entries of an outbox row's headers:
// they become Pulsar message properties, which are strings.
func HeaderStrings(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
