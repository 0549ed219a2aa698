package broker

import (
	"net/http"
	"strconv"
)

// runtimeConfiguration answers GET /admin/v2/brokers/configuration/runtime
// as Pulsar does: the broker's settings as a JSON object of strings. Only the
// settings alpes reads are there: brokerDeduplicationEnabled, the default
// for namespaces without a deduplication policy (Config.Deduplication), and
// maxMessageSize.
func (b *Broker) runtimeConfiguration(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{
		"brokerDeduplicationEnabled": strconv.FormatBool(b.cfg.Deduplication),
		"maxMessageSize":             strconv.Itoa(b.cfg.MaxMessageSize),
	})
}
