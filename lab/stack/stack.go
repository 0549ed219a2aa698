// Package stack is the one description of alpes as a running system: its
// components, the database each owns, where each listens by default, how
// each says it serves, and the flags each is started with, which name its
// database, the broker and the peers it talks to.
//
// Whatever runs or checks the whole system derives from it: lab/devstack
// (every component in one process, behind `alpes dev`), lab/procstack (every
// component a process whose command line is Component.Flags, behind `alpes
// bench` and `alpes chaos`), the defaults of the alpes command's flags, and
// deploy/check's checks of docker-compose.yml and the Kubernetes manifests. The default addresses are the
// components' own constants (broker.DefaultServiceAddr, bff.DefaultHTTPAddr,
// …), which this package lists and does not repeat.
package stack

import (
	"slices"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/bff"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/payments"
	"github.com/alpes/alpes/services/reporting"
)

// Component is one part of the system, run as `alpes <Name>`. The values
// below are the description; treat them as read-only.
type Component struct {
	// Name is the component's name and the alpes subcommand that runs it.
	Name string
	// Addr is where it listens by default (host:port): the binary protocol
	// for the broker, the HTTP endpoints for every other component.
	Addr string
	// AdminAddr is where the broker's admin API listens by default; empty
	// for the other components.
	AdminAddr string
	// Database is the database it owns and connects to as its own login
	// (migrations.ServiceRole(Database)); empty for the broker and the relay.
	Database string
	// Sources are the databases whose outbox it streams, as the relay's
	// login (migrations.RelayRole): the relay's, empty for the others.
	Sources []string
	// Ready is the path of its HTTP endpoints that answers 200 once it
	// serves; empty for the broker, ready when its ports accept connections
	// and its namespaces exist.
	Ready string
	// Links are its flags that name its peers' HTTP endpoints, in order.
	Links []Link
}

// Link is a flag whose value is a peer's endpoint: Path on the peer's base
// URL (http://host:port).
type Link struct {
	Flag string // without its dashes, e.g. reporting-url
	Peer string // the peer's Component.Name
	Path string // e.g. /v1/lag; empty for the base URL itself
}

// The flags of the bff that name its peers (Link.Flag).
const (
	FlagReportingURL = "reporting-url"
	FlagRelayLagURL  = "relay-lag-url"
	FlagProgressURL  = "progress-url"
)

// The components of alpes.
var (
	// Broker is the embedded broker, which speaks Pulsar's binary protocol
	// on Pulsar's ports (or the real Apache Pulsar in its place).
	Broker = Component{Name: "broker", Addr: broker.DefaultServiceAddr, AdminAddr: broker.DefaultAdminAddr}
	// Relay streams every producing service's outbox to the broker.
	Relay = Component{Name: "relay", Addr: relay.DefaultHTTPAddr, Sources: migrations.Producers, Ready: "/readyz"}
	// Orders prices orders and settles them; it serves its inbox's progress.
	Orders = Component{Name: "orders", Addr: orders.DefaultHTTPAddr, Database: "orders", Ready: "/healthz"}
	// Payments charges orders; it serves its inbox's progress.
	Payments = Component{Name: "payments", Addr: payments.DefaultHTTPAddr, Database: "payments", Ready: "/healthz"}
	// Reporting is the read model: reports, timelines, its progress.
	Reporting = Component{Name: "reporting", Addr: reporting.DefaultHTTPAddr, Database: "reporting", Ready: "/readyz"}
	// BFF is the public HTTP API; it reports on the others' replication.
	BFF = Component{Name: "bff", Addr: bff.DefaultHTTPAddr, Database: "bff", Ready: "/openapi.json", Links: []Link{
		{Flag: FlagReportingURL, Peer: "reporting"},
		{Flag: FlagRelayLagURL, Peer: "relay", Path: "/v1/lag"},
		{Flag: FlagProgressURL, Peer: "orders", Path: "/v1/progress"},
		{Flag: FlagProgressURL, Peer: "payments", Path: "/v1/progress"},
		{Flag: FlagProgressURL, Peer: "reporting", Path: "/v1/progress"},
	}}
)

// Components are every component, in the order a stack starts them: each
// after those it needs (the relay streams before any service writes an
// outbox; the bff starts last, naming the others).
func Components() []Component {
	return []Component{Broker, Relay, Orders, Payments, Reporting, BFF}
}

// Lookup is the component called name.
func Lookup(name string) (Component, bool) {
	i := slices.IndexFunc(Components(), func(c Component) bool { return c.Name == name })
	if i < 0 {
		return Component{}, false
	}
	return Components()[i], true
}

// Databases are the databases the components own, in the order of
// migrations.Services (the order of the flow).
func Databases() []string {
	var dbs []string
	for _, db := range migrations.Services {
		if slices.ContainsFunc(Components(), func(c Component) bool { return c.Database == db }) {
			dbs = append(dbs, db)
		}
	}
	return dbs
}

// LinkURLs are the values of c's links named flag, in order: each peer's
// endpoint, with url giving a peer's base URL by name.
func (c Component) LinkURLs(flag string, url func(peer string) string) []string {
	var urls []string
	for _, l := range c.Links {
		if l.Flag == flag {
			urls = append(urls, url(l.Peer)+l.Path)
		}
	}
	return urls
}

// DefaultURL is the base URL (http://host:port) of the HTTP endpoints of
// the component called name at its default address; "" for no such
// component.
func DefaultURL(name string) string {
	c, ok := Lookup(name)
	if !ok {
		return ""
	}
	return "http://" + c.Addr
}

// DefaultPulsarURL is the service URL of the broker at its default address.
func DefaultPulsarURL() string { return "pulsar://" + Broker.Addr }
