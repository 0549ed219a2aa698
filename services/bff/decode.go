package bff

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of an order request. Strings are counted in Unicode code points.
const (
	maxCustomerIDLen = 128
	maxAddressLen    = 1000
	maxSKULen        = 64
	maxItems         = 100
	maxQuantity      = 1000
)

// orderRequest is a decoded and validated POST /v1/orders body.
type orderRequest struct {
	CustomerID string     `json:"customer_id"`
	Address    string     `json:"address"`
	Items      []itemLine `json:"items"`
}

// itemLine is one requested product and quantity.
type itemLine struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// serverOwned reports whether name is a field a client may not set because
// the server assigns it; naming one gets a clearer error than an unknown
// field (mass assignment).
func serverOwned(name string) bool {
	switch name {
	case "id", "order_id", "status", "price", "unit_price", "total", "line_total", "payment_id", "created_at", "requested_at", "updated_at":
		return true
	}
	return false
}

// decodeOrderRequest parses and validates body strictly: one JSON object,
// exact field names (no case folding), no unknown or server-owned fields, no
// trailing data, correct types, bounded sizes, valid UTF-8 without control
// characters. Every failure is an *invalidError.
func decodeOrderRequest(body []byte) (orderRequest, error) {
	var req orderRequest
	if !utf8.Valid(body) {
		return req, invalid("", "the body is not valid UTF-8")
	}
	obj, err := decodeObject(body, "")
	if err != nil {
		return req, err
	}
	// From here on every field is checked, and the answer lists each
	// invalid one, not only the first.
	var errs invalidFields
	errs.add(checkFields(obj, "", []string{"customer_id", "address", "items"}))
	req.CustomerID, err = stringField(obj, "customer_id", "/customer_id", maxCustomerIDLen, false)
	errs.add(err)
	req.Address, err = stringField(obj, "address", "/address", maxAddressLen, true)
	errs.add(err)
	req.Items = decodeItems(obj["items"], &errs)
	return req, errs.err()
}

// decodeItems decodes the items member, adding what is wrong with it or
// with any of its items to errs.
func decodeItems(raw json.RawMessage, errs *invalidFields) []itemLine {
	if raw == nil || isNull(raw) {
		errs.add(invalid("/items", "is required"))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		errs.add(invalid("/items", "must be an array"))
		return nil
	}
	if len(items) == 0 || len(items) > maxItems {
		errs.add(invalid("/items", "must hold 1 to %d items", maxItems))
		return nil
	}
	var lines []itemLine
	seen := map[string]bool{}
	for i, rawItem := range items {
		path := fmt.Sprintf("/items/%d", i)
		item, err := decodeItem(rawItem, path)
		if err != nil {
			errs.add(err)
			continue
		}
		if seen[item.SKU] {
			errs.add(invalid(path+"/sku", "%q appears twice; put the whole quantity on one item", item.SKU))
			continue
		}
		seen[item.SKU] = true
		lines = append(lines, item)
	}
	return lines
}

func decodeItem(raw json.RawMessage, path string) (itemLine, error) {
	var item itemLine
	obj, err := decodeObject(raw, path)
	if err != nil {
		return item, err
	}
	var errs invalidFields
	errs.add(checkFields(obj, path, []string{"sku", "quantity"}))
	item.SKU, err = stringField(obj, "sku", path+"/sku", maxSKULen, false)
	errs.add(err)
	item.Quantity, err = quantityField(obj, path)
	errs.add(err)
	return item, errs.err()
}

// quantityField returns the item's quantity, an integer from 1 to
// maxQuantity.
func quantityField(obj map[string]json.RawMessage, path string) (int, error) {
	rawQty, ok := obj["quantity"]
	if !ok || isNull(rawQty) {
		return 0, invalid(path+"/quantity", "is required")
	}
	var qty json.Number
	if c := bytes.TrimSpace(rawQty); len(c) == 0 || c[0] == '"' || json.Unmarshal(c, &qty) != nil {
		return 0, invalid(path+"/quantity", "must be an integer")
	}
	n, err := qty.Int64()
	if err != nil && strings.ContainsAny(string(qty), ".eE") {
		return 0, invalid(path+"/quantity", "must be an integer")
	}
	if err != nil { // out of int64's range
		n = maxQuantity + 1
	}
	if n < 1 || n > maxQuantity {
		return 0, invalid(path+"/quantity", "must be between 1 and %d", maxQuantity)
	}
	return int(n), nil
}

// decodeObject decodes exactly one JSON object from data, refusing trailing
// data, and returns its members undecoded.
func decodeObject(data []byte, path string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return nil, invalid(path, "must be a JSON object")
		case errors.Is(err, io.EOF):
			return nil, invalid(path, "a JSON object is required")
		default:
			return nil, invalid(path, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if obj == nil {
		return nil, invalid(path, "must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid(path, "unexpected data after the JSON object")
	}
	if name, dup := duplicateKey(data); dup {
		return nil, invalid(path+"/"+name, "appears twice")
	}
	return obj, nil
}

// checkFields refuses members of obj that are server-owned or unknown.
func checkFields(obj map[string]json.RawMessage, path string, allowed []string) error {
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic: offending names in alphabetical order
	var errs invalidFields
	for _, name := range names {
		switch {
		case slices.Contains(allowed, name):
		case serverOwned(name):
			errs.add(invalid(path+"/"+name, "is assigned by the server and may not be sent"))
		default:
			errs.add(invalid(path+"/"+name, "is not a known field"))
		}
	}
	return errs.err()
}

// stringField returns the required string member name of obj, checked
// against maxLen code points and for control characters (newlines and tabs
// allowed only when multiline).
func stringField(obj map[string]json.RawMessage, name, path string, maxLen int, multiline bool) (string, error) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return "", invalid(path, "is required")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(path, "must be a string")
	}
	if strings.TrimSpace(s) == "" {
		return "", invalid(path, "must not be blank")
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return "", invalid(path, "must be at most %d characters, not %d", maxLen, n)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Cs, r) {
			return "", invalid(path, "must not contain control characters (found %U)", r)
		}
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// canonicalHash is the SHA-256 of req encoded in one fixed form: the
// idempotency record's request fingerprint. Two bodies that decode to the
// same request (other whitespace, key order or escapes) hash the same.
func canonicalHash(req orderRequest) []byte {
	b, err := json.Marshal(req)
	if err != nil {
		panic(fmt.Sprintf("encoding a validated request: %v", err)) // strings and ints always encode
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
