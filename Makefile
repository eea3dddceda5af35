# Brupop in Go. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export GOTOOLCHAIN ?= local
export GOFLAGS ?= -buildvcs=false

# TOOLS_DIR holds the pinned binaries `make tools` builds (outside the clone, shared by clones).
TOOLS_DIR ?= $(shell hack/tools/install.sh --print-dir)
CONTROLLER_GEN = $(TOOLS_DIR)/controller-gen
GOLANGCI_LINT  = $(TOOLS_DIR)/golangci-lint
export BRUPOP_TOOLS_DIR := $(TOOLS_DIR)

GO_TEST_FLAGS ?= -race -count=1
FUZZ_TIME ?= 20000x
PKGS = ./...

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build the pinned control plane, kwok, controller-gen and golangci-lint (15 min cold, no-op when present).
	@hack/tools/install.sh >/dev/null

.PHONY: generate
generate: tools ## Generate deepcopy code from the API markers.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: tools ## Generate the CRD and RBAC manifests under config/, and copy them into deploy/charts.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=config/crd
	go run ./hack/crdpatch config/crd/brupop.bottlerocket.aws_bottlerocketshadows.yaml
	$(CONTROLLER_GEN) rbac:roleName=brupop-apiserver-role paths=./internal/apiserver/... output:rbac:dir=config/rbac/apiserver
	$(CONTROLLER_GEN) rbac:roleName=brupop-controller-role paths=./internal/controller/... output:rbac:dir=config/rbac/controller
	go run ./hack/chartgen

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet $(PKGS)

.PHONY: lint
lint: tools ## Run golangci-lint with the code rules of docs/architecture.md (the e2e stories included).
	$(GOLANGCI_LINT) run --allow-parallel-runners --build-tags e2e $(PKGS)

.PHONY: build
build: ## Build every command into ./bin.
	go build -o bin/ ./cmd/...

.PHONY: test
test: tools ## Unit, integration (real control plane) and fuzz-smoke tests.
	go test $(GO_TEST_FLAGS) $(PKGS)
	$(MAKE) fuzz-smoke

.PHONY: fuzz-smoke
fuzz-smoke: ## Run each fuzz target for a fixed number of executions.
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -d' ' -f2); do \
	    echo "fuzz $$t $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) $$t; \
	  done; \
	done

.PHONY: e2e
e2e: tools ## End-to-end stories on the simulated cluster (test/e2e; BRUPOP_E2E_LOG_DIR keeps the logs).
	go test $(GO_TEST_FLAGS) -tags e2e -timeout 30m ./test/e2e/...

.PHONY: bench
bench: ## Go benchmarks of the decision code.
	go test -run '^$$' -bench . -benchmem ./internal/...

.PHONY: demo
demo: tools ## A local control plane with a simulated fleet, rolling out an update.
	go run ./cmd/brupop-sim cluster

.PHONY: verify
verify: tools ## Fail when generated code, manifests, go mod tidy or gofmt would change anything.
	$(MAKE) generate manifests
	go mod tidy
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@if [ -n "$$(git status --porcelain -- go.mod go.sum api config deploy)" ]; then \
	  git status --porcelain -- go.mod go.sum api config deploy; git diff --stat; \
	  echo 'generated files are stale: run make generate manifests && go mod tidy, then commit'; exit 1; fi
