package bff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// duplicateKeyReference is duplicateKey as it was written first, on
// json.Decoder's tokens: plainly right, but 73 allocations per order, 43 on
// the body and 30 on its one item. FuzzDuplicateKey and
// TestDuplicateKeyOnRandomObjects hold the scanner to its answers.
func duplicateKeyReference(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := tok.(string)
		if seen[name] {
			return name, true
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", false
		}
	}
	return "", false
}

// manyMembers is an object of n members named m0, m1, …, then the extra
// members given, enough to outgrow memberNames' array.
func manyMembers(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"m%d":%d,`, i, i)
	}
	b.WriteString(extra + "}")
	return b.String()
}

// duplicateKeyCases are objects and the answer duplicateKey owes each.
var duplicateKeyCases = []struct {
	name, data string
	want       string // the repeated name, if dup
	dup        bool
}{
	{name: "empty object", data: `{}`},
	{name: "empty object with space", data: " { \n } "},
	{name: "order", data: validBody},
	{name: "no duplicates", data: `{"a":1,"b":2,"c":3}`},
	{name: "plain duplicate", data: `{"a":1,"b":2,"a":3}`, want: "a", dup: true},
	{name: "first repeat wins", data: `{"a":1,"b":2,"b":3,"a":4}`, want: "b", dup: true},
	{name: "empty name twice", data: `{"":1,"":2}`, want: "", dup: true},
	{name: "case differs", data: `{"a":1,"A":2}`},
	{name: "prefix", data: `{"ab":1,"a":2,"abc":3}`},
	{name: "escaped repeat of plain", data: `{"ab":1,"a\u0062":2}`, want: "ab", dup: true},
	{name: "plain repeat of escaped", data: `{"a\u0062":1,"ab":2}`, want: "ab", dup: true},
	{name: "escaped quote in name", data: `{"a\"b":1,"a\u0022b":2}`, want: `a"b`, dup: true},
	{name: "escaped solidus", data: `{"a/b":1,"a\/b":2}`, want: "a/b", dup: true},
	{name: "non-ASCII, escaped and not", data: `{"é":1,"\u00e9":2}`, want: "é", dup: true},
	{name: "surrogate pair", data: `{"🧀":1,"\ud83e\uddc0":2}`, want: "🧀", dup: true},
	{name: "escapes that differ", data: `{"\u0061":1,"\u0062":2}`},
	{name: "duplicate only nested", data: `{"a":{"b":1,"b":2},"c":[{"d":1,"d":2}]}`},
	{name: "nested names repeat outer", data: `{"a":{"a":1},"b":{"a":{"b":2}}}`},
	{name: "duplicate after nested", data: `{"a":{"b":{"c":[1,{"d":[]}]}},"a":0}`, want: "a", dup: true},
	{name: "arrays of objects", data: `{"items":[{"sku":"S","quantity":1},{"sku":"S","quantity":1}],"x":[[],[{}],{"items":2}]}`},
	{name: "arrays then repeat", data: `{"items":[{"sku":"S"}],"items":[]}`, want: "items", dup: true},
	{name: "strings with quotes, backslashes, brackets", data: `{"a":"x\"y\\","b":"}{][,:\"","c":["\\\"",{"\"":"]"}],"a":0}`, want: "a", dup: true},
	{name: "backslash before closing quote", data: `{"a\\":1,"a":2}`},
	{name: "backslash names repeat", data: `{"a\\":1,"a\u005c":2}`, want: `a\`, dup: true},
	{name: "numbers and literals", data: `{"a":-1.5e+10,"b":true,"c":false,"d":null,"e":0E-2,"a":0}`, want: "a", dup: true},
	{name: "whitespace everywhere", data: " \t\n{ \"a\" : 1 ,\r\n \"b\" :[ 1 , { } ] , \"a\"\t:2 } ", want: "a", dup: true},
	{name: "invalid UTF-8 names", data: "{\"\xff\":1,\"\xfe\":2}", want: "\ufffd", dup: true},
	{name: "invalid UTF-8 repeats U+FFFD", data: "{\"\ufffd\":1,\"\xff\":2}", want: "\ufffd", dup: true},
	{name: "lone surrogate repeats U+FFFD", data: `{"\ud800":1,"\ufffd":2}`, want: "\ufffd", dup: true},
	{name: "invalid UTF-8 names that differ", data: "{\"\xffa\":1,\"\xffb\":2}"},
	{name: "many members", data: manyMembers(40, `"last":0`)},
	{name: "many members, then a repeat", data: manyMembers(40, `"m3":0`), want: "m3", dup: true},
	{name: "repeat at the array's edge", data: manyMembers(16, `"m15":0`), want: "m15", dup: true},
	{name: "many members, escaped repeat", data: manyMembers(40, `"\u006d39":0`), want: "m39", dup: true},
}

// TestDuplicateKey checks duplicateKey, and the reference it is held to,
// against answers written by hand.
func TestDuplicateKey(t *testing.T) {
	for _, tc := range duplicateKeyCases {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.data)) {
				t.Fatalf("case is not valid JSON: %q", tc.data)
			}
			for impl, f := range map[string]func([]byte) (string, bool){
				"duplicateKey":          duplicateKey,
				"duplicateKeyReference": duplicateKeyReference,
			} {
				if name, dup := f([]byte(tc.data)); name != tc.want || dup != tc.dup {
					t.Errorf("%s = (%q, %v), want (%q, %v)", impl, name, dup, tc.want, tc.dup)
				}
			}
		})
	}
}

// TestDuplicateKeyAllocations holds duplicateKey to allocating nothing on
// an order and on its item, the bodies every POST checks: the reference
// allocates 73 times on them.
func TestDuplicateKeyAllocations(t *testing.T) {
	for _, data := range []string{validBody, `{"sku":"SKU-1","quantity":2}`} {
		b := []byte(data)
		allocs := testing.AllocsPerRun(100, func() {
			if _, dup := duplicateKey(b); dup {
				t.Fatalf("duplicate found in %s", data)
			}
		})
		if allocs != 0 {
			t.Errorf("duplicateKey(%s) allocates %v times, want 0", data, allocs)
		}
	}
}

// FuzzDuplicateKey holds duplicateKey to duplicateKeyReference on every
// input the two must agree on: one well-formed JSON object, which is all
// decodeObject passes on. On anything else duplicateKey need only not
// panic. Run with:
//
//	go test ./services/bff -run '^$' -fuzz FuzzDuplicateKey -fuzztime 60s
func FuzzDuplicateKey(f *testing.F) {
	for _, tc := range duplicateKeyCases {
		f.Add([]byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		name, dup := duplicateKey(data)
		if !json.Valid(data) || !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
			return
		}
		wantName, wantDup := duplicateKeyReference(data)
		if name != wantName || dup != wantDup {
			t.Fatalf("duplicateKey(%q) = (%q, %v), reference says (%q, %v)", data, name, dup, wantName, wantDup)
		}
	})
}

// TestDuplicateKeyOnRandomObjects holds duplicateKey to the reference on
// objects built at random from the pieces that make names and values hard
// to tell apart. It backs up FuzzDuplicateKey, whose mutations of the seeds
// are seldom still a well-formed object, the only input compared.
func TestDuplicateKeyOnRandomObjects(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2)) // fixed, so that a failure repeats
	dups := 0
	for range 20000 {
		data := []byte(randomObject(r, 0))
		if !json.Valid(data) {
			t.Fatalf("built invalid JSON %q", data)
		}
		name, dup := duplicateKey(data)
		wantName, wantDup := duplicateKeyReference(data)
		if name != wantName || dup != wantDup {
			t.Fatalf("duplicateKey(%q) = (%q, %v), reference says (%q, %v)", data, name, dup, wantName, wantDup)
		}
		if dup {
			dups++
		}
	}
	t.Logf("%d of 20000 objects have a duplicate", dups)
	if dups < 1000 || dups > 19000 {
		t.Errorf("%d of 20000 objects have a duplicate: the test tries too few of one kind", dups)
	}
}

// namePieces spell the contents of strings, several of them in more than
// one way: escaped or not, and invalid UTF-8 or a lone surrogate, which
// both decode to U+FFFD.
var namePieces = []string{
	"a", "b", `\u0061`, `\"`, `\\`, `\u005c`, "/", `\/`, "é", `\u00e9`,
	"\xff", "\xfe", "\ufffd", `\ufffd`, `\ud800`, "}", "]", ",", ":", " ",
}

// randomString is a string literal of up to three pieces.
func randomString(r *rand.Rand) string {
	var b strings.Builder
	b.WriteByte('"')
	for range r.IntN(4) {
		b.WriteString(namePieces[r.IntN(len(namePieces))])
	}
	b.WriteByte('"')
	return b.String()
}

// randomObject is an object of up to five members, its values nested up
// to depth 3, with whitespace here and there.
func randomObject(r *rand.Rand, depth int) string {
	members := make([]string, r.IntN(6))
	for i := range members {
		members[i] = space(r) + randomString(r) + space(r) + ":" + space(r) + randomValue(r, depth+1) + space(r)
	}
	return space(r) + "{" + space(r) + strings.Join(members, ",") + "}" + space(r)
}

// randomValue is a value of any kind, but no object or array from depth 3
// on.
func randomValue(r *rand.Rand, depth int) string {
	kind := r.IntN(5)
	if depth >= 3 {
		kind = r.IntN(3)
	}
	switch kind {
	case 0:
		return randomString(r)
	case 1:
		return []string{"0", "-1.5e+10", "2E-3", "12"}[r.IntN(4)]
	case 2:
		return []string{"true", "false", "null"}[r.IntN(3)]
	case 3:
		values := make([]string, r.IntN(4))
		for i := range values {
			values[i] = randomValue(r, depth+1)
		}
		return "[" + space(r) + strings.Join(values, ",") + "]"
	default:
		return randomObject(r, depth)
	}
}

// space is no whitespace, or some.
func space(r *rand.Rand) string {
	return []string{"", "", "", " ", "\n\t", "\r\n  "}[r.IntN(6)]
}
