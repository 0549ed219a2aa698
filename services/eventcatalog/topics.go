package eventcatalog

import (
	"errors"
	"fmt"
	"regexp"
)

// DefaultTenant is the Pulsar tenant of a deployment that names none.
const DefaultTenant = "alpes"

// The namespaces every alpes tenant holds, one per bounded context plus the
// relay's (docs/adr/0006-topic-naming-and-keys.md). Whoever provisions a
// tenant creates them, with deduplication on.
const (
	NamespaceOrders   = "orders"
	NamespacePayments = "payments"
	NamespaceCatalog  = "catalog"
	NamespaceRelay    = "relay"
)

// Namespaces returns the namespaces of a tenant, without the tenant.
func Namespaces() []string {
	return []string{NamespaceOrders, NamespacePayments, NamespaceCatalog, NamespaceRelay}
}

// Topics are the fully qualified topics of alpes's messages in one tenant:
// a deployment's whole namespace root (ADR 0006). Keys are order ids on the
// order topics and SKUs on the catalogue's. Build it with TopicsFor or
// DefaultTopics; a Topics built by hand is refused by Resolve. The zero
// value stands for DefaultTopics in the configs that hold one.
type Topics struct {
	// Tenant is the Pulsar tenant every topic below lives in.
	Tenant string
	// OrderCommands carries PlaceOrder, from the bff to orders.
	OrderCommands string
	// OrderEvents carries OrderPlaced, OrderConfirmed and OrderRejected.
	OrderEvents string
	// PaymentEvents carries PaymentProcessed.
	PaymentEvents string
	// CatalogEvents carries ProductUpdated.
	CatalogEvents string
	// RelayQuarantine receives the outbox rows a relay cannot publish as
	// they are (relay.SourceConfig.QuarantineTopic).
	RelayQuarantine string
}

// ErrInvalidTenant is returned for a tenant name alpes does not accept.
var ErrInvalidTenant = errors.New("invalid Pulsar tenant")

// tenantName is what alpes accepts as a tenant: Pulsar allows [-=:.\w]+;
// alpes narrows that to lowercase letters, digits, '.', '_' and '-', starting
// with a letter or a digit, at most 63 characters, so a tenant reads the
// same in topic names, producer names, logs and metric labels.
var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidateTenant reports whether tenant can name an alpes deployment's
// tenant, with an error wrapping ErrInvalidTenant when it cannot.
func ValidateTenant(tenant string) error {
	if !tenantName.MatchString(tenant) {
		return fmt.Errorf("%w %q: want 1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidTenant, tenant)
	}
	return nil
}

// TopicsFor returns the topics of tenant, or an error wrapping
// ErrInvalidTenant.
func TopicsFor(tenant string) (Topics, error) {
	if err := ValidateTenant(tenant); err != nil {
		return Topics{}, err
	}
	topic := func(namespace, name string) string {
		return "persistent://" + tenant + "/" + namespace + "/" + name
	}
	return Topics{
		Tenant:          tenant,
		OrderCommands:   topic(NamespaceOrders, "commands.v1"),
		OrderEvents:     topic(NamespaceOrders, "events.v1"),
		PaymentEvents:   topic(NamespacePayments, "events.v1"),
		CatalogEvents:   topic(NamespaceCatalog, "events.v1"),
		RelayQuarantine: topic(NamespaceRelay, "quarantine.v1"),
	}, nil
}

// DefaultTopics returns the topics of DefaultTenant.
func DefaultTopics() Topics {
	t, err := TopicsFor(DefaultTenant)
	if err != nil {
		panic(err) // DefaultTenant is valid; eventcatalog's tests check it
	}
	return t
}

// Resolve returns t, DefaultTopics for the zero value, or an error wrapping
// ErrInvalidTenant when t is not exactly TopicsFor(t.Tenant): the one way to
// name alpes's topics. Configs that hold a Topics call it in their
// validation.
func (t Topics) Resolve() (Topics, error) {
	if t == (Topics{}) {
		return DefaultTopics(), nil
	}
	want, err := TopicsFor(t.Tenant)
	if err != nil {
		return Topics{}, err
	}
	if t != want {
		return Topics{}, fmt.Errorf("%w %q: topics %+v are not the tenant's; build them with eventcatalog.TopicsFor", ErrInvalidTenant, t.Tenant, t)
	}
	return t, nil
}
