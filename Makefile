# kubexport — build, test and deploy. `make help` lists the targets.

# Images of the three components.
IMG ?= kubexport/manager:latest
CONVERTER_IMG ?= kubexport/converter:latest
UPLOADER_IMG ?= kubexport/uploader:latest
# The year in the license header of generated files: the one they already carry, so that
# regenerating in a later year changes nothing (`make verify` compares them with git).
YEAR ?= $(or $(shell sed -n 's/^Copyright \([0-9]\{4\}\)\..*/\1/p' api/v1alpha1/zz_generated.deepcopy.go 2>/dev/null | head -1),$(shell date +%Y))
CONTAINER_TOOL ?= docker
# The images config/dev deploys (its kustomization's and minio.yaml's names; hack/images.sh
# builds the same without an engine): manager, converter, uploader, minio.
DEV_TAG ?= dev
DEV_IMAGES = kubexport/manager:$(DEV_TAG) kubexport/converter:$(DEV_TAG) kubexport/uploader:$(DEV_TAG) kubexport/minio:$(DEV_TAG)
# The MinIO release the tests run (hack/install-minio.sh) and the dev image builds.
MINIO_VERSION ?= $(shell sed -n 's/^MINIO_VERSION="$${MINIO_VERSION:-\(.*\)}"$$/\1/p' hack/install-minio.sh)

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# Tools the build installs from the Go module proxy (pinned: the proxy has gaps).
LOCALBIN ?= $(shell pwd)/bin
KUBECTL ?= kubectl
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
ENVTEST ?= $(LOCALBIN)/setup-envtest
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm
KUSTOMIZE_VERSION ?= v5.8.1
CONTROLLER_TOOLS_VERSION ?= v0.21.0
ENVTEST_VERSION ?= v0.24.1
GOLANGCI_LINT_VERSION ?= v2.12.2
HELM_VERSION ?= v4.3.2

