package pulsarsend

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// fakeBroker accepts one connection, answers CONNECT, and hands the test
// the connection and a reader of what the client sends.
func fakeBroker(t *testing.T) (addr string, accepted <-chan *fakeConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *fakeConn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		fc := &fakeConn{nc: nc, r: pulsarwire.NewReader(nc, 1<<20)}
		if f, err := fc.r.ReadFrame(); err != nil || f.Command.GetType() != wirev1.BaseCommand_CONNECT {
			nc.Close()
			return
		}
		fc.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECTED.Enum(), Connected: &wirev1.CommandConnected{ServerVersion: proto.String("fake")}})
		ch <- fc
	}()
	return "pulsar://" + ln.Addr().String(), ch
}

type fakeConn struct {
	nc net.Conn
	r  *pulsarwire.Reader
}

func (f *fakeConn) send(cmd *wirev1.BaseCommand) {
	b, _ := pulsarwire.AppendFrame(nil, cmd, nil)
	f.nc.Write(b)
}

// TestPingIsAnsweredAndSilenceIsNoticed: the client answers the broker's
// PING with a PONG; once the broker falls silent, the client PINGs after
// half the keep-alive, and fails the connection after all of it.
func TestPingIsAnsweredAndSilenceIsNoticed(t *testing.T) {
	addr, accepted := fakeBroker(t)
	opts, err := Options{URL: addr, KeepAlive: 2 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(context.Background(), opts, connKey{target: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.fail(ErrClosed)
	fc := <-accepted
	defer fc.nc.Close()

	fc.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}})
	fc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if f, err := fc.r.ReadFrame(); err != nil || f.Command.GetType() != wirev1.BaseCommand_PONG {
		t.Fatalf("answer to PING: %v, %v", f, err)
	}
	silentFrom := time.Now()
	if f, err := fc.r.ReadFrame(); err != nil || f.Command.GetType() != wirev1.BaseCommand_PING {
		t.Fatalf("after silence: %v, %v; want the client's PING", f, err)
	}
	start := time.Now()
	if d := start.Sub(silentFrom); d > 2500*time.Millisecond {
		t.Errorf("the client PINGed %s into the silence, keep-alive 2s", d)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the silent connection did not fail")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("failed %s after its PING, keep-alive 2s", d)
	}
}
