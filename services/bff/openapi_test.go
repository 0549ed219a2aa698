package bff

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// openAPI is the part of an OpenAPI document the tests read.
type openAPI struct {
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Schemas   map[string]schema `json:"schemas"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema schema `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"components"`
}

type operation struct {
	Responses map[string]struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Schema schema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type schema struct {
	Ref        string            `json:"$ref"`
	Type       string            `json:"type"`
	Required   []string          `json:"required"`
	Properties map[string]schema `json:"properties"`
	Items      *schema           `json:"items"`
	Enum       []string          `json:"enum"`
}

func loadOpenAPI(t *testing.T, e *env) openAPI {
	t.Helper()
	resp := e.do(http.MethodGet, "/openapi.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", resp.StatusCode)
	}
	var doc openAPI
	resp.json(t, &doc)
	return doc
}

// TestOpenAPICoversTheRouter checks that every route the router serves is
// documented, and every documented operation is served.
func TestOpenAPICoversTheRouter(t *testing.T) {
	e := newEnv(t)
	doc := loadOpenAPI(t, e)
	var served []string
	err := chi.Walk(e.srv.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("router serves %v\nopenapi.json documents %v", served, documented)
	}
}

// TestResponsesMatchOpenAPI checks sample answers of every operation
// against their documented status codes and schemas' required fields.
func TestResponsesMatchOpenAPI(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit, c.RateBurst = 1, 12 })
	doc := loadOpenAPI(t, e)
	id := e.placeOrder("openapi")
	samples := []struct {
		op   string // "METHOD /documented/path"
		resp response
	}{
		{"POST /v1/orders", e.post("openapi", validBody)},
		{"POST /v1/orders", e.post("openapi-bad", `{}`)},
		{"POST /v1/orders", e.post("openapi", `{"customer_id":"x","address":"a","items":[{"sku":"s","quantity":1}]}`)},
		{"GET /v1/orders/{id}", e.do(http.MethodGet, "/v1/orders/"+id, nil)},
		{"GET /v1/orders/{id}", e.do(http.MethodGet, "/v1/orders/nope", nil)},
		{"GET /v1/orders/{id}", e.do(http.MethodGet, "/v1/orders/"+strings.Repeat("0", 8)+"-0000-0000-0000-000000000000", nil)},
		{"GET /v1/products", e.do(http.MethodGet, "/v1/products", nil)},
		{"GET /openapi.json", e.do(http.MethodGet, "/openapi.json", nil)},
		{"GET /v1/replication", e.do(http.MethodGet, "/v1/replication", nil)},
		{"GET /v1/reports/orders", e.do(http.MethodGet, "/v1/reports/orders", nil)},
		{"GET /healthz", e.do(http.MethodGet, "/healthz", nil)},
		{"GET /readyz", e.do(http.MethodGet, "/readyz", nil)},
	}
	limited := false
	for i := 0; i < 10 && !limited; i++ { // exhaust the bucket
		if r := e.do(http.MethodGet, "/v1/products", nil); r.StatusCode == http.StatusTooManyRequests {
			samples = append(samples, struct {
				op   string
				resp response
			}{"GET /v1/products", r})
			limited = true
		}
	}
	if !limited {
		t.Error("no 429 sample")
	}
	for _, s := range samples {
		method, path, _ := strings.Cut(s.op, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Fatalf("%s not documented", s.op)
		}
		status := strconv.Itoa(s.resp.StatusCode)
		r, ok := op.Responses[status]
		if !ok {
			t.Errorf("%s answered %s, not documented", s.op, status)
			continue
		}
		content := r.Content
		if r.Ref != "" {
			content = doc.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")].Content
		}
		ct := s.resp.Header.Get("Content-Type")
		media, ok := content[ct]
		if !ok {
			media, ok = content["*/*"]
		}
		if !ok {
			t.Errorf("%s %s: content type %q not documented", s.op, status, ct)
			continue
		}
		var body any
		s.resp.json(t, &body)
		if err := doc.check(media.Schema, body, ""); err != nil {
			t.Errorf("%s %s: %v\n%s", s.op, status, err, s.resp.body)
		}
	}
}

// check validates v against s: types, required properties and enums,
// recursively. It is a small subset of JSON Schema, enough for our shapes.
func (d openAPI) check(s schema, v any, at string) error {
	if s.Ref != "" {
		return d.check(d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")], v, at)
	}
	switch s.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", at, v)
		}
		for _, name := range s.Required {
			if _, ok := obj[name]; !ok {
				return fmt.Errorf("%s: required %q missing", at, name)
			}
		}
		for name, val := range obj {
			if ps, ok := s.Properties[name]; ok {
				if err := d.check(ps, val, at+"/"+name); err != nil {
					return err
				}
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", at, v)
		}
		for i, el := range arr {
			if err := d.check(*s.Items, el, fmt.Sprintf("%s/%d", at, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %T", at, v)
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return fmt.Errorf("%s: %q not in %v", at, str, s.Enum)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: want an integer, got %v", at, v)
		}
	}
	return nil
}

func TestOpenAPIIsValidJSON(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
}
