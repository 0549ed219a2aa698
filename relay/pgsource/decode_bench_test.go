package pgsource

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// Micro-benchmarks of pgoutput decoding: no Postgres, the wire bytes of one
// outbox transaction built here as the walsender sends them with
// proto_version 1 and binary 'true'. docs/profiles.md records the figures.
//
//	go test ./relay/pgsource/ -run '^$' -bench 'Decode' -count 6

// benchOutboxColumns is the outbox table of outbox/schema/outbox.sql.
var benchOutboxColumns = []struct {
	name string
	oid  uint32
}{
	{"id", pgtype.UUIDOID}, {"topic", pgtype.TextOID}, {"aggregate_id", pgtype.TextOID},
	{"type", pgtype.TextOID}, {"schema_version", pgtype.Int4OID}, {"payload", pgtype.ByteaOID},
	{"headers", pgtype.JSONBOID}, {"created_at", pgtype.TimestamptzOID},
}

// pgEpoch is where pgoutput's timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgMicros(t time.Time) uint64 { return uint64(t.Sub(pgEpoch).Microseconds()) }

func appendCString(b []byte, s string) []byte { return append(append(b, s...), 0) }

// benchRelationMessage is the pgoutput Relation message of the outbox.
func benchRelationMessage(relID uint32) []byte {
	b := []byte{'R'}
	b = binary.BigEndian.AppendUint32(b, relID)
	b = appendCString(b, "public")
	b = appendCString(b, "outbox")
	b = append(b, 'd')
	b = binary.BigEndian.AppendUint16(b, uint16(len(benchOutboxColumns)))
	for i, c := range benchOutboxColumns {
		flags := byte(0)
		if i == 0 {
			flags = 1 // part of the key
		}
		b = append(b, flags)
		b = appendCString(b, c.name)
		b = binary.BigEndian.AppendUint32(b, c.oid)
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // typmod -1
	}
	return b
}

