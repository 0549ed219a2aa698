package pgsource

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/alpes/alpes/outbox/schema"
)

// Real pgoutput messages (protocol 1, messages on), captured from
// Postgres 15 with pg_logical_slot_peek_binary_changes over the outbox of
// the migrations: four transactions (two inserts; an insert after ALTER
// TABLE outbox ADD COLUMN extra, so behind a second relation message; a
// heartbeat, which is a logical message), in binary mode as the relay
// streams, then the same three inserts in text mode.
var (
	walBegin1          = mustHex("42000000000152ab9800030429e52f43f2000002d6")
	walRelation        = mustHex("52000040007075626c6963006f7574626f78006400080169640000000b86ffffffff00746f7069630000000019ffffffff006167677265676174655f69640000000019ffffffff00747970650000000019ffffffff00736368656d615f76657273696f6e0000000017ffffffff007061796c6f61640000000011ffffffff00686561646572730000000edaffffffff00637265617465645f617400000004a0ffffffff")
	walInsert1         = mustHex("49000040004e000862000000100102030405064708890a0b0c0d0e0f10620000002370657273697374656e743a2f2f616c7065732f6f72646572732f6576656e74732e763162000000076f726465722d31620000001b616c7065732e6f72646572732e76312e4f72646572506c6163656462000000040000000162000000050a036f2d316200000003017b7d620000000800030429c6790a40")
	walCommit1         = mustHex("4300000000000152ab98000000000152abc800030429e52f43f2")
	walBegin2          = mustHex("42000000000152ad1800030429e52f47db000002d7")
	walInsert2         = mustHex("49000040004e000862000000109b2f6a7e3c1d4e5f8a9b0c1d2e3f4a5b620000002370657273697374656e743a2f2f616c7065732f6f72646572732f6576656e74732e763162000000076f726465722d32620000001e616c7065732e6f72646572732e76312e4f72646572436f6e6669726d656462000000040000000262000000006200000060017b2274726163657374617465223a2022613d62222c20227472616365706172656e74223a202230302d34626639326633353737623334646136613363653932396430653065343733362d303066303637616130626139303262372d3031227d620000000800030429c6866a40")
	walCommit2         = mustHex("4300000000000152ad18000000000152ad4800030429e52f47db")
	walBegin3          = mustHex("42000000000152b1d800030429e52f61c8000002d9")
	walRelationAltered = mustHex("52000040007075626c6963006f7574626f78006400090169640000000b86ffffffff00746f7069630000000019ffffffff006167677265676174655f69640000000019ffffffff00747970650000000019ffffffff00736368656d615f76657273696f6e0000000017ffffffff007061796c6f61640000000011ffffffff00686561646572730000000edaffffffff00637265617465645f617400000004a0ffffffff0065787472610000000019ffffffff")
	walInsert3         = mustHex("49000040004e00096200000010c0ffee00000040008000000000000001620000002570657273697374656e743a2f2f616c7065732f7061796d656e74732f6576656e74732e763162000000057061792d31620000001a616c7065732e7061796d656e74732e76312e4361707475726564620000000400000001620000000200ff6200000014017b226e223a20332c202273223a2022c3a9227d620000000800030429e52f6196620000000178")
	walCommit3         = mustHex("4300000000000152b1d8000000000152b20800030429e52f61c8")
	walBegin4          = mustHex("42000000000152b25800030429e52f69a0000002da")
	walHeartbeat       = mustHex("4d01000000000152b258616c7065732e72656c61792e686561727462656174000000000178")
	walCommit4         = mustHex("4300000000000152b258000000000152b28800030429e52f69a0")
	walInsert1Text     = mustHex("49000040004e0008740000002430313032303330342d303530362d343730382d383930612d306230633064306530663130740000002370657273697374656e743a2f2f616c7065732f6f72646572732f6576656e74732e763174000000076f726465722d31740000001b616c7065732e6f72646572732e76312e4f72646572506c61636564740000000131740000000c5c783061303336663264333174000000027b7d740000001d323032362d31312d32362031303a30303a30302e3132333435362b3030")
	walInsert2Text     = mustHex("49000040004e0008740000002439623266366137652d336331642d346535662d386139622d306331643265336634613562740000002370657273697374656e743a2f2f616c7065732f6f72646572732f6576656e74732e763174000000076f726465722d32740000001e616c7065732e6f72646572732e76312e4f72646572436f6e6669726d656474000000013274000000025c78740000005f7b2274726163657374617465223a2022613d62222c20227472616365706172656e74223a202230302d34626639326633353737623334646136613363653932396430653065343733362d303066303637616130626139303262372d3031227d7400000016323032362d31312d32362031303a30303a30312b3030")
	walInsert3Text     = mustHex("49000040004e0009740000002463306666656530302d303030302d343030302d383030302d303030303030303030303031740000002570657273697374656e743a2f2f616c7065732f7061796d656e74732f6576656e74732e763174000000057061792d31740000001a616c7065732e7061796d656e74732e76312e436170747572656474000000013174000000065c783030666674000000137b226e223a20332c202273223a2022c3a9227d740000001d323032362d31312d32362031303a30383a33352e3338393834362b3030740000000178")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// frames joins pgoutput messages into one fuzz input: each message is
// preceded by its length as two big-endian bytes.
func frames(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// splitFrames undoes frames; a last frame shorter than its length takes
// what is left. It returns at most maxFrames messages.
func splitFrames(data []byte) [][]byte {
	const maxFrames = 64
	var out [][]byte
	for len(data) >= 2 && len(out) < maxFrames {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// FuzzDecodePgoutput feeds sequences of arbitrary pgoutput messages through
// the stream's decoder (pglogrepl's parser, then relations and decodeRow),
// as the replication connection hands them over. Whatever the bytes:
//   - nothing panics; a message that cannot be decoded is an error, and
//     decoding allocates in proportion to the input, whatever its lengths claim;
//   - a row that cannot be published carries an error wrapping ErrMalformedRow;
//   - decoding is deterministic and keeps nothing of its input: the changes
//     stay the same when the input buffers are overwritten afterwards, as
//     pgconn overwrites its read buffer with the next message;
//   - a row decoded without error has a canonical event id and round-trips:
//     encoded again as a binary insert into the outbox, it decodes to itself.
func FuzzDecodePgoutput(f *testing.F) {
	f.Add(frames(walBegin1, walRelation, walInsert1, walCommit1, walBegin2, walInsert2, walCommit2,
		walBegin3, walRelationAltered, walInsert3, walCommit3, walBegin4, walHeartbeat, walCommit4))
	f.Add(frames(walRelation, walInsert1Text, walInsert2Text, walRelationAltered, walInsert3Text))
	f.Add(frames(walInsert1))   // an insert before its relation
	f.Add(frames(walRelation))  // a relation alone
	f.Add(frames(walHeartbeat)) // a logical message alone
	for _, insert := range [][]byte{walInsert1, walInsert2, walInsert1Text, walInsert2Text} {
		f.Add(frames(walRelation, insert))
	}
	f.Add(frames(walRelationAltered, walInsert3))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := splitFrames(data)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		want, wantErr := decodeAll(msgs)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > maxDecodeAlloc+64*uint64(len(data)) {
			t.Fatalf("decoding %d bytes allocated %d", len(data), n)
		}

		scratch := make([][]byte, len(msgs))
		for i, m := range msgs {
			scratch[i] = bytes.Clone(m)
		}
		got, gotErr := decodeAll(scratch)
		for _, m := range scratch {
			for i := range m {
				m[i] = 0xa5
			}
		}
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("decoding twice: error %v, then %v", wantErr, gotErr)
		}
		if len(got) != len(want) {
			t.Fatalf("decoding twice: %d changes, then %d", len(want), len(got))
		}
		for i := range want {
			if a, b := describe(want[i]), describe(got[i]); a != b {
				t.Fatalf("change %d differs between two decodings, or changed with its input:\n%s\n%s", i, a, b)
			}
		}

		for _, c := range want {
			row, ok := c.(*Row)
			if !ok {
				continue
			}
			if row.Err != nil {
				if !errors.Is(row.Err, ErrMalformedRow) {
					t.Fatalf("row error %v does not wrap ErrMalformedRow", row.Err)
				}
				continue
			}
			checkRoundTrip(t, row)
		}
	})
}

// maxDecodeAlloc bounds what decoding allocates beyond 64 bytes per input
// byte: a message must not make the decoder allocate what its length fields
// claim before checking them (the type map of a fresh stream is most of it).
const maxDecodeAlloc = 4 << 20

// decodeAll decodes msgs in order with a fresh stream's decoder, up to the
// first error, and returns the changes it produced.
func decodeAll(msgs [][]byte) ([]Change, error) {
	ctx := context.Background()
	out := make(chan []Change, len(msgs)+1) // at most a batch per message: emit never waits
	s := &stream{rels: newRelations(), out: out}
	var err error
	for _, m := range msgs {
		if err = s.decode(ctx, m); err != nil {
			break
		}
	}
	if ferr := s.flush(ctx); ferr != nil && err == nil {
		err = ferr
	}
	close(out)
	var changes []Change
	for batch := range out {
		changes = append(changes, batch...)
	}
	return changes, err
}

// describe renders a change with all its fields, for comparisons.
func describe(c Change) string {
	switch c := c.(type) {
	case *Row:
		return fmt.Sprintf("row id=%q topic=%q key=%q type=%q version=%d payload=%x headers=%v created=%s err=%v",
			c.EventID, c.Topic, c.AggregateID, c.Type, c.SchemaVersion, c.Payload, c.Headers,
			c.CreatedAt.Format(time.RFC3339Nano), c.Err)
	case *Begin:
		return fmt.Sprintf("begin %s %s %d", c.CommitLSN, c.CommitTime.Format(time.RFC3339Nano), c.Xid)
	case *Commit:
		return fmt.Sprintf("commit %s %s %s", c.CommitLSN, c.EndLSN, c.CommitTime.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("%T %+v", c, c)
}

// outboxColumns is the outbox of the migrations, as a relation message
// describes it.
var outboxColumns = []*pglogrepl.RelationMessageColumn{
	{Name: "id", DataType: pgtype.UUIDOID},
	{Name: "topic", DataType: pgtype.TextOID},
	{Name: "aggregate_id", DataType: pgtype.TextOID},
	{Name: "type", DataType: pgtype.TextOID},
	{Name: "schema_version", DataType: pgtype.Int4OID},
	{Name: "payload", DataType: pgtype.ByteaOID},
	{Name: "headers", DataType: pgtype.JSONBOID},
	{Name: "created_at", DataType: pgtype.TimestamptzOID},
}

// checkRoundTrip encodes row as Postgres sends an outbox insert in binary
// mode and decodes it again: the result must be row, its time to the
// microsecond (Postgres's precision).
func checkRoundTrip(t *testing.T, row *Row) {
	t.Helper()
	var id pgtype.UUID
	if err := id.Scan(row.EventID); err != nil || !canonicalUUID(row.EventID) {
		t.Fatalf("event id %q is not a uuid in canonical form (%v)", row.EventID, err)
	}
	headers := []byte("{}")
	if row.Headers != nil {
		var err error
		if headers, err = json.Marshal(row.Headers); err != nil {
			t.Fatal(err)
		}
	}
	m := pgtype.NewMap()
	values := []any{id, row.Topic, row.AggregateID, row.Type, row.SchemaVersion, row.Payload, string(headers), row.CreatedAt}
	tuple := &pglogrepl.TupleData{}
	for i, v := range values {
		b, err := m.Encode(outboxColumns[i].DataType, pgtype.BinaryFormatCode, v, nil)
		if err != nil {
			t.Fatalf("encoding column %s of %s: %v", outboxColumns[i].Name, describe(row), err)
		}
		tuple.Columns = append(tuple.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeBinary, Data: b})
	}
	r := newRelations()
	r.add(&pglogrepl.RelationMessage{RelationID: 1, Namespace: "public", RelationName: schema.OutboxTable, Columns: outboxColumns})
	again := r.decodeRow(1, tuple)
	if again.Err != nil {
		t.Fatalf("row %s does not decode again: %v", describe(row), again.Err)
	}
	want := *row
	want.CreatedAt = want.CreatedAt.Truncate(time.Microsecond)
	if a, b := describe(&want), describe(again); a != b || !maps.Equal(want.Headers, again.Headers) {
		t.Fatalf("round trip changed the row:\n%s\n%s", a, b)
	}
}

// TestDecodeRowRefusesAnIDThatIsNotAUUID: an id column of another type
// than uuid (FuzzDecodePgoutput's find: a relation message naming another
// type) decodes to arbitrary text, which must not be published as an event id.
func TestDecodeRowRefusesAnIDThatIsNotAUUID(t *testing.T) {
	for _, id := range []*pglogrepl.TupleDataColumn{
		bin([]byte{0xc0, 0xff, 0xee, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1}),
		text("not-a-uuid"),
		text("01020304-0506-4708-890A-0B0C0D0E0F10"),
	} {
		r := newRelations()
		outboxRelation(r, col("id", pgtype.TextOID), col("topic", pgtype.TextOID), col("aggregate_id", pgtype.TextOID),
			col("type", pgtype.TextOID), col("payload", pgtype.ByteaOID))
		row := r.decodeRow(1, &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{id, text("t"), text("k"), text("x"), bin(nil)}})
		if !errors.Is(row.Err, ErrMalformedRow) {
			t.Errorf("id %q: err = %v, want ErrMalformedRow", id.Data, row.Err)
		}
	}
}
