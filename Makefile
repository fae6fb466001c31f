# skiff — Kubernetes workload machinery as an operator pack.
#
# Two commands set everything up on a fresh Debian or Ubuntu machine (as root):
#   make run    start a local skiff cluster and the controllers against it
#   make test   install what is missing and run every test

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Pinned tools, installed into bin/ on first use.
CONTROLLER_GEN_VERSION ?= v0.23.0
GINKGO_VERSION ?= $(shell $(GO) list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2 2>/dev/null)
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
HELM_VERSION ?= v3.22.0
HELM := $(BIN)/helm-$(HELM_VERSION)

# Kubernetes version of the control plane that tests and `skiff up` run.
K8S_VERSION ?= 1.36.3
export K8S_VERSION

CRD_DIR := config/crd/bases
CHART_DIR := config/helm/skiff
# The end-to-end suites take turns on the host (a lock), and a package's time
# includes its wait: more than go test's default 10 minutes.
GO_TEST_FLAGS ?= -count=1 -timeout 30m

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs (then finish them with hack/crdpatch) and RBAC.
	rm -f $(CRD_DIR)/*.yaml
	$(CONTROLLER_GEN) crd:generateEmbeddedObjectMeta=true paths=./api/... output:crd:artifacts:config=$(CRD_DIR)
	$(GO) run ./hack/crdpatch $(CRD_DIR)
	$(CONTROLLER_GEN) rbac:roleName=skiff-manager paths=./internal/... paths=./controllers/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=skiff-agent paths=./agent output:rbac:artifacts:config=config/rbac/agent
	$(CONTROLLER_GEN) webhook paths=./controllers/... output:webhook:artifacts:config=config/webhook
	@# The kustomize base lists every CRD; the Helm chart carries copies of the CRDs, RBAC and webhooks.
	{ sed -n '1,/^resources:/p' config/crd/kustomization.yaml; for f in $(CRD_DIR)/*.yaml; do echo "- bases/$${f##*/}"; done; } > config/crd/kustomization.yaml.new
	mv config/crd/kustomization.yaml.new config/crd/kustomization.yaml
	rm -f $(CHART_DIR)/files/crds/*.yaml
	cp $(CRD_DIR)/*.yaml $(CHART_DIR)/files/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/rbac/
	cp config/rbac/agent/role.yaml $(CHART_DIR)/files/rbac/agent_role.yaml
	cp config/webhook/manifests.yaml $(CHART_DIR)/files/webhook/
	cp config/noderestriction/policy.yaml $(CHART_DIR)/files/noderestriction/
	@# Argo CD health checks: config/argocd/health.lua for every kind.
	{ echo "# Argo CD health checks for every skiff kind, generated from health.lua by make manifests."; \
	  echo "# kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm.yaml"; \
	  echo "data:"; \
	  for f in $(CRD_DIR)/*.yaml; do \
	    echo "  resource.customizations.health.$$(sed -n 's/^  group: //p' $$f)_$$(sed -n 's/^    kind: //p' $$f): |"; \
	    sed '/^$$/!s/^/    /' config/argocd/health.lua; \
	  done; } > config/argocd/argocd-cm.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: fmt
fmt: ## gofmt the code.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet the code.
	$(GO) vet ./...

.PHONY: verify
verify: ## Fail when generated files are stale or code is not gofmt'ed.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	@tmp=$$(mktemp -d); trap 'rm -rf '$$tmp EXIT; cp -r api config $$tmp/; \
	  $(MAKE) -s generate manifests >/dev/null; \
	  if ! diff -r $$tmp/api api >/dev/null || ! diff -r $$tmp/config config >/dev/null; then \
	    diff -r $$tmp/api api; diff -r $$tmp/config config; \
	    echo "generated files were stale and are now regenerated: review and commit them"; exit 1; fi

##@ Build

.PHONY: build
build: ## Build skiff-controller-manager, skiff-agent (with its skiff-pause sandbox binary) and skiff (also kubectl-skiff) into bin/.
	$(GO) build -o $(BIN)/skiff-controller-manager ./cmd/manager
	$(GO) build -o $(BIN)/skiff-agent ./cmd/agent
	CGO_ENABLED=0 $(GO) build -o $(BIN)/skiff-pause ./cmd/agent/pause
	$(GO) build -o $(BIN)/skiff ./cmd/skiff
	ln -sf skiff $(BIN)/kubectl-skiff

.PHONY: run
run: build envtest ## Start a local single-node skiff cluster in the foreground (as root; Ctrl-C stops it).
	$(BIN)/skiff up

##@ Test

.PHONY: deps
deps: ## Install the Debian packages the tests need (as root; skipped when present).
	hack/deps.sh

.PHONY: envtest
envtest: deps ## Provide kube-apiserver, kube-controller-manager, etcd and kubectl (cached outside the clone).
	@hack/envtest.sh >/dev/null

.PHONY: test
test: envtest vet verify ## Install what is missing, then run every test (the Helm chart test builds helm with `make helm`).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: envtest ## Run the benchmarks and print their figures (first run builds kube-scheduler and kwok).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh --bench)" $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

.PHONY: helm
helm: $(HELM) ## Build the pinned helm into bin/ (the chart tests use it).

$(HELM):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(BIN)/helm $(HELM)
	ln -sf $(notdir $(HELM)) $(BIN)/helm

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $(CONTROLLER_GEN)
