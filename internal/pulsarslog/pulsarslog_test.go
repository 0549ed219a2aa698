package pulsarslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLevelsFieldsAndNoWorkWhenDropped(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.WithField("topic", "t1").Debugf("dropped %v", explode{t}) // formatting it would fail the test
	l.WithField("topic", "t1").Info("dropped too")              // info is demoted to debug
	l.SubLogger(map[string]any{"producer": "p"}).WithError(errString("boom")).Warnf("reconnecting after %d tries", 3)
	out := buf.String()
	if strings.Contains(out, "dropped") {
		t.Errorf("a dropped record was written: %s", out)
	}
	for _, want := range []string{"level=INFO", "reconnecting after 3 tries", "producer=p", "err=boom", "component=pulsar-client"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q: %s", want, out)
		}
	}
}

func TestFieldsDoNotLeakBetweenEntries(t *testing.T) {
	var buf bytes.Buffer
	base := New(slog.New(slog.NewTextHandler(&buf, nil))).SubLogger(map[string]any{"a": 1})
	base.WithField("b", 2).Error("first")
	base.WithField("c", 3).Error("second")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[1], "b=2") || !strings.Contains(lines[1], "c=3") {
		t.Errorf("lines: %q", lines)
	}
}

type explode struct{ t *testing.T }

func (e explode) String() string { e.t.Error("formatted a record below the enabled level"); return "" }

type errString string

func (e errString) Error() string { return string(e) }
