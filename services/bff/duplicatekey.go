package bff

import (
	"bytes"
	"encoding/json"
)

// duplicateKey returns a member name that occurs twice in the JSON object
// data (already known to be well-formed). Decoding keeps only the last
// occurrence, and another parser might keep the first: refusing them leaves
// no room for two readers to disagree about a request.
//
// Only the object's own members count. A nested object is checked when it
// is decoded in its turn (decodeObject on each item), or not at all where
// the request does not look inside it. Names compare by their decoded
// value, so "ab" and "a\u0062" are one name, and the name returned is the
// decoded one.
//
// It reads the bytes itself rather than walking json.Decoder's tokens: the
// Decoder allocates a syntax error, never returned, at the end of every
// value followed by a comma or brace (docs/profiles.md), while this scan
// allocates nothing on an ordinary request: a few names, each plain ASCII
// without escapes, none repeated.
// Since data was checked first, anything unexpected in it gives ("",
// false) rather than an error.
func duplicateKey(data []byte) (string, bool) {
	s := objectScanner{data: data}
	if !s.consume('{') {
		return "", false
	}
	if s.consume('}') { // the empty object
		return "", false
	}
	var names memberNames
	for {
		name, ok := s.memberName()
		if !ok {
			return "", false
		}
		if names.seenBefore(name) {
			return string(name), true
		}
		if !s.consume(':') || !s.skipValue() {
			return "", false
		}
		if s.consume('}') { // the end, with no name repeated
			return "", false
		}
		if !s.consume(',') {
			return "", false
		}
	}
}

// objectScanner reads a JSON object's bytes from left to right, just far
// enough to tell its members' names apart and step over their values. It
// checks little of the syntax: it is only given JSON that encoding/json has
// already accepted, and it stops with ok false when it meets something it
// did not expect.
type objectScanner struct {
	data []byte
	pos  int // the next byte to read
}

// skipSpace moves past the whitespace JSON allows between tokens.
func (s *objectScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// consume moves past the byte c and the whitespace before it, reporting
// whether c was next; when it was not, nothing is consumed but whitespace.
func (s *objectScanner) consume(c byte) bool {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// memberName reads a member name and returns its decoded value. A plain
// name (printable ASCII without escapes) is its own bytes between the
// quotes, returned without copying. Any other is decoded by encoding/json,
// so that escapes, and invalid UTF-8 (which becomes U+FFFD), come out as
// the decoder that fills the request gives them.
func (s *objectScanner) memberName() ([]byte, bool) {
	s.skipSpace()
	literal, plain, ok := s.stringLiteral()
	switch {
	case !ok:
		return nil, false
	case plain:
		return literal[1 : len(literal)-1], true
	default:
		return decodeString(literal)
	}
}

// decodeString decodes a string literal that is not plain. It is apart
// from memberName so that the string encoding/json decodes into, which
// escapes to the heap, is allocated only on this slow path.
func decodeString(literal []byte) ([]byte, bool) {
	var decoded string
	if err := json.Unmarshal(literal, &decoded); err != nil {
		return nil, false
	}
	return []byte(decoded), true
}

// stringLiteral reads a string literal and returns it, quotes included. It
// reports whether the literal is plain: printable ASCII without a
// backslash, so that the bytes between its quotes are its decoded value.
func (s *objectScanner) stringLiteral() (literal []byte, plain, ok bool) {
	start := s.pos
	if start >= len(s.data) || s.data[start] != '"' {
		return nil, false, false
	}
	plain = true
	for i := start + 1; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			return s.data[start:s.pos], plain, true
		case c == '\\':
			// Skip the escaped byte, which may be a quote or a backslash
			// that neither ends the string nor escapes the next byte. The
			// hex digits of a \u escape hold neither, so they need no care.
			plain = false
			i++
		case c < 0x20 || c >= 0x80:
			plain = false
		}
	}
	return nil, false, false
}

// skipValue moves past one value of any kind, and the whitespace before
// it: a string, an object or array with everything inside it, or a number,
// true, false or null.
func (s *objectScanner) skipValue() bool {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '"':
		_, _, ok := s.stringLiteral()
		return ok
	case '{', '[':
		return s.skipNested()
	default:
		return s.skipLiteral()
	}
}

// skipNested moves past an object or array. The value being well-formed,
// its brackets pair up, so it ends at the bracket that brings the depth of
// nesting back to zero; counting, rather than recursing, keeps a deeply
// nested body from costing stack. Strings inside are stepped over whole,
// as they may hold brackets.
func (s *objectScanner) skipNested() bool {
	depth := 0
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '"':
			if _, _, ok := s.stringLiteral(); !ok {
				return false
			}
			continue // stringLiteral moved past the closing quote
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.pos++
				return true
			}
		}
		s.pos++
	}
	return false
}

// skipLiteral moves past a number, true, false or null: a run of the bytes
// they are spelled with, which ends at the comma, bracket or whitespace
// that follows. It reports false when the run is empty.
func (s *objectScanner) skipLiteral() bool {
	start := s.pos
	for s.pos < len(s.data) && isLiteralByte(s.data[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// isLiteralByte reports whether c may appear in a number, true, false or
// null.
func isLiteralByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// memberNames remembers the decoded names met so far in one object. A
// request has a handful of members, so a linear search of a small array,
// which lives on the stack, finds a repeat without allocating. An object
// may still hold thousands of members within the body limit: past the
// array, a map keeps the time spent from growing with the square of their
// number.
type memberNames struct {
	few  [16][]byte
	n    int                 // how many of few are in use
	many map[string]struct{} // every name, once few has overflowed
}

// seenBefore reports whether name was met before, and remembers it.
func (m *memberNames) seenBefore(name []byte) bool {
	if m.many != nil {
		return m.inMap(name)
	}
	for _, seen := range m.few[:m.n] {
		if bytes.Equal(seen, name) {
			return true
		}
	}
	if m.n == len(m.few) {
		m.many = make(map[string]struct{}, 2*len(m.few))
		for _, seen := range m.few {
			m.many[string(seen)] = struct{}{}
		}
		return m.inMap(name)
	}
	m.few[m.n] = name
	m.n++
	return false
}

// inMap is seenBefore once the names are in the map.
func (m *memberNames) inMap(name []byte) bool {
	if _, ok := m.many[string(name)]; ok {
		return true
	}
	m.many[string(name)] = struct{}{}
	return false
}
