package eventcatalog_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

func TestValidatePayload(t *testing.T) {
	good, err := proto.Marshal(&ordersv1.PlaceOrder{OrderId: "o-1", RequestedAt: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, typ string
		payload   []byte
		ok        bool
	}{
		{"a valid message", "alpes.orders.v1.PlaceOrder", good, true},
		{"an empty message is valid protobuf", "alpes.orders.v1.PlaceOrder", nil, true},
		{"truncated", "alpes.orders.v1.PlaceOrder", good[:len(good)-1], false},
		{"garbage", "alpes.payments.v1.PaymentProcessed", []byte{0xff, 0xff, 0xff}, false},
		{"a type this binary does not know", "alpes.orders.v9.Future", []byte{0xff}, true},
	}
	for _, c := range cases {
		err := eventcatalog.ValidatePayload(c.typ, c.payload)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%t", c.name, err, c.ok)
		}
	}
}
