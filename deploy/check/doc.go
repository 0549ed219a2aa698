// Package check holds the static checks of alpes's deployment files, which
// need libraries the alpes module itself does not: docker-compose.yml read by
// the Compose specification's own loader (compose-go), and the Kubernetes
// manifests of deploy/k8s rendered by kustomize and decoded strictly into
// the Kubernetes API types. It is a module of its own, so that these
// dependencies stay out of the alpes module's go.mod; `make deploy-check`
// runs it.
//
// Both checks compare the files with lab/stack, the one description of the
// running system. Each also writes the alpes command lines the files start
// (testdata/*-commandlines.json); cmd/alpes's tests parse every one of them
// with the alpes command's own parser, which cannot be imported from here.
// Run `go test ./... -update` after changing a file on purpose.
package check
