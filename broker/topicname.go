package broker

import (
	"fmt"
	"strconv"
	"strings"
)

// partitionSuffix separates a partitioned topic's name from the index of
// one of its partitions, as in "orders-partition-3".
const partitionSuffix = "-partition-"

// topicName is a parsed, fully qualified topic name:
// {domain}://{tenant}/{namespace}/{local}.
type topicName struct {
	domain    string // "persistent" or "non-persistent"
	tenant    string
	namespace string
	local     string
}

// parseTopicName accepts what the Pulsar client accepts: a short name
// ("orders", in public/default), "tenant/namespace/topic", or a fully
// qualified name.
func parseTopicName(s string) (topicName, error) {
	t := topicName{domain: "persistent"}
	rest := s
	if d, r, ok := strings.Cut(s, "://"); ok {
		if d != "persistent" && d != "non-persistent" {
			return t, fmt.Errorf("topic %q: unknown domain %q", s, d)
		}
		t.domain, rest = d, r
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && !strings.Contains(s, "://"):
		t.tenant, t.namespace, t.local = "public", "default", parts[0]
	case len(parts) == 3:
		t.tenant, t.namespace, t.local = parts[0], parts[1], parts[2]
	default:
		return t, fmt.Errorf("topic %q: want [domain://]tenant/namespace/topic or a short name", s)
	}
	for _, p := range []string{t.tenant, t.namespace, t.local} {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return t, fmt.Errorf("topic %q: empty or blank name part", s)
		}
	}
	return t, nil
}

// nameScratch is room enough for most names, so that a name can be
// spelled in a caller's array: a map lookup keyed by string(b) does not
// allocate, which matters on the path of every SEND.
const nameScratch = 128

func (t topicName) String() string {
	var buf [nameScratch]byte
	return string(t.appendTo(buf[:0]))
}

// appendTo appends the name, as String spells it, to dst.
func (t topicName) appendTo(dst []byte) []byte {
	dst = append(append(dst, t.domain...), "://"...)
	dst = append(t.appendNamespace(dst), '/')
	return append(dst, t.local...)
}

// namespaceName returns "tenant/namespace".
func (t topicName) namespaceName() string {
	var buf [nameScratch]byte
	return string(t.appendNamespace(buf[:0]))
}

// appendNamespace appends the namespace's name, "tenant/namespace", to
// dst.
func (t topicName) appendNamespace(dst []byte) []byte {
	dst = append(append(dst, t.tenant...), '/')
	return append(dst, t.namespace...)
}

// partition returns the partition index encoded in the name, or -1.
func (t topicName) partition() int {
	i := strings.LastIndex(t.local, partitionSuffix)
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(t.local[i+len(partitionSuffix):])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// base returns the name without its partition suffix.
func (t topicName) base() topicName {
	if i := strings.LastIndex(t.local, partitionSuffix); i >= 0 && t.partition() >= 0 {
		t.local = t.local[:i]
	}
	return t
}

// partitionName returns the name of partition i of t.
func (t topicName) partitionName(i int) topicName {
	t.local += partitionSuffix + strconv.Itoa(i)
	return t
}
