package bff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestWriteErrorsSayWhetherTheOrderMayExist pins the distinction the client
// relies on: a 503 promises nothing was written, so only errors after which
// the order's batch certainly did not commit may become one.
func TestWriteErrorsSayWhetherTheOrderMayExist(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		mayCommitted bool
		unreachable  bool
	}{
		{"the server cut the connection mid-answer", io.ErrUnexpectedEOF, true, true},
		{"the timeout ran out waiting for the answer", context.DeadlineExceeded, true, true},
		{"Postgres refused the batch", &pgconn.PgError{Code: "53100"}, false, false},
		{"Postgres is shutting down", &pgconn.PgError{Code: "57P01"}, false, true},
		{"a wrapped refusal", fmt.Errorf("storing: %w", &pgconn.PgError{Code: "23514"}), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayHaveCommitted(tc.err); got != tc.mayCommitted {
				t.Errorf("mayHaveCommitted = %v, want %v", got, tc.mayCommitted)
			}
			if got := unreachable(tc.err); got != tc.unreachable {
				t.Errorf("unreachable = %v, want %v", got, tc.unreachable)
			}
		})
	}
	if !outOfResources(&pgconn.PgError{Code: "53100"}) || outOfResources(errors.New("53100")) {
		t.Error("outOfResources must recognise SQLSTATE class 53 from Postgres only")
	}
}