// benchInsertMessage is the pgoutput Insert of one outbox row in binary
// format: a 128-byte payload and a traceparent header, as the BFF writes.
func benchInsertMessage(relID uint32) []byte {
	uuid := []byte{0x01, 0x93, 0x5e, 0x1a, 0x2b, 0x3c, 0x7d, 0x4e, 0x8f, 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76}
	version := binary.BigEndian.AppendUint32(nil, 1)
	headers := append([]byte{1}, `{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`...)
	created := binary.BigEndian.AppendUint64(nil, pgMicros(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)))
	values := [][]byte{
		uuid, []byte("persistent://alpes/orders/commands.v1"), []byte("01935e1a-2b3c-7d4e-8f10-213243546576"),
		[]byte("alpes.orders.v1.PlaceOrder"), version, []byte(strings.Repeat("p", 128)), headers, created,
	}
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, relID)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(values)))
	for _, v := range values {
		b = append(b, 'b')
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

func benchBeginMessage(commitLSN LSN, at time.Time, xid uint32) []byte {
	b := []byte{'B'}
	b = binary.BigEndian.AppendUint64(b, uint64(commitLSN))
	b = binary.BigEndian.AppendUint64(b, pgMicros(at))
	return binary.BigEndian.AppendUint32(b, xid)
}

func benchCommitMessage(commitLSN, endLSN LSN, at time.Time) []byte {
	b := []byte{'C', 0}
	b = binary.BigEndian.AppendUint64(b, uint64(commitLSN))
	b = binary.BigEndian.AppendUint64(b, uint64(endLSN))
	return binary.BigEndian.AppendUint64(b, pgMicros(at))
}

// xlogData wraps a pgoutput message as the CopyData payload of the stream.
func xlogData(walStart LSN, msg []byte) []byte {
	b := []byte{pglogrepl.XLogDataByteID}
	b = binary.BigEndian.AppendUint64(b, uint64(walStart))
	b = binary.BigEndian.AppendUint64(b, uint64(walStart))
	b = binary.BigEndian.AppendUint64(b, pgMicros(time.Now()))
	return append(b, msg...)
}

// newBenchStream is a stream that decodes into batches handed to out
// without a connection: only handle and decode are called on it.
func newBenchStream(out chan []Change) *stream {
	return &stream{opts: StreamOptions{StatusInterval: time.Hour}, out: out, rels: newRelations(),
		nextStatus: time.Now().Add(time.Hour)}
}

// BenchmarkDecodeTransaction decodes the four messages of one single-row
// outbox transaction (Begin, Insert, Commit; the Relation is known already)
// from their CopyData payloads into Begin, Row and Commit changes, batching
// included: what the stream's goroutine does per transaction.
func BenchmarkDecodeTransaction(b *testing.B) {
	const relID = 16400
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	msgs := [][]byte{
		xlogData(0x1000, benchBeginMessage(0x1100, at, 7)),
		xlogData(0x1000, benchInsertMessage(relID)),
		xlogData(0x1100, benchCommitMessage(0x1100, 0x1130, at)),
	}
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	out := make(chan []Change, 1)
	s := newBenchStream(out)
	ctx := context.Background()
	if err := s.handle(ctx, xlogData(0x1000, benchRelationMessage(relID))); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, m := range msgs {
			if err := s.handle(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-out: // a full batch, taken as the pipeline would
		default:
		}
	}
	b.StopTimer()
	if row, ok := s.batch[len(s.batch)-2].(*Row); !ok || row.Err != nil || len(row.Headers) != 1 {
		b.Fatalf("decoded %#v", s.batch[len(s.batch)-2])
	}
}

// BenchmarkDecodeTrickle is BenchmarkDecodeTransaction at a low rate: the
// stream hands each transaction over on its own, as it does when the read
// buffer is empty after every transaction, after a backlog has filled one
// full batch first.
func BenchmarkDecodeTrickle(b *testing.B) {
	const relID = 16400
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	msgs := [][]byte{
		xlogData(0x1000, benchBeginMessage(0x1100, at, 7)),
		xlogData(0x1000, benchInsertMessage(relID)),
		xlogData(0x1100, benchCommitMessage(0x1100, 0x1130, at)),
	}
	out := make(chan []Change, 1)
	s := newBenchStream(out)
	ctx := context.Background()
	if err := s.handle(ctx, xlogData(0x1000, benchRelationMessage(relID))); err != nil {
		b.Fatal(err)
	}
	for len(s.batch) < MaxBatchChanges-len(msgs) { // the backlog: one full batch
		for _, m := range msgs {
			if err := s.handle(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, m := range msgs {
		if err := s.handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	<-out
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if err := s.handle(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.flush(ctx); err != nil {
			b.Fatal(err)
		}
		<-out
	}
}

// BenchmarkDecodeRelation decodes the outbox's Relation message: sent once
// per session and after every ALTER TABLE, so it is the cold path.
func BenchmarkDecodeRelation(b *testing.B) {
	msg := xlogData(0x1000, benchRelationMessage(16400))
	s := newBenchStream(make(chan []Change, 1))
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.handle(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRow is the outbox row alone: the Insert's tuple, already
// parsed by pglogrepl, into a Row (columns by name, uuid, bytea, jsonb
// headers, timestamptz).
func BenchmarkDecodeRow(b *testing.B) {
	const relID = 16400
	rel, err := pglogrepl.Parse(benchRelationMessage(relID))
	if err != nil {
		b.Fatal(err)
	}
	ins, err := pglogrepl.Parse(benchInsertMessage(relID))
	if err != nil {
		b.Fatal(err)
	}
	r := newRelations()
	r.add(rel.(*pglogrepl.RelationMessage))
	tuple := ins.(*pglogrepl.InsertMessage).Tuple
	b.ReportAllocs()
	for b.Loop() {
		if row := r.decodeRow(relID, tuple); row.Err != nil {
			b.Fatal(row.Err)
		}
	}
}

// TestScanBinaryAgreesWithPgtype: the direct decoding behind the decode
// benchmarks' figures gives what pgtype gives, and leaves to pgtype what it
// does not handle.
func TestScanBinaryAgreesWithPgtype(t *testing.T) {
	uuid := []byte{0x01, 0x93, 0x5e, 0x1a, 0x2b, 0x3c, 0x7d, 0x4e, 0x8f, 0x10, 0x21, 0x32, 0x43, 0x54, 0xa5, 0xff}
	types := pgtype.NewMap()
	tests := []struct {
		name   string
		oid    uint32
		data   []byte
		dst    func() any
		direct bool
	}{
		{"text", pgtype.TextOID, []byte("persistent://alpes/orders/events.v1"), func() any { return new(string) }, true},
		{"empty text", pgtype.TextOID, []byte{}, func() any { return new(string) }, true},
		{"varchar", pgtype.VarcharOID, []byte("x"), func() any { return new(string) }, true},
		{"uuid", pgtype.UUIDOID, uuid, func() any { return new(string) }, true},
		{"short uuid", pgtype.UUIDOID, uuid[:3], func() any { return new(string) }, false},
		{"bytea", pgtype.ByteaOID, []byte{0, 1, 2}, func() any { return new([]byte) }, true},
		{"empty bytea", pgtype.ByteaOID, []byte{}, func() any { return new([]byte) }, true},
		{"jsonb", pgtype.JSONBOID, append([]byte{1}, `{"a": "b"}`...), func() any { return new([]byte) }, true},
		{"jsonb of another version", pgtype.JSONBOID, append([]byte{2}, `{}`...), func() any { return new([]byte) }, false},
		{"empty jsonb", pgtype.JSONBOID, []byte{}, func() any { return new([]byte) }, false},
		{"int4", pgtype.Int4OID, binary.BigEndian.AppendUint32(nil, 0xfffffffe), func() any { return new(int32) }, true},
		{"short int4", pgtype.Int4OID, []byte{1}, func() any { return new(int32) }, false},
		{"int8 into int32", pgtype.Int8OID, binary.BigEndian.AppendUint64(nil, 7), func() any { return new(int32) }, false},
		{"timestamptz", pgtype.TimestamptzOID, binary.BigEndian.AppendUint64(nil, 1), func() any { return new(time.Time) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := tt.dst(), tt.dst()
			if direct := scanBinary(tt.oid, tt.data, got); direct != tt.direct {
				t.Fatalf("decoded directly: %v, want %v", direct, tt.direct)
			}
			wantErr := types.Scan(tt.oid, pgtype.BinaryFormatCode, tt.data, want)
			if !tt.direct {
				return
			}
			if wantErr != nil {
				t.Fatalf("pgtype fails with %v where the direct decoding succeeds", wantErr)
			}
			if g, w := fmt.Sprintf("%#v", reflect.ValueOf(got).Elem()), fmt.Sprintf("%#v", reflect.ValueOf(want).Elem()); g != w {
				t.Errorf("decoded %s, pgtype gives %s", g, w)
			}
		})
	}
}
