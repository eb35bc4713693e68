// Package charts holds the tests of the Helm charts in this directory (charts/kubexport). They
// run the real helm and kustomize binaries (bin/helm and bin/kustomize, which `make test`
// installs; $HELM and $KUSTOMIZE override the paths): `helm lint`, `helm template` against golden
// files for the value sets of testdata/values (go test ./charts/ -update rewrites them), the
// schema's rejections, and the comparison with `kustomize build config/default` that keeps the
// chart and config/ in step.
//
// The package has no code outside its tests.
package charts
