package inbox

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// transientClasses are the SQLSTATE classes (the first two characters of a
// code) of database faults that heal without anyone touching the message.
var transientClasses = map[string]bool{
	"08": true, // connection exception: lost, refused or broken connections
	"40": true, // transaction rollback: serialization failure 40001, deadlock 40P01
	"53": true, // insufficient resources: disk full, out of memory, too many connections
	"57": true, // operator intervention: cancelled or timed out 57014, shutdown 57P01-02, starting up 57P03
	"58": true, // system error: I/O error 58030, a file the server misses
}

// transientCodes are the single SQLSTATEs of other classes that heal.
var transientCodes = map[string]bool{
	"25006": true, // read-only SQL transaction: a primary demoted, or a standby not yet promoted, in a fail-over
	"55P03": true, // lock not available: lock_timeout behind someone else's lock
}

// isTransient reports whether err is the database's fault rather than the
// message's: a fault that heals by itself, so that applying the message
// again later can succeed. Such an error, from the framework's statements or
// a handler's, is retried with the whole run of messages, with backoff capped
// at Config.MaxBackoff, until it commits or the context ends; it never counts
// toward MaxAttempts and never parks or dead-letters a message.
//
// Transient are:
//   - a server error (*pgconn.PgError anywhere in err's chain) of a SQLSTATE
//     class in transientClasses (08, 40, 53, 57, 58) or a code in
//     transientCodes (25006, 55P03);
//   - an error without a SQLSTATE from the connection: failing to connect, a
//     network error, a connection closed or cut short (EOF), a timeout or
//     context.DeadlineExceeded, or what pgconn says is safe to retry.
//
// Everything else is the message's fault and takes the bounded retries of
// Config.MaxAttempts: every other SQLSTATE, notably 22 (data exception), 23
// (integrity constraint violation: the inbox's own duplicates never raise
// one, its insert does nothing on conflict), 42 (syntax error or access rule
// violation) and 25P02 (a handler carrying on after a failed statement); a
// handler's own errors; a panic; an error wrapping ErrPark, which parks at
// once. A handler that wraps a database error without %w hides its SQLSTATE,
// and the error counts as the handler's own.
func isTransient(err error) bool {
	if err == nil || errors.Is(err, ErrPark) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		return len(code) == 5 && (transientClasses[code[:2]] || transientCodes[code])
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, context.DeadlineExceeded),
		pgconn.SafeToRetry(err),
		pgconn.Timeout(err):
		return true
	}
	return false
}
