package broker

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/alpes/alpes/internal/metrics"
)

// The admin API serves the subset of Pulsar's REST API (/admin/v2) that
// alpes and its tests use, with Pulsar's paths, status codes and JSON, so
// the same calls work against a real Pulsar.

// The admin API's errors beyond the broker's own, each answered with the
// status Pulsar gives it (see writeError).
var (
	errBadRequest       = errors.New("bad request")
	errNoResource       = errors.New("no such resource")       // 404
	errNotAcceptable    = errors.New("not acceptable")         // 406
	errUnprocessable    = errors.New("unprocessable")          // 422
	errConflict         = errors.New("conflict")               // 409
	errPrecondition     = errors.New("precondition failed")    // 412
	errUnsupportedMedia = errors.New("unsupported media type") // 415
)

// adminHandler routes the admin API.
func (b *Broker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v2/brokers/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok"))
	})
	// Prometheus metrics, as Pulsar serves them on its admin port, and
	// like Pulsar's by default (authenticateMetricsEndpoint=false) open
	// without the token: figures only, no names.
	mux.Handle("GET /metrics", metrics.Handler(b.newMetrics()))
	mux.HandleFunc("GET /admin/v2/tenants", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, []string{"public"})
	})
	mux.HandleFunc("GET /admin/v2/brokers/configuration/runtime", b.runtimeConfiguration)
	mux.HandleFunc("PUT /admin/v2/tenants/{tenant}", noContent)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}", b.listNamespaces)
	mux.HandleFunc("PUT /admin/v2/namespaces/{tenant}/{ns}", b.createNamespace)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{ns}", b.deleteNamespace)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.getDeduplication)
	mux.HandleFunc("POST /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.setDeduplication)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{ns}/deduplication", b.removeDeduplication)

	for _, domain := range []string{"persistent", "non-persistent"} {
		base := "/admin/v2/" + domain + "/{tenant}/{ns}"
		mux.HandleFunc("GET "+base, b.listTopics)
		mux.HandleFunc("GET "+base+"/partitioned", b.listPartitionedTopics)
		mux.HandleFunc("PUT "+base+"/{topic}", b.createTopicHandler)
		mux.HandleFunc("DELETE "+base+"/{topic}", b.deleteTopicHandler)
		mux.HandleFunc("PUT "+base+"/{topic}/unload", b.unloadTopicHandler)
		mux.HandleFunc("GET "+base+"/{topic}/stats", b.topicStats)
		mux.HandleFunc("GET "+base+"/{topic}/partitioned-stats", b.partitionedStats)
		mux.HandleFunc("GET "+base+"/{topic}/partitions", b.getPartitions)
		mux.HandleFunc("PUT "+base+"/{topic}/partitions", b.createPartitionedHandler)
		mux.HandleFunc("POST "+base+"/{topic}/partitions", b.updatePartitionsHandler)
		mux.HandleFunc("DELETE "+base+"/{topic}/partitions", b.deletePartitionedHandler)
		mux.HandleFunc("GET "+base+"/{topic}/subscriptions", b.listSubscriptions)
		mux.HandleFunc("PUT "+base+"/{topic}/subscription/{sub}", b.createSubscription)
		mux.HandleFunc("DELETE "+base+"/{topic}/subscription/{sub}", b.deleteSubscription)
		mux.HandleFunc("POST "+base+"/{topic}/subscription/{sub}/skip_all", b.skipAll)
		mux.HandleFunc("POST "+base+"/{topic}/subscription/{sub}/resetcursor/{timestamp}", b.resetCursor)
		mux.HandleFunc("GET "+base+"/{topic}/deduplicationEnabled", b.getDeduplication)
		mux.HandleFunc("POST "+base+"/{topic}/deduplicationEnabled", b.setDeduplication)
		mux.HandleFunc("DELETE "+base+"/{topic}/deduplicationEnabled", b.removeDeduplication)
	}
	return b.requireToken(mux)
}

