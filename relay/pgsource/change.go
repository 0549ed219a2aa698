// Package pgsource is the Postgres side of the relay: it checks that a source
// database can be streamed (Preflight), finds or creates its permanent logical
// replication slot (EnsureSlot), and streams the outbox inserts of committed
// transactions, in commit order, decoded from pgoutput (Stream).
//
// The stream keeps its connection healthy by itself: it answers keepalives
// and sends standby status updates on a deadline, reporting as flushed only
// the position its caller has confirmed. It never derives the flush position
// from what it has received.
package pgsource

import (
	"time"

	"github.com/jackc/pglogrepl"
)

// LSN is a position in the write-ahead log.
type LSN = pglogrepl.LSN

// Change is one item of the stream: *Begin, *Row, *Commit or *Keepalive.
type Change interface{ change() }

// Begin opens a committed transaction. Every Row up to the matching Commit
// belongs to it.
type Begin struct {
	// CommitLSN is the position of the transaction's commit record; commit
	// LSNs grow strictly in stream order.
	CommitLSN  LSN
	CommitTime time.Time
	Xid        uint32
}

// Row is one outbox insert. When the row cannot be decoded into a valid
// outbox message, Err says why and the fields hold what could be read.
type Row struct {
	EventID       string // uuid, canonical text form
	Topic         string
	AggregateID   string
	Type          string
	SchemaVersion int32
	Payload       []byte
	Headers       map[string]string
	CreatedAt     time.Time
	Err           error
}

// Commit closes the transaction opened by the latest Begin.
type Commit struct {
	CommitLSN LSN
	// EndLSN is the position just past the commit record: confirming it tells
	// Postgres the transaction need never be sent again.
	EndLSN     LSN
	CommitTime time.Time
}

// Keepalive reports the server's position while no transaction is being sent.
// Every transaction that committed before ServerWALEnd has already been
// streamed, so when all of them are published ServerWALEnd may be confirmed.
type Keepalive struct {
	ServerWALEnd LSN
}

func (*Begin) change()     {}
func (*Row) change()       {}
func (*Commit) change()    {}
func (*Keepalive) change() {}
