package relay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/relay"
)

// Errors that cannot heal stop a source at once, saying what is wrong;
// only what can heal (an unreachable database, a broker away) is retried.

func TestADSNThatIsNoDSNIsRefusedAtOnce(t *testing.T) {
	_, err := relay.New(relay.Config{Sources: []relay.SourceConfig{{Name: "orders", DSN: "not-a-dsn"}}, Pulsar: relay.PulsarConfig{URL: "pulsar://127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), `source "orders"`) || !strings.Contains(err.Error(), "DSN") {
		t.Fatalf("relay.New with DSN not-a-dsn: err = %v, want the source's DSN refused", err)
	}
}

func TestErrorsThatCannotHealStopTheSource(t *testing.T) {
	b := startBroker(t)
	noPublication := pgtest.NewEmpty(t)
	orders := pgtest.New(t, "orders")
	for name, c := range map[string]struct {
		dsn  string
		want string
	}{
		"a role that does not exist":                  {orders.DSNAs("nobody_here"), "nobody_here"},
		"a database without the outbox's publication": {noPublication.DSN(), "publication"},
		"a database that does not exist":              {strings.Replace(orders.DSN(), "/"+orders.Name+"?", "/no_such_database?", 1), "no_such_database"},
	} {
		t.Run(name, func(t *testing.T) {
			r := startRelay(t, b, relay.SourceConfig{Name: "orders", DSN: c.dsn})
			select {
			case <-r.Done():
			case <-time.After(waitTimeout):
				t.Fatalf("the relay still retries: %+v", r.Lag())
			}
			if !errors.Is(r.Err(), relay.ErrSourcesLost) {
				t.Errorf("Run returned %v, want ErrSourcesLost", r.Err())
			}
			l := lagOf(t, r, "orders")
			if l.State != relay.StateStopped || !strings.Contains(l.Error, c.want) {
				t.Errorf("source %s: %q; want stopped, saying %q", l.State, l.Error, c.want)
			}
		})
	}
}