# Packages of the non-e2e suite.
TEST_PKGS = $$(go list ./... | grep -v /test/e2e)
# What `make test` shows of `go test -v`: results, skips, failures with their messages, and the
# lines where suites say which real components they started.
TEST_FILTER = grep --line-buffered -E '^(ok|FAIL|--- FAIL|--- SKIP|panic:|envtest:|minio:|libreoffice:|corpus:)|^\s+\S+_test\.go:[0-9]+:'

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC from the API types and markers.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases
	@# The Helm chart renders these copies (charts/kubexport/files/): one source, config/.
	rm -f charts/kubexport/files/crds/*.yaml
	cp config/crd/bases/*.yaml charts/kubexport/files/crds/
	cp config/rbac/role.yaml charts/kubexport/files/rbac/role.yaml

.PHONY: helm-docs
helm-docs: ## Generate the values table of charts/kubexport/README.md from the comments of values.yaml.
	go run ./hack/chartdoc charts/kubexport

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt",year=$(YEAR) paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt (rewrites files; make verify only checks).
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (e2e files included).
	go vet ./...
	go vet -tags e2e ./test/...
	go vet -tags faults ./test/...

.PHONY: verify
verify: manifests generate helm-docs golangci-lint ## Regenerate, then check: generated files committed, gofmt, go vet, golangci-lint.
	GOLANGCI_LINT="$(GOLANGCI_LINT)" hack/verify.sh

# test, build and bench write nothing but bin/: generated files and formatting are `make verify`'s
# to check (and `make manifests generate fmt`'s to rewrite), so a test run leaves `git status` clean.
.PHONY: test
test: vet envtest-assets minio helm kustomize ## Run every non-e2e test (with -race) against a real API server, MinIO and LibreOffice.
	@mkdir -p bin
	@echo "Running tests (full log: bin/test.log)"
	KUBEBUILDER_ASSETS="$$(cat bin/.envtest-assets)" KUBEXPORT_MINIO="$$(cat bin/.minio-path)" HELM="$(HELM)" KUSTOMIZE="$(KUSTOMIZE)" \
		go test -race -v -count=1 -timeout 20m $(TEST_PKGS) -coverprofile bin/cover.out 2>&1 | tee bin/test.log | $(TEST_FILTER)

.PHONY: test-e2e
test-e2e: ## Bring up a cluster, deploy config/dev, run the e2e suite (incl. a `helm install` of the chart), tear down (KX_KEEP=1 keeps it).
	hack/e2e.sh

.PHONY: test-faults
test-faults: ## Bring up the offline local cluster, deploy config/dev, run the fault suite (build tag faults), tear down.
	hack/faults.sh

.PHONY: test-e2e-kind
test-e2e-kind: ## The e2e suite on kind without a registry (Linux, root): dockerd, real docker builds, an offline node image, kind, tear down.
	hack/e2e-kind.sh

.PHONY: kind-node-image
kind-node-image: ## Build the offline kind node image (kubexport.local/kind-node:v1.32.5) into Debian's dockerd (Linux, root).
	hack/kind-node-image.sh

.PHONY: test-short
test-short: ## Run only the pure unit tests (no API server, MinIO or LibreOffice).
	go test -short $(TEST_PKGS)

.PHONY: bench
bench: envtest-assets minio build ## Run the benchmarks (ratios against baselines measured in the same run).
	hack/bench-deps.sh
	KUBEBUILDER_ASSETS="$$(cat bin/.envtest-assets)" go test -run '^$$' -bench OperatorThroughput -benchtime 1x -timeout 30m ./controllers/ 2>&1 | grep -v '^{'
	KUBEXPORT_MINIO="$$(cat bin/.minio-path)" go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./converter/ 2>&1 | grep -v '^{'
	KUBEXPORT_MINIO="$$(cat bin/.minio-path)" KUBEBUILDER_ASSETS="$$(cat bin/.envtest-assets)" go test -run '^$$' -bench Uploader -benchtime 1x -timeout 30m ./internal/upload/ 2>&1 | grep -v '^{'

.PHONY: bench-cluster
bench-cluster: ## Benchmark on a local cluster: batching vs one Job per document vs warm unoconv listeners (KX_KEEP=1, KX_REUSE=1).
	hack/bench-cluster.sh

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run

##@ Build

.PHONY: build
build: vet ## Build bin/manager, bin/converter, bin/uploader and the kubectl plugin bin/kubectl-kubexport.
	CGO_ENABLED=0 go build -o bin/manager ./cmd/manager
	CGO_ENABLED=1 go build -o bin/converter ./cmd/converter # cgo: LibreOfficeKit (libreofficekit-dev headers)
	CGO_ENABLED=0 go build -o bin/uploader ./cmd/uploader
	CGO_ENABLED=0 go build -o bin/kubectl-kubexport ./cmd/kubectl-kubexport

.PHONY: krew
krew: ## Build the kubectl plugin's release archives (bin/krew/) and write its krew manifest plugins/kubexport.yaml (VERSION=v0.1.0).
	VERSION="$(or $(VERSION),v0.1.0)" hack/krew.sh

.PHONY: run
run: manifests generate fmt vet ## Run the operator from your host against ~/.kube/config.
	go run ./cmd/manager

.PHONY: docker-build
docker-build: ## Build the manager, converter and uploader images with a container engine.
	$(CONTAINER_TOOL) build -t ${IMG} .
	$(CONTAINER_TOOL) build -t ${CONVERTER_IMG} -f converter/Dockerfile .
	$(CONTAINER_TOOL) build -t ${UPLOADER_IMG} -f cmd/uploader/Dockerfile .

.PHONY: docker-build-dev
docker-build-dev: ## Build the images config/dev deploys (kubexport/{manager,converter,uploader,minio}:dev) with a container engine.
	$(MAKE) --no-print-directory docker-build IMG=$(word 1,$(DEV_IMAGES)) CONVERTER_IMG=$(word 2,$(DEV_IMAGES)) UPLOADER_IMG=$(word 3,$(DEV_IMAGES)) CONTAINER_TOOL=$(CONTAINER_TOOL)
	$(CONTAINER_TOOL) build -t $(word 4,$(DEV_IMAGES)) --build-arg MINIO_VERSION=$(MINIO_VERSION) -f config/dev/minio.Dockerfile config/dev

.PHONY: dev-images
dev-images: ## Print the images config/dev deploys, one a line.
	@printf '%s\n' $(DEV_IMAGES)

.PHONY: docker-build-offline
docker-build-offline: ## Without a registry (Linux, root): start Debian's dockerd, make the base images locally, run docker-build, check the images, stop dockerd.
	hack/docker-images.sh

.PHONY: docker-systemd-check
docker-systemd-check: ## Check that Debian's dockerd boots a privileged systemd container (a kind node's first need) here.
	hack/docker-systemd-check.sh

.PHONY: images
images: ## Build the manager, converter, uploader and MinIO images as archives, without a registry.
	hack/images.sh

##@ Demo and clusters

.PHONY: demo
demo: ## Build, bring up a cluster, deploy, convert a sample deck; prints the PDF and the web page.
	hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop the demo's port-forward and tear its cluster down.
	-@[ -s bin/demo/port-forward.pid ] && kill "$$(cat bin/demo/port-forward.pid)" 2>/dev/null; rm -f bin/demo/port-forward.pid
	hack/cluster.sh down

.PHONY: cluster-up
cluster-up: ## Bring up the test cluster (kind, or the offline local cluster) with the images loaded.
	hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Tear the test cluster down.
	hack/cluster.sh down

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster of ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" apply -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD (and every ExportJob) from the cluster.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator and uploader (IMG, UPLOADER_IMG) to the cluster of ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	cd config/uploader && "$(KUSTOMIZE)" edit set image uploader=${UPLOADER_IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: deploy-dev
deploy-dev: manifests kustomize ## Deploy operator, uploader and a dev MinIO with locally built :dev images.
	"$(KUSTOMIZE)" build config/dev | "$(KUBECTL)" apply -f -
	for d in kubexport-minio kubexport-controller-manager kubexport-uploader; do \
		"$(KUBECTL)" -n kubexport-system rollout status deploy/$$d --timeout=5m; done

.PHONY: undeploy-dev
undeploy-dev: kustomize ## Remove what deploy-dev created.
	"$(KUSTOMIZE)" build config/dev | "$(KUBECTL)" delete --ignore-not-found=true -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

.PHONY: envtest-assets
envtest-assets: envtest ## Find or build kube-apiserver and etcd for envtest (cached outside the clone).
	@SETUP_ENVTEST="$(ENVTEST)" hack/envtest-binaries.sh > bin/.envtest-assets.tmp && mv bin/.envtest-assets.tmp bin/.envtest-assets
	@echo "envtest binaries: $$(cat bin/.envtest-assets)"

.PHONY: minio
minio: $(LOCALBIN) ## Install the MinIO server for the storage tests (cached outside the clone).
	@hack/install-minio.sh > bin/.minio-path.tmp && mv bin/.minio-path.tmp bin/.minio-path
	@echo "minio: $$(cat bin/.minio-path)"

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: envtest
envtest: $(ENVTEST)
$(ENVTEST): $(LOCALBIN)
	$(call go-install-tool,$(ENVTEST),sigs.k8s.io/controller-runtime/tools/setup-envtest,$(ENVTEST_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: helm
helm: $(HELM) ## Install helm (built from the Go module proxy) for the chart's lint and tests.
$(HELM): $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v4/cmd/helm,$(HELM_VERSION))

# go-install-tool installs package $2 at version $3 as $1 (a versioned file plus a symlink).
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Installing $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" GOFLAGS= go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef
