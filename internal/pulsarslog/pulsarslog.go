// Package pulsarslog sends the Pulsar client's logs to slog, one level down:
// the client reports routine connects and reconnects at info.
//
// The client logs at debug for every message it sends and every receipt it
// gets, with fields attached first. This adapter therefore does no work for
// a record slog would drop: fields are kept as a small slice until a record
// is written, and messages are formatted only once the level is known to be
// enabled. (Formatting first cost the relay over a third of its CPU.)
package pulsarslog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
)

// New returns a logger for pulsar.ClientOptions.Logger that writes to l.
func New(l *slog.Logger) pulsarlog.Logger {
	return entry{l: l.With("component", "pulsar-client")}
}

// entry is both a Logger and an Entry: a slog.Logger plus fields not yet
// attached. It is a value; every With… returns a new one.
type entry struct {
	l     *slog.Logger
	attrs []any
}

func (e entry) with(args ...any) entry {
	return entry{l: e.l, attrs: append(slices.Clip(e.attrs), args...)}
}

func (e entry) SubLogger(fields pulsarlog.Fields) pulsarlog.Logger {
	return e.with(fieldArgs(fields)...)
}
func (e entry) WithFields(fields pulsarlog.Fields) pulsarlog.Entry {
	return e.with(fieldArgs(fields)...)
}
func (e entry) WithField(name string, value any) pulsarlog.Entry { return e.with(name, value) }
func (e entry) WithError(err error) pulsarlog.Entry              { return e.with("err", err) }

func (e entry) Debug(args ...any)                 { e.print(slog.LevelDebug, args) }
func (e entry) Info(args ...any)                  { e.print(slog.LevelDebug, args) }
func (e entry) Warn(args ...any)                  { e.print(slog.LevelInfo, args) }
func (e entry) Error(args ...any)                 { e.print(slog.LevelWarn, args) }
func (e entry) Debugf(format string, args ...any) { e.printf(slog.LevelDebug, format, args) }
func (e entry) Infof(format string, args ...any)  { e.printf(slog.LevelDebug, format, args) }
func (e entry) Warnf(format string, args ...any)  { e.printf(slog.LevelInfo, format, args) }
func (e entry) Errorf(format string, args ...any) { e.printf(slog.LevelWarn, format, args) }

func (e entry) print(level slog.Level, args []any) {
	if e.l.Enabled(context.Background(), level) {
		e.l.Log(context.Background(), level, fmt.Sprint(args...), e.attrs...)
	}
}

func (e entry) printf(level slog.Level, format string, args []any) {
	if e.l.Enabled(context.Background(), level) {
		e.l.Log(context.Background(), level, fmt.Sprintf(format, args...), e.attrs...)
	}
}

func fieldArgs(fields pulsarlog.Fields) []any {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	return args
}