// requireToken enforces token authentication when the broker has one.
func (b *Broker) requireToken(next http.Handler) http.Handler {
	if b.cfg.AuthToken == "" {
		return next
	}
	want := []byte("Bearer " + b.cfg.AuthToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/admin/v2/brokers/health" && r.URL.Path != "/metrics" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeError(w, fmt.Errorf("%w: missing or wrong token", errUnauthorized))
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errUnauthorized = errors.New("unauthorized")

// writeError maps the broker's errors to HTTP statuses, in one place, with
// Pulsar's {"reason": ...} body.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errTopicNotFound), errors.Is(err, errSubscriptionNotFound), errors.Is(err, errNamespaceNotFound),
		errors.Is(err, errNoResource):
		status = http.StatusNotFound
	case errors.Is(err, errTopicExists), errors.Is(err, errNamespaceExists), errors.Is(err, errNamespaceNotEmpty),
		errors.Is(err, errConflict):
		status = http.StatusConflict
	case errors.Is(err, errTopicBusy), errors.Is(err, errPrecondition):
		status = http.StatusPreconditionFailed
	case errors.Is(err, errNotAcceptable):
		status = http.StatusNotAcceptable
	case errors.Is(err, errUnprocessable):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, errUnsupportedMedia):
		status = http.StatusUnsupportedMediaType
	case errors.Is(err, errBadRequest), errors.Is(err, errPartitionedTopic):
		status = http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		status = http.StatusUnauthorized
	case errors.Is(err, errBrokerClosed):
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"reason": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func noContent(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// pathTopic returns the topic named by the request's path.
func pathTopic(r *http.Request) (topicName, error) {
	domain, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/admin/v2/"), "/")
	name := topicName{domain: domain, tenant: r.PathValue("tenant"), namespace: r.PathValue("ns"), local: r.PathValue("topic")}
	if _, err := parseTopicName(name.String()); err != nil {
		return name, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return name, nil
}

// partitionedMetadataType is the media type of Pulsar's
// PartitionedTopicMetadata, which pulsar-admin sends when it creates a
// partitioned topic with properties and pulsarctl always sends.
const partitionedMetadataType = "application/vnd.partitioned-topic-metadata+json"

// maxAdminBody bounds the request bodies the admin API reads.
const maxAdminBody = 64 << 10

// readOptionalBody returns the request's body, possibly empty, refusing,
// as Pulsar does, a body of a media type that is not JSON or text
// (errUnsupportedMedia).
func readOptionalBody(r *http.Request) ([]byte, error) {
	if err := checkMediaType(r); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %w", errBadRequest, err)
	}
	return bytes.TrimSpace(data), nil
}

// readBody is readOptionalBody for a request that needs a body: an empty
// one is errBadRequest, as in Pulsar.
func readBody(r *http.Request) ([]byte, error) {
	data, err := readOptionalBody(r)
	if err == nil && len(data) == 0 {
		err = fmt.Errorf("%w: the request entity cannot be empty", errBadRequest)
	}
	return data, err
}

// checkMediaType refuses a body whose Content-Type the admin API does not
// read: Pulsar's resources take JSON (and its own JSON media types) and
// plain text, and answer 415 to anything else, such as a form.
func checkMediaType(r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "", mt == "application/json", mt == "text/plain", strings.HasPrefix(mt, "application/vnd.") && strings.HasSuffix(mt, "+json"):
		return nil
	}
	return fmt.Errorf("%w: %q", errUnsupportedMedia, mt)
}

// readPartitionCount reads the body of a partitioned topic's creation. It
// takes the forms Pulsar accepts: a JSON number of partitions (pulsar-admin
// without properties; also a numeric string or an integral float, which
// Pulsar's JSON reader coerces), or, with the PartitionedTopicMetadata
// media type, that object ({"partitions": N, "properties": {...}}, which
// pulsar-admin sends with properties and pulsarctl always). The
// properties are read and not kept.
func readPartitionCount(r *http.Request) (int, error) {
	data, err := readBody(r)
	if err != nil {
		return 0, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == partitionedMetadataType && bytes.HasPrefix(data, []byte("{")) {
		var meta struct {
			Partitions int               `json:"partitions"`
			Properties map[string]string `json:"properties"`
		}
		if err := json.Unmarshal(data, &meta); err != nil {
			return 0, fmt.Errorf("%w: body is not partitioned topic metadata: %w", errBadRequest, err)
		}
		return meta.Partitions, nil
	}
	return parseCount(data)
}

// parseCount reads a JSON number of partitions, as Pulsar's JSON reader
// reads an int: an integral number or a string holding one.
func parseCount(data []byte) (int, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return 0, fmt.Errorf("%w: body must be a number of partitions: %w", errBadRequest, err)
	}
	var text string
	switch n := v.(type) {
	case json.Number:
		text = n.String()
	case string:
		text = n
	default:
		return 0, fmt.Errorf("%w: body must be a number of partitions, not %s", errBadRequest, data)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %q is not a number of partitions", errBadRequest, text)
	}
	return int(f), nil
}

// readTopicProperties reads the optional body of a topic's creation: a
// JSON object of properties, or null (pulsar-admin sends {} without
// properties). Properties are read and not kept.
func readTopicProperties(r *http.Request) error {
	data, err := readOptionalBody(r)
	if err != nil || len(data) == 0 {
		return err
	}
	var props map[string]string
	if err := json.Unmarshal(data, &props); err != nil {
		return fmt.Errorf("%w: body must be topic properties: %w", errBadRequest, err)
	}
	return nil
}
