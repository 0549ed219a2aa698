package chaos_test

import (
	"testing"
	"time"

	"github.com/alpes/alpes/lab/chaos"
)

// TestPostgresSessionsEndedAndFastRestart injects, one at a time:
// pg_terminate_backend of the walsenders streaming the relay's slots, of
// every session of the services' roles, and a fast shutdown of Postgres
// (pg_ctl stop -m fast) followed by a restart. The oracle must find
// nothing; each walsender must have been ended and replaced by a new one
// (the relay reconnected), and sessions must really have been ended.
func TestPostgresSessionsEndedAndFastRestart(t *testing.T) {
	rep := shortSoak(t, chaos.PostgresFaults(), nil)
	requireObserved(t, rep, "sessions_terminated", func(f chaos.Fault) bool { return f.Target == chaos.Sessions })
	for _, in := range rep.Injections {
		if in.Target == chaos.Sessions {
			continue
		}
		if got := in.Observed["walsenders_ended"]; got != 3 {
			t.Errorf("%s ended %d of the relay's 3 walsenders, want every one (observed %v)", in.Fault, got, in.Observed)
		}
	}
}

// TestLongFreezes freezes the relay for longer than wal_sender_timeout, so
// that Postgres ends its walsenders, and the bff for longer than the
// client's request timeout, so that POSTs time out and are retried with
// their keys. The oracle must find nothing, the relay's walsenders must
// have been replaced, and the client must have retried.
func TestLongFreezes(t *testing.T) {
	rep := shortSoak(t, chaos.LongFreezes(), func(cfg *chaos.Config) {
		cfg.WalSenderTimeout, cfg.RequestTimeout = 2*time.Second, 2*time.Second
		cfg.Duration = 15 * time.Second
	})
	for _, in := range rep.Injections {
		if in.Held <= 2*time.Second {
			t.Errorf("%s held %s, want past the 2s timeouts", in.Fault, in.Held)
		}
		if in.Target == "relay" && in.Observed["walsenders_ended"] != 3 {
			t.Errorf("%s ended %d of the relay's 3 walsenders, want every one (observed %v)", in.Fault, in.Observed["walsenders_ended"], in.Observed)
		}
	}
	if rep.Client.Retried == 0 {
		t.Error("no POST was retried: the bff's freeze did not outlast the client's request timeout")
	}
}
