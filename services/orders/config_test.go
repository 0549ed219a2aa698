package orders_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/eventcatalog"
	"github.com/alpes/alpes/services/orders"
)

// TestNewPassesItsConfigurationThrough checks that New refuses what the
// parts it configures refuse: topics eventcatalog does not accept, and a
// consumer tuning outbox/inbox does not accept, which shows that Consumer
// reaches inbox.New as it was given. Payments, reporting and the bff pass
// their Topics and Consumer through the same way; the refusals themselves
// are tested in eventcatalog and outbox/inbox.
func TestNewPassesItsConfigurationThrough(t *testing.T) {
	mixed, err := eventcatalog.TopicsFor("mine")
	if err != nil {
		t.Fatal(err)
	}
	mixed.OrderEvents = eventcatalog.DefaultTopics().OrderEvents
	// Never connected: New refuses the configuration before using the database.
	db, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		name string
		cfg  orders.Config
		want error
		says string
	}{
		{"topics of two tenants", orders.Config{DB: db, Topics: mixed}, eventcatalog.ErrInvalidTenant, ""},
		{"a consumer tuning inbox refuses",
			orders.Config{DB: db, Consumer: inbox.Config{RetryBackoff: time.Second, MaxBackoff: time.Millisecond}},
			inbox.ErrInvalidConfig, "max backoff 1ms: want at least the retry backoff 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := orders.New(c.cfg)
			if !errors.Is(err, c.want) || !(err != nil && strings.Contains(err.Error(), c.says)) {
				t.Errorf("New: %v, want %v saying %q", err, c.want, c.says)
			}
		})
	}
}
