package broker

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Namespaces of the admin API: create (PUT), list, delete, with Pulsar's
// status codes (409 for an existing or non-empty namespace, 404 for an
// unknown one). Unlike Pulsar, the broker also creates a namespace when a
// client first uses a topic in it, so clients need no admin call first;
// the namespace then exists for the admin API too.

// defaultNamespace exists from the start, as in a Pulsar standalone.
const defaultNamespace = "public/default"

var (
	errNamespaceNotFound = errors.New("namespace does not exist")
	errNamespaceExists   = errors.New("namespace already exists")
	errNamespaceNotEmpty = errors.New("namespace is not empty")
)

// namespaceOf returns "tenant/ns" of an admin request's path.
func namespaceOf(r *http.Request) string { return r.PathValue("tenant") + "/" + r.PathValue("ns") }

// namespaceExists reports whether the namespace ("tenant/ns") exists.
func (b *Broker) namespaceExists(ns string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.namespaces[ns]
}

// requireNamespace returns errNamespaceNotFound unless ns exists.
func (b *Broker) requireNamespace(ns string) error {
	if !b.namespaceExists(ns) {
		return fmt.Errorf("%w: %s", errNamespaceNotFound, ns)
	}
	return nil
}

func (b *Broker) createNamespace(w http.ResponseWriter, r *http.Request) {
	ns := namespaceOf(r)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.namespaces[ns] {
		writeError(w, fmt.Errorf("%w: %s", errNamespaceExists, ns))
		return
	}
	b.namespaces[ns] = true
	respond(w, b.saveMetadataLocked())
}

func (b *Broker) listNamespaces(w http.ResponseWriter, r *http.Request) {
	prefix := r.PathValue("tenant") + "/"
	b.mu.Lock()
	names := []string{}
	for ns := range b.namespaces {
		if strings.HasPrefix(ns, prefix) {
			names = append(names, ns)
		}
	}
	b.mu.Unlock()
	sort.Strings(names)
	writeJSON(w, names)
}

// deleteNamespace deletes an empty namespace and its policies. As in
// Pulsar (without forceDeleteNamespaceAllowed), a namespace that still
// has topics is refused with 409.
func (b *Broker) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	ns := namespaceOf(r)
	if !b.namespaceExists(ns) {
		writeError(w, fmt.Errorf("%w: %s", errNamespaceNotFound, ns))
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.topicNamesLocked(ns)) > 0 {
		writeError(w, fmt.Errorf("%w: %s still has topics", errNamespaceNotEmpty, ns))
		return
	}
	delete(b.namespaces, ns)
	b.policyMu.Lock()
	delete(b.dedupPolicy, ns)
	b.policyMu.Unlock()
	respond(w, b.saveMetadataLocked())
}
