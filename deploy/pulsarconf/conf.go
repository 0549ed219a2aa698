// Package pulsarconf holds the Apache Pulsar standalone settings alpes runs
// with (standalone.conf beside this file): the launcher of real Pulsar
// (internal/pulsarstandalone) embeds them, and docker-compose.yml mounts the
// same file, so the local broker and the container are configured alike.
package pulsarconf

import _ "embed"

// StandaloneOverrides are lines to append to a Pulsar distribution's
// conf/standalone.conf; in a Java properties file the last value of a key
// wins, so they override the distribution's defaults.
//
//go:embed standalone.conf
var StandaloneOverrides string
