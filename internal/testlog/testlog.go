// Package testlog writes logs into a test's output. It is for tests only.
package testlog

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// New returns a logger of warnings and worse that writes into t's log and
// into each of also.
func New(t testing.TB, also ...io.Writer) *slog.Logger {
	var w io.Writer = Writer(t)
	if len(also) > 0 {
		w = io.MultiWriter(append([]io.Writer{w}, also...)...)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Writer returns a writer that logs each write through t.Log, surrounding
// white space trimmed: a place for a logger's or a child process's output.
func Writer(t testing.TB) io.Writer { return writer{t} }

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Buffer keeps everything written into it, for a test to read or wait on
// while a logger still writes; safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
