package reporting_test

import (
	"errors"
	"testing"

	"github.com/alpes/alpes/services/eventcatalog"
	"github.com/alpes/alpes/services/reporting"
)

func TestTopicsOfTwoTenantsAreRefused(t *testing.T) {
	mixed, err := eventcatalog.TopicsFor("mine")
	if err != nil {
		t.Fatal(err)
	}
	mixed.PaymentEvents = eventcatalog.DefaultTopics().PaymentEvents
	_, err = reporting.New(reporting.Config{Topics: mixed})
	if !errors.Is(err, reporting.ErrInvalidConfig) || !errors.Is(err, eventcatalog.ErrInvalidTenant) {
		t.Errorf("New: %v, want ErrInvalidConfig and ErrInvalidTenant", err)
	}
}
