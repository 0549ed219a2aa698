package stack

import "github.com/alpes/alpes/migrations"

// Flag is one flag of a command line: --Name Value.
type Flag struct {
	Name  string // without its dashes
	Value string
}

// Args are flags as separate arguments, --name value, as a process is
// started with them.
func Args(flags []Flag) []string {
	args := make([]string, 0, 2*len(flags))
	for _, f := range flags {
		args = append(args, "--"+f.Name, f.Value)
	}
	return args
}

// Site is where one stack's components run, as they reach one another: what
// turns the description into command lines.
type Site struct {
	// PulsarURL is the broker's service URL as the components dial it.
	PulsarURL string
	// DSN connects to database as role.
	DSN func(role, database string) string
	// URL is the base URL (http://host:port) of the HTTP endpoints of the
	// component called name, as its peers reach them.
	URL func(name string) string
}

// At is c listening on addr, and for the broker its admin API on
// adminAddr, instead of its default addresses: one instance of c as a
// stack places it.
func (c Component) At(addr, adminAddr string) Component {
	c.Addr, c.AdminAddr = addr, adminAddr
	return c
}

// Flags are the flags c is started with at site s, listening on c.Addr
// (and c.AdminAddr), in this order: for the broker where it listens; for
// the others the database (the relay: its sources, NAME=DSN), the broker,
// where it listens, then its links to its peers. A stack may add flags of
// its own after them (log level, tenant, tuning).
func (c Component) Flags(s Site) []Flag {
	if c.Name == Broker.Name {
		return []Flag{{"addr", c.Addr}, {"admin-addr", c.AdminAddr}}
	}
	var flags []Flag
	if c.Database != "" {
		flags = append(flags, Flag{"dsn", s.DSN(migrations.ServiceRole(c.Database), c.Database)})
	}
	for _, source := range c.Sources {
		flags = append(flags, Flag{"source", source + "=" + s.DSN(migrations.RelayRole, source)})
	}
	flags = append(flags, Flag{"pulsar-url", s.PulsarURL}, Flag{"http-addr", c.Addr})
	for _, l := range c.Links {
		flags = append(flags, Flag{l.Flag, s.URL(l.Peer) + l.Path})
	}
	return flags
}
