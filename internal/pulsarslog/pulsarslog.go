// Package pulsarslog sends the Pulsar client's logs to slog, one level down:
// the client reports routine connects and reconnects at info.
package pulsarslog

import (
	"fmt"
	"log/slog"

	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
)

type slogAdapter struct{ l *slog.Logger }

// New returns a logger for pulsar.ClientOptions.Logger that writes to l.
func New(l *slog.Logger) pulsarlog.Logger {
	return slogAdapter{l.With("component", "pulsar-client")}
}

func (a slogAdapter) SubLogger(fields pulsarlog.Fields) pulsarlog.Logger {
	return slogAdapter{a.l.With(fieldsToArgs(fields)...)}
}
func (a slogAdapter) WithFields(fields pulsarlog.Fields) pulsarlog.Entry {
	return slogAdapter{a.l.With(fieldsToArgs(fields)...)}
}
func (a slogAdapter) WithField(name string, value any) pulsarlog.Entry {
	return slogAdapter{a.l.With(name, value)}
}
func (a slogAdapter) WithError(err error) pulsarlog.Entry { return slogAdapter{a.l.With("err", err)} }
func (a slogAdapter) Debug(args ...any)                   { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)                    { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)                    { a.l.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any)                   { a.l.Warn(fmt.Sprint(args...)) }
func (a slogAdapter) Debugf(format string, args ...any)   { a.l.Debug(fmt.Sprintf(format, args...)) }
func (a slogAdapter) Infof(format string, args ...any)    { a.l.Debug(fmt.Sprintf(format, args...)) }
func (a slogAdapter) Warnf(format string, args ...any)    { a.l.Info(fmt.Sprintf(format, args...)) }
func (a slogAdapter) Errorf(format string, args ...any)   { a.l.Warn(fmt.Sprintf(format, args...)) }

func fieldsToArgs(fields pulsarlog.Fields) []any {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	return args
}
