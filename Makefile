# The README's commands. `make test` is what CI runs (.ci/run).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

GO       ?= go
BUF      := $(GO) tool -modfile=tools.mod buf
# Test timeout per package; the slowest packages start real Postgres clusters.
TEST_FLAGS ?= -race -timeout 10m

.PHONY: test deploy-check test-pulsar pulsar-up pulsar-down fuzz-smoke bench bench-quick chaos chaos-suite check fmt-check tidy-check vet proto proto-check proto-lint proto-fresh proto-breaking go-test build dev

## test: everything CI checks: formatting, vet, the protobuf checks, all tests with the race
## detector on the embedded broker, the deployment files' static checks, the broker-facing tests
## again on a real Apache Pulsar, and each fuzz target for a few seconds.
test: check go-test deploy-check test-pulsar fuzz-smoke

check: fmt-check tidy-check vet proto-check

tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@$(GO) mod tidy -modfile=tools.mod -diff || { echo "tools.mod/tools.sum are not tidy: run 'go mod tidy -modfile=tools.mod' and commit"; exit 1; }
	@cd deploy/check && $(GO) mod tidy -diff || { echo "deploy/check/go.mod/go.sum are not tidy: run 'go mod tidy' in deploy/check and commit"; exit 1; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

go-test:
	$(GO) test $(TEST_FLAGS) ./...
	@# Tests that make pulsar-client-go reconnect mid-send or close a producer
	@# while its connection closes, where the client itself races (see
	@# relay/outage_test.go, broker/dedup_restart_test.go), run
	@# without the race detector.
	$(GO) test -count=1 -timeout 5m -run '^TestBrokerOutage$$' ./relay/
	$(GO) test -count=1 -timeout 5m -run '^TestDeduplication(AcrossProducerRestart|SurvivesBrokerRestart)$$' ./broker/

## deploy-check: docker-compose.yml (through the Compose loader) and the Kubernetes manifests of
## deploy/k8s (rendered by kustomize, decoded into the Kubernetes API types) checked against
## lab/stack, statically. deploy/check is a module of its own, keeping those libraries out of
## go.mod; the command lines it finds are parsed by cmd/alpes's TestDeploymentCommandLinesParse.
deploy-check:
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 ./...

## test-pulsar: the tests that talk to a broker, run against ONE real Apache Pulsar standalone
## started for the whole pass (fetched once with Maven; needs Java 17+ and Maven) and stopped
## after it. Tests isolate themselves by unique tenant, namespace, topic and subscription names.
## It fails, never skips, when Pulsar cannot start.
PULSAR_TEST_PKGS ?= ./broker/ ./relay/... ./outbox/... ./services/... ./lab/devstack/
test-pulsar:
	$(GO) run ./cmd/alpes pulsar exec -- bash -c '\
		$(GO) test -count=1 -timeout 15m $(PULSAR_TEST_PKGS) && \
		$(GO) test -count=1 -timeout 10m -run "^TestShortChaosSoak$$" ./lab/chaos/'


## pulsar-up: a real Apache Pulsar standalone on 127.0.0.1:6650 (admin :8080) in the background,
## alpes's namespaces created with deduplication on. pulsar-down: stop it and remove its data.
pulsar-up:
	$(GO) run ./cmd/alpes pulsar up

pulsar-down:
	$(GO) run ./cmd/alpes pulsar down

## fuzz-smoke: every fuzz target for FUZZ_TIME inputs (seed corpus first), so none rots. A count,
## not a duration: Go 1.26's coordinator can fail a duration run with a spurious "context deadline
## exceeded" as the time runs out (go.dev/issue/75804). For a real hunt, run one alone for longer:
## go test -run '^$$' -fuzz '^FuzzPostOrder$$' -fuzztime 10m ./services/bff/
FUZZ_TIME ?= 3000x
FUZZ_TARGETS := ./services/bff/:FuzzDecodeOrderRequest ./services/bff/:FuzzPostOrder \
	./broker/:FuzzConnection ./internal/pulsarwire/:FuzzParseFrame \
	./relay/pgsource/:FuzzDecodePgoutput
fuzz-smoke:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZ_TIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZ_TIME) "$$pkg" || exit 1; \
	done

## bench: the benchmark scenarios (docs/performance.md) on a quiet machine (about 40 minutes); rewrites
## docs/benchmarks.md and docs/benchmarks.json. bench-quick: the same at small sizes, minutes.
bench:
	$(GO) run ./cmd/alpes bench

bench-quick:
	$(GO) run ./cmd/alpes bench --quick

## chaos: the 15-minute soak: load, random kills, freezes and Postgres crashes, then the oracle.
CHAOS_DURATION ?= 15m
chaos:
	$(GO) run ./cmd/alpes chaos --duration $(CHAOS_DURATION)

## chaos-suite: the fault tests too long for CI (minutes each), behind the chaos build tag.
chaos-suite:
	$(GO) test -tags chaos -count=1 -timeout 60m ./relay/ ./lab/chaos/

## proto: regenerate the Go code of every .proto file (pinned tools, run through `go tool`).
proto:
	$(BUF) generate

proto-check: proto-lint proto-fresh proto-breaking

proto-lint:
	$(BUF) lint

## proto-fresh: fails when a generated file differs from what `make proto` would write.
proto-fresh:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp"; stale=0; \
	for f in $$(cd "$$tmp" && find . -name '*.pb.go'); do \
		if ! cmp -s "$$tmp/$$f" "$$f"; then echo "stale or missing: $${f#./}"; stale=1; fi; \
	done; \
	if [ $$stale = 1 ]; then echo "generated protobuf code is stale; run 'make proto' and commit"; exit 1; fi

## proto-breaking: no breaking change to a published schema. On a branch, compared with main;
## on main itself, compared with the previous commit.
proto-breaking:
	@branch=$$(git rev-parse --abbrev-ref HEAD); \
	if [ "$$branch" != main ] && git rev-parse -q --verify main >/dev/null; then against=main; else against=HEAD~1; fi; \
	if ! git cat-file -e "$$against:buf.yaml" 2>/dev/null; then \
		echo "proto-breaking: $$against has no buf.yaml; nothing to compare with"; exit 0; fi; \
	echo "proto-breaking: comparing with $$against"; \
	$(BUF) breaking --against ".git#ref=$$(git rev-parse $$against)"

build:
	$(GO) build -buildvcs=true -o bin/alpes ./cmd/alpes

## dev: the whole system on this machine (see README).
dev:
	$(GO) run ./cmd/alpes dev
