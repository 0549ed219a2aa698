package pgsource

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

func col(name string, oid uint32) *pglogrepl.RelationMessageColumn {
	return &pglogrepl.RelationMessageColumn{Name: name, DataType: oid}
}

func text(s string) *pglogrepl.TupleDataColumn {
	return &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(s)}
}

func bin(b []byte) *pglogrepl.TupleDataColumn {
	return &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeBinary, Data: b}
}

var null = &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull}

func outboxRelation(r *relations, cols ...*pglogrepl.RelationMessageColumn) {
	r.add(&pglogrepl.RelationMessage{RelationID: 1, Namespace: "public", RelationName: "outbox", Columns: cols})
}

func TestDecodeRowBinaryAndText(t *testing.T) {
	r := newRelations()
	outboxRelation(r,
		col("id", pgtype.UUIDOID), col("topic", pgtype.TextOID), col("aggregate_id", pgtype.TextOID),
		col("type", pgtype.TextOID), col("schema_version", pgtype.Int4OID), col("payload", pgtype.ByteaOID),
		col("headers", pgtype.JSONBOID), col("extra", pgtype.TextOID))
	uuid := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x47, 0x08, 0x89, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	version := binary.BigEndian.AppendUint32(nil, 2)
	row := r.decodeRow(1, &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
		bin(uuid), bin([]byte("persistent://alpes/orders/events.v1")), text("order-1"),
		bin([]byte("alpes.orders.v1.OrderPlaced")), bin(version), bin([]byte{0, 1, 2}),
		bin(append([]byte{1}, `{"traceparent":"00-a-b-01","n":3}`...)), text("ignored"),
	}})
	if row.Err != nil {
		t.Fatal(row.Err)
	}
	want := Row{EventID: "01020304-0506-4708-890a-0b0c0d0e0f10", Topic: "persistent://alpes/orders/events.v1",
		AggregateID: "order-1", Type: "alpes.orders.v1.OrderPlaced", SchemaVersion: 2}
	if row.EventID != want.EventID || row.Topic != want.Topic || row.AggregateID != want.AggregateID ||
		row.Type != want.Type || row.SchemaVersion != want.SchemaVersion || string(row.Payload) != "\x00\x01\x02" {
		t.Errorf("decoded %+v", row)
	}
	if len(row.Headers) != 1 || row.Headers["traceparent"] != "00-a-b-01" {
		t.Errorf("headers %v: want only the string-valued traceparent", row.Headers)
	}
}

func TestDecodeRowMalformed(t *testing.T) {
	cases := map[string]struct {
		cols   []*pglogrepl.RelationMessageColumn
		values []*pglogrepl.TupleDataColumn
	}{
		"a required column missing": {
			[]*pglogrepl.RelationMessageColumn{col("id", pgtype.UUIDOID), col("topic", pgtype.TextOID)},
			[]*pglogrepl.TupleDataColumn{text("01020304-0506-4708-890a-0b0c0d0e0f10"), text("t")},
		},
		"a null required column": {
			[]*pglogrepl.RelationMessageColumn{col("id", pgtype.UUIDOID), col("topic", pgtype.TextOID), col("aggregate_id", pgtype.TextOID), col("type", pgtype.TextOID), col("payload", pgtype.ByteaOID)},
			[]*pglogrepl.TupleDataColumn{text("01020304-0506-4708-890a-0b0c0d0e0f10"), text("t"), null, text("x"), bin(nil)},
		},
		"an unreadable uuid": {
			[]*pglogrepl.RelationMessageColumn{col("id", pgtype.UUIDOID), col("topic", pgtype.TextOID), col("aggregate_id", pgtype.TextOID), col("type", pgtype.TextOID), col("payload", pgtype.ByteaOID)},
			[]*pglogrepl.TupleDataColumn{bin([]byte{1, 2, 3}), text("t"), text("k"), text("x"), bin(nil)},
		},
		"headers that are not JSON": {
			[]*pglogrepl.RelationMessageColumn{col("id", pgtype.UUIDOID), col("topic", pgtype.TextOID), col("aggregate_id", pgtype.TextOID), col("type", pgtype.TextOID), col("payload", pgtype.ByteaOID), col("headers", pgtype.TextOID)},
			[]*pglogrepl.TupleDataColumn{text("01020304-0506-4708-890a-0b0c0d0e0f10"), text("t"), text("k"), text("x"), bin(nil), text("{not json")},
		},
		"more values than columns": {
			[]*pglogrepl.RelationMessageColumn{col("id", pgtype.UUIDOID)},
			[]*pglogrepl.TupleDataColumn{text("01020304-0506-4708-890a-0b0c0d0e0f10"), text("t")},
		},
	}
	for name, c := range cases {
		r := newRelations()
		outboxRelation(r, c.cols...)
		row := r.decodeRow(1, &pglogrepl.TupleData{Columns: c.values})
		if !errors.Is(row.Err, ErrMalformedRow) {
			t.Errorf("%s: err = %v, want ErrMalformedRow", name, row.Err)
		}
	}
}

func TestInsertBeforeItsRelationIsAnError(t *testing.T) {
	if _, err := newRelations().isOutbox(42); err == nil {
		t.Error("want an error for an unknown relation")
	}
}

// TestDecodeHeadersAgreesWithEncodingJSON: the direct reading of flat string
// objects gives exactly what encoding/json gives, and everything else still
// goes through encoding/json.
func TestDecodeHeadersAgreesWithEncodingJSON(t *testing.T) {
	tests := []struct {
		raw  string
		fast bool // read without encoding/json
	}{
		{`{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, true},
		{`{"traceparent":"a","tracestate":"b=c"}`, true},
		{" {\n\t\"a\" : \"b\" ,\r\n \"c\":\"\" } ", true},
		{`{"a": "1", "a": "2"}`, true},
		{`{ }`, true},
		{`{"a": 1, "b": "x"}`, false},
		{`{"a": {"b": "c"}, "d": "e"}`, false},
		{`{"a": "\u00e9", "b": "x"}`, false},
		{`{"a": "é"}`, false},
		{`{"a": "x\"y"}`, false},
		{`{"a": null}`, false},
		{`["a", "b"]`, false},
		{`{"a": "b"`, false},
		{`{"a": "b"} x`, false},
		{`{"a" "b"}`, false},
		{`{"a": "b",}`, false},
		{``, false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, fast := flatStringObject([]byte(tt.raw))
			if fast != tt.fast {
				t.Errorf("read directly: %v, want %v", fast, tt.fast)
			}
			got, gotErr := decodeHeaders([]byte(tt.raw))
			var m map[string]any
			wantErr := json.Unmarshal([]byte(tt.raw), &m)
			want := HeaderStrings(m)
			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("error %v, encoding/json says %v", gotErr, wantErr)
			}
			if !maps.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("headers %#v, encoding/json gives %#v", got, want)
			}
		})
	}
}
