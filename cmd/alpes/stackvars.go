package main

import (
	"strings"

	"github.com/alecthomas/kong"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/lab/stack"
)

// pulsarTLSAdminPort is the port of Pulsar's admin API over https, beside
// a pulsar+ssl:// service URL.
const pulsarTLSAdminPort = "8443"

// stackDefaults are the ${…} values of the flag defaults that say where
// alpes's components listen and how they reach one another: the
// description in lab/stack, whose addresses are the components' own
// constants.
func stackDefaults() kong.Vars {
	links := func(flag string) string { return strings.Join(stack.BFF.LinkURLs(flag, stack.DefaultURL), ",") }
	return kong.Vars{
		"broker_addr":           stack.Broker.Addr,
		"broker_admin_addr":     stack.Broker.AdminAddr,
		"broker_port":           broker.DefaultServicePort,
		"broker_admin_port":     broker.DefaultAdminPort,
		"pulsar_tls_admin_port": pulsarTLSAdminPort,
		"pulsar_url":            stack.DefaultPulsarURL(),
		"relay_addr":            stack.Relay.Addr,
		"relay_url":             stack.DefaultURL(stack.Relay.Name),
		"orders_addr":           stack.Orders.Addr,
		"payments_addr":         stack.Payments.Addr,
		"reporting_addr":        stack.Reporting.Addr,
		"bff_addr":              stack.BFF.Addr,
		"bff_url":               stack.DefaultURL(stack.BFF.Name),
		"bff_reporting_url":     links(stack.FlagReportingURL),
		"bff_relay_lag_urls":    links(stack.FlagRelayLagURL),
		"bff_progress_urls":     links(stack.FlagProgressURL),
	}
}
