package orders

// DefaultHTTPAddr is where `alpes orders` serves /v1/progress, /healthz,
// /readyz and /metrics unless told otherwise: the service has no HTTP API
// of its own, its command serves its inbox's progress beside it.
const DefaultHTTPAddr = "127.0.0.1:8082"
