package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/alpes/alpes/relay/pgsource"
)

// Sequence ids are what makes the broker's deduplication drop whatever a
// restarted relay sends again. A relay restarts from the slot's confirmed
// position and sees the same transactions in the same order, so the id of a
// message must be a pure function of its place in the stream that only grows:
//
//	sequence id = (commit LSN mod 2^43) << 20 | index of the row among all
//	              the rows of its transaction
//
// The index counts every outbox row of the transaction, whatever its topic
// and whether it is published or quarantined: a relay that decides otherwise
// about a row after a restart (a new validation, another size limit) must
// still send every row under the id it had. Counting per destination topic
// made a changed decision shift the ids of the rows after it onto ids other
// rows had used: one event dropped as a duplicate, another published twice.
// Each producer therefore sees gaps in its ids (the ids of rows that went
// elsewhere), which the broker's deduplication allows: it only requires
// them to grow. A consequence of growing ids: a row re-sent to a topic where
// a later row of its transaction is already persisted is dropped there, so
// the decision of the relay that sent a transaction whole stands.
//
// Commit LSNs grow strictly in stream order (change LSNs do not: transactions
// interleave), and two commit records are at least 24 bytes apart, so one
// transaction may use indexes up to 24·2^20 without reaching the next one's
// ids; the relay refuses a transaction with more rows than maxIndex rather
// than break the order. The high bits of the commit LSN (one "epoch" per 8
// TiB of WAL) go into the producer name, because a producer name is where the
// broker keeps its deduplication state.
const (
	indexBits = 20
	lsnBits   = 63 - indexBits
	lsnMask   = 1<<lsnBits - 1
	// maxIndex bounds a transaction's rows (see above).
	maxIndex = 24 << indexBits
)

// position is the place of one message in a source's stream.
type position struct {
	commitLSN pgsource.LSN
	index     int64 // among all the rows of the transaction
}

// sequenceID returns the message's sequence id and the epoch whose producer
// must send it.
func (p position) sequenceID() (seq int64, epoch uint64, err error) {
	if p.index < 0 || p.index >= maxIndex {
		return 0, 0, fmt.Errorf("transaction committed at %s has more than %d outbox rows", p.commitLSN, maxIndex)
	}
	lsn := uint64(p.commitLSN)
	return int64(lsn&lsnMask)<<indexBits + p.index, lsn >> lsnBits, nil
}

// producerName is the name of the producer that publishes one stream of a
// source's messages to one topic, in one lane and one epoch:
// relay.<source>.<stream>.<namespace>.<topic>.l<lane>, with .e<epoch>
// appended after the first 8 TiB of WAL. The stream is
// streamToken(identity) for the relay's own producers (see below), or a
// replay's own token; a replay publishes every lane through one producer
// (lane noLane, no .l part), one message per entry.
//
// The broker keeps deduplication state per producer name, and sequence ids
// order events only within one stream of WAL: a cluster restored from a
// dump, a promoted standby or a point-in-time restore writes new events at
// LSNs another stream has used. Were the name the source's alone, the broker
// would drop those events as duplicates of the older stream's, and the
// relay would confirm them: a silent loss. With the stream's identity in the
// name, each stream starts its own deduplication state; what is lost is
// only deduplication across the change (re-sent events arrive twice, which
// the inboxes absorb).
func producerName(source, stream, topic string, lane int, epoch uint64) string {
	name := "relay." + source + "." + stream + "." + topicTail(topic)
	if lane != noLane {
		name += fmt.Sprintf(".l%02d", lane)
	}
	if epoch > 0 {
		name += fmt.Sprintf(".e%d", epoch)
	}
	return name
}

// noLane is the lane of a producer that sends every lane's messages.
const noLane = -1

// streamTokenLen is the length of a streamToken.
const streamTokenLen = 16

// streamToken names the stream of WAL of a source's identity in producer
// names: 16 hex digits of a hash of its system identifier, timeline and
// database (the relay logs and reports the identity itself).
func streamToken(id pgsource.Identity) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%s", id.SystemID, id.Timeline, id.Database))
	return hex.EncodeToString(sum[:streamTokenLen/2])
}

// commitLSNOf is where in the WAL the transaction whose row a producer of
// epoch sends under sequence id seq committed: its commit LSN, plus the
// index's overflow above 20 bits (under 24), so always inside the commit
// record, before the transaction's end.
func commitLSNOf(seq int64, epoch uint64) pgsource.LSN {
	return pgsource.LSN(epoch<<lsnBits | uint64(seq)>>indexBits)
}

// topicTail is "<namespace>.<topic>" of persistent://<tenant>/<namespace>/<topic>.
func topicTail(topic string) string {
	rest := topic
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	parts := strings.Split(rest, "/")
	if len(parts) >= 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, ".")
}

// sourceName is what a source may be called: it ends up in producer names,
// slot names and metric labels.
var sourceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)
