package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// The broker tells a producer, when it connects, the highest sequence id it
// has persisted under the producer's name (PRODUCER_SUCCESS), and
// deduplication drops any id at or below it. pulsar-client-go keeps that
// figure to itself, so the relay asks for it the way a client does: it
// connects, looks the topic up, registers a producer under the name, reads
// the answer and closes the producer, before the real producer connects.

// sequenceProbe reads the broker's last sequence id of a producer name. It
// is safe for concurrent use.
type sequenceProbe struct {
	serviceURL string
	token      string
	tls        *tls.Config // nil for pulsar://
}

// probeTimeout bounds one probe: a connection, a lookup or two, a producer.
const probeTimeout = 30 * time.Second

// maxLookupHops bounds the redirects a lookup may follow, as clients do.
const maxLookupHops = 20

// newSequenceProbe returns the probe of the broker pc names, with pc's
// token and CA bundle.
func newSequenceProbe(pc PulsarConfig) (*sequenceProbe, error) {
	p := &sequenceProbe{serviceURL: pc.URL, token: pc.Token}
	u, err := url.Parse(pc.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the Pulsar URL: %w", err)
	}
	if u.Scheme == "pulsar+ssl" {
		p.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if pc.TLSTrustCerts != "" {
			if p.tls.RootCAs, err = loadCAPool(pc.TLSTrustCerts); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// lastSequenceID returns the highest sequence id the broker has persisted
// for producer on topic, -1 when it has none (or does not deduplicate).
func (p *sequenceProbe) lastSequenceID(ctx context.Context, topic, producer string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := p.lookup(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("looking up %s: %w", topic, err)
	}
	defer c.close()
	last, err := c.lastSequenceID(topic, producer)
	if err != nil {
		return 0, fmt.Errorf("asking the broker for the last sequence id of %s on %s: %w", producer, topic, err)
	}
	return last, nil
}

// lookup returns a connection to the broker that owns topic.
func (p *sequenceProbe) lookup(ctx context.Context, topic string) (*wireConn, error) {
	target, proxyTo := p.serviceURL, ""
	authoritative := false
	for range maxLookupHops {
		c, err := p.dial(ctx, target, proxyTo)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(&wirev1.BaseCommand{
			Type:        wirev1.BaseCommand_LOOKUP.Enum(),
			LookupTopic: &wirev1.CommandLookupTopic{Topic: &topic, RequestId: proto.Uint64(1), Authoritative: &authoritative},
		}, wirev1.BaseCommand_LOOKUP_RESPONSE)
		if err != nil {
			c.close()
			return nil, err
		}
		r := resp.GetLookupTopicResponse()
		brokerURL := r.GetBrokerServiceUrl()
		if p.tls != nil {
			brokerURL = r.GetBrokerServiceUrlTls()
		}
		switch r.GetResponse() {
		case wirev1.CommandLookupTopicResponse_Failed:
			c.close()
			return nil, fmt.Errorf("%s: %s", r.GetError(), r.GetMessage())
		case wirev1.CommandLookupTopicResponse_Connect:
			if brokerURL == "" || brokerURL == target || (r.GetProxyThroughServiceUrl() && brokerURL == proxyTo) {
				return c, nil
			}
		}
		c.close()
		authoritative = r.GetAuthoritative()
		if r.GetProxyThroughServiceUrl() {
			target, proxyTo = p.serviceURL, brokerURL
		} else {
			target, proxyTo = brokerURL, ""
		}
	}
	return nil, fmt.Errorf("more than %d lookup redirects", maxLookupHops)
}

// dial connects to the broker at target and completes the handshake,
// asking a proxy to forward to proxyTo when it is set.
func (p *sequenceProbe) dial(ctx context.Context, target, proxyTo string) (*wireConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parsing broker URL %q: %w", target, err)
	}
	d := net.Dialer{}
	var nc net.Conn
	if p.tls != nil {
		cfg := p.tls.Clone()
		cfg.ServerName = u.Hostname()
		nc, err = (&tls.Dialer{NetDialer: &d, Config: cfg}).DialContext(ctx, "tcp", u.Host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		nc.SetDeadline(deadline)
	}
	c := &wireConn{nc: nc, r: pulsarwire.NewReader(nc, pulsarwire.MaxFrameSize(pulsarwire.DefaultMaxMessageSize))}
	connect := &wirev1.CommandConnect{
		ClientVersion:   proto.String("alpes-relay"),
		ProtocolVersion: proto.Int32(20),
	}
	if p.token != "" {
		connect.AuthMethodName = proto.String("token")
		connect.AuthData = []byte(p.token)
	}
	if proxyTo != "" {
		connect.ProxyToBrokerUrl = &proxyTo
	}
	if _, err := c.roundTrip(&wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECT.Enum(), Connect: connect}, wirev1.BaseCommand_CONNECTED); err != nil {
		c.close()
		return nil, fmt.Errorf("connecting to %s: %w", target, err)
	}
	return c, nil
}

// wireConn is one connection speaking the binary protocol, one request at a
// time.
type wireConn struct {
	nc net.Conn
	r  *pulsarwire.Reader
}

func (c *wireConn) close() { c.nc.Close() }

// lastSequenceID registers a producer under name on topic, reads the last
// sequence id the broker answers with, and closes the producer again, so
// that the real one can take the name.
func (c *wireConn) lastSequenceID(topic, name string) (int64, error) {
	const producerID = 1
	resp, err := c.roundTrip(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_PRODUCER.Enum(),
		Producer: &wirev1.CommandProducer{
			Topic:                    &topic,
			ProducerId:               proto.Uint64(producerID),
			RequestId:                proto.Uint64(2),
			ProducerName:             &name,
			UserProvidedProducerName: proto.Bool(true),
		},
	}, wirev1.BaseCommand_PRODUCER_SUCCESS)
	if err != nil {
		return 0, err
	}
	// producer_ready false means a second answer follows (an access mode
	// that waits); ours is shared, but follow the protocol.
	for !resp.GetProducerSuccess().GetProducerReady() {
		if resp, err = c.await(wirev1.BaseCommand_PRODUCER_SUCCESS); err != nil {
			return 0, err
		}
	}
	last := resp.GetProducerSuccess().GetLastSequenceId()
	_, err = c.roundTrip(&wirev1.BaseCommand{
		Type:          wirev1.BaseCommand_CLOSE_PRODUCER.Enum(),
		CloseProducer: &wirev1.CommandCloseProducer{ProducerId: proto.Uint64(producerID), RequestId: proto.Uint64(3)},
	}, wirev1.BaseCommand_SUCCESS)
	if err != nil {
		return 0, fmt.Errorf("closing the probe producer: %w", err)
	}
	return last, nil
}

// roundTrip sends cmd and waits for the answer of type want.
func (c *wireConn) roundTrip(cmd *wirev1.BaseCommand, want wirev1.BaseCommand_Type) (*wirev1.BaseCommand, error) {
	frame, err := pulsarwire.AppendFrame(nil, cmd, nil)
	if err != nil {
		return nil, err
	}
	if _, err := c.nc.Write(frame); err != nil {
		return nil, err
	}
	return c.await(want)
}

// errBrokerRefused wraps an ERROR answer.
var errBrokerRefused = errors.New("the broker refused")

// await reads frames until one of type want, answering pings; an ERROR
// ends the wait.
func (c *wireConn) await(want wirev1.BaseCommand_Type) (*wirev1.BaseCommand, error) {
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch t := f.Command.GetType(); t {
		case want:
			return f.Command, nil
		case wirev1.BaseCommand_ERROR:
			e := f.Command.GetError()
			return nil, fmt.Errorf("%w: %s: %s", errBrokerRefused, e.GetError(), e.GetMessage())
		case wirev1.BaseCommand_PING:
			pong, _ := pulsarwire.AppendFrame(nil, &wirev1.BaseCommand{Type: wirev1.BaseCommand_PONG.Enum(), Pong: &wirev1.CommandPong{}}, nil)
			if _, err := c.nc.Write(pong); err != nil {
				return nil, err
			}
		}
	}
}
