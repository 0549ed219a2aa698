package orders_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/services/eventcatalog"
	"github.com/alpes/alpes/services/orders"
)

func TestTopicsOfTwoTenantsAreRefused(t *testing.T) {
	mixed, err := eventcatalog.TopicsFor("mine")
	if err != nil {
		t.Fatal(err)
	}
	mixed.OrderEvents = eventcatalog.DefaultTopics().OrderEvents
	// Never connected: New refuses the topics before using the database.
	db, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := orders.New(orders.Config{DB: db, Topics: mixed}); !errors.Is(err, eventcatalog.ErrInvalidTenant) {
		t.Errorf("New: %v, want ErrInvalidTenant", err)
	}
}
