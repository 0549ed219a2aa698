package pulsarsend

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// maxLookupHops bounds the redirects a lookup may follow, as clients do.
const maxLookupHops = 20

// lookup returns the connection to the broker that owns topic: it asks the
// service URL, then follows redirects (to another broker, or through the
// service URL when the answer says proxy_through_service_url).
func (c *Client) lookup(ctx context.Context, topic string) (*conn, error) {
	key := connKey{target: c.opts.URL}
	authoritative := false
	for range maxLookupHops {
		cn, err := c.connTo(ctx, key)
		if err != nil {
			return nil, err
		}
		resp, err := cn.request(ctx, func(id uint64) *wirev1.BaseCommand {
			return &wirev1.BaseCommand{
				Type:        wirev1.BaseCommand_LOOKUP.Enum(),
				LookupTopic: &wirev1.CommandLookupTopic{Topic: &topic, RequestId: proto.Uint64(id), Authoritative: proto.Bool(authoritative)},
			}
		})
		if err != nil {
			return nil, err
		}
		r := resp.GetLookupTopicResponse()
		if r == nil {
			return nil, fmt.Errorf("%w: a %s answered a lookup", ErrConnection, resp.GetType())
		}
		brokerURL := r.GetBrokerServiceUrl()
		if c.opts.TLS != nil {
			brokerURL = r.GetBrokerServiceUrlTls()
		}
		switch r.GetResponse() {
		case wirev1.CommandLookupTopicResponse_Failed:
			return nil, fmt.Errorf("%w: %s: %s", ErrBrokerRefused, r.GetError(), r.GetMessage())
		case wirev1.CommandLookupTopicResponse_Connect:
			if brokerURL == "" || brokerURL == key.target || (r.GetProxyThroughServiceUrl() && brokerURL == key.proxyTo) {
				return cn, nil
			}
		}
		authoritative = r.GetAuthoritative()
		if r.GetProxyThroughServiceUrl() {
			key = connKey{target: c.opts.URL, proxyTo: brokerURL}
		} else {
			key = connKey{target: brokerURL}
		}
	}
	return nil, fmt.Errorf("more than %d lookup redirects", maxLookupHops)
}
