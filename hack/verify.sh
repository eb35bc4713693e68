#!/usr/bin/env bash
# make verify's checks, run after `make manifests generate helm-docs` has regenerated the CRD,
# RBAC and DeepCopy code, the Helm chart's copies of them and its README's values table: gofmt,
# go vet (e2e files included), golangci-lint, and then that the generators changed nothing (no
# diff, no new file). Every check runs, so one run lists every problem; the exit status is
# non-zero when any failed.
#
#   GOLANGCI_LINT=bin/golangci-lint hack/verify.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit
GOLANGCI_LINT=${GOLANGCI_LINT:-bin/golangci-lint}

failed=()
step() { printf '\n== verify: %s\n' "$*"; }

step "gofmt"
# Every Go file of the clone that git would track (nested modules such as hack/imagebuild too).
mapfile -t unformatted < <(git ls-files -z --cached --others --exclude-standard -- '*.go' | xargs -0 -r gofmt -l)
if [ ${#unformatted[@]} -gt 0 ]; then
  echo "not gofmt-formatted (make fmt rewrites them):"
  printf '  %s\n' "${unformatted[@]}"
  failed+=(gofmt)
fi

step "go vet ./..., go vet -tags e2e ./test/... and go vet -tags faults ./test/..."
go vet ./... || failed+=("go vet")
go vet -tags e2e ./test/... || failed+=("go vet -tags e2e")
go vet -tags faults ./test/... || failed+=("go vet -tags faults")

step "golangci-lint run"
# golangci-lint's shared cache (~/.cache/golangci-lint) replays issues found in other checkouts
# with their paths: after one was deleted, a clean clone failed on a generated file of another
# directory. Each clone lints with a cache of its own.
GOLANGCI_LINT_CACHE=${GOLANGCI_LINT_CACHE:-$PWD/bin/.golangci-lint-cache} "$GOLANGCI_LINT" run || failed+=(golangci-lint)

step "generated files up to date (git diff after make manifests generate helm-docs)"
if ! git diff --exit-code --stat; then
  echo "these files differ from the index after regenerating (or were edited and not committed):"
  git diff --name-only | sed 's/^/  /'
  echo "run make manifests generate helm-docs and commit the result"
  failed+=("generated files")
fi
# The generators write under api/, config/ and charts/: a file there that git does not know is
# new generated output that was never committed.
mapfile -t untracked < <(git ls-files --others --exclude-standard -- api config charts)
if [ ${#untracked[@]} -gt 0 ]; then
  echo "untracked files under api/, config/ or charts/ (generated and not committed?):"
  printf '  %s\n' "${untracked[@]}"
  failed+=("untracked generated files")
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '\nverify: FAILED:'
  printf ' [%s]' "${failed[@]}"
  printf '\n'
  exit 1
fi
printf '\nverify: ok\n'
