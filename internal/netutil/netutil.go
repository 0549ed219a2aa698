// Package netutil holds the small network helpers the foundations share.
package netutil

import (
	"fmt"
	"net"
)

// FreePort returns a TCP port on loopback that was free a moment ago: it
// listens on port 0 and closes the listener again. Another process may take
// the port before the caller binds it.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
