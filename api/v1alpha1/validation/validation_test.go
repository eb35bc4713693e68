package validation_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/api/v1alpha1/validation"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/repo"
	"github.com/kubexport/kubexport/internal/testutil/rulecases"
)

var api *testenv.APIServer

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	var err error
	if api, err = testenv.StartAPIServer("validation"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	code := m.Run()
	api.Stop()
	os.Exit(code)
}

// goRule is the Go definition of each field's rule.
func goRule(t *testing.T, c rulecases.Case) error {
	t.Helper()
	switch c.Field {
	case rulecases.PageRange:
		return validation.PageRange(c.Value)
	case rulecases.PDFA:
		return validation.PDFALevel(c.Value)
	}
	n, err := strconv.ParseInt(c.Value, 10, 32)
	if err != nil {
		t.Fatalf("case %s=%q: not a number", c.Field, c.Value)
	}
	switch c.Field {
	case rulecases.MaxImageResolution:
		return validation.MaxImageResolution(int32(n))
	case rulecases.Quality:
		return validation.Quality(int32(n))
	case rulecases.TimeoutSeconds:
		return validation.TimeoutSeconds(int32(n))
	case rulecases.Retries:
		return validation.Retries(int32(n))
	}
	t.Fatalf("no rule for field %q", c.Field)
	return nil
}

func TestRules(t *testing.T) {
	for _, c := range rulecases.Cases {
		t.Run(c.Field+"="+c.Value, func(t *testing.T) {
			err := goRule(t, c)
			if c.Valid && err != nil {
				t.Errorf("rejected a valid value: %v", err)
			}
			if !c.Valid && err == nil {
				t.Error("accepted an invalid value")
			}
		})
	}
}

func TestNormalizePageRange(t *testing.T) {
	for in, want := range map[string]string{"1 - 3, 5": "1-3,5", " 7 ": "7", "\t2,\n4": "2,4", "": ""} {
		if got := validation.NormalizePageRange(in); got != want {
			t.Errorf("NormalizePageRange(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessages(t *testing.T) {
	for err, want := range map[error]string{
		validation.PageRange("3-1"):       `pageRange "3-1": each range must run from a lower to a higher page, as in "1-3,5"`,
		validation.PageRange("x"):         `pageRange "x" is not a list of pages and ranges counted from 1, such as "1-3,5"`,
		validation.PDFALevel("PDF/A-4"):   `pdfA must be PDF/A-1b, PDF/A-2b or PDF/A-3b, not "PDF/A-4"`,
		validation.MaxImageResolution(50): `maxImageResolution must be one of 75, 150, 300, 600 or 1200 (DPI), not 50`,
		validation.Quality(101):           `quality must be a whole number from 1 to 100, not 101`,
		validation.TimeoutSeconds(5):      `timeoutSeconds must be a whole number from 10 to 86400, not 5`,
		validation.Retries(11):            `retries must be a whole number from 0 to 10, not 11`,
	} {
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// apiObject is an ExportJob with one field of c set.
func apiObject(t *testing.T, ns string, i int, c rulecases.Case) *v1alpha1.ExportJob {
	ej := &v1alpha1.ExportJob{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rule-%d", i), Namespace: ns},
		Spec:       v1alpha1.ExportJobSpec{Source: v1alpha1.SourceSpec{Key: "uploads/deck.pptx"}},
	}
	num := func() *int32 {
		n, err := strconv.ParseInt(c.Value, 10, 32)
		if err != nil {
			t.Fatalf("case %s=%q: not a number", c.Field, c.Value)
		}
		v := int32(n)
		return &v
	}
	switch c.Field {
	case rulecases.PageRange:
		ej.Spec.Options = &v1alpha1.ConversionOptions{PageRange: c.Value}
	case rulecases.PDFA:
		ej.Spec.Options = &v1alpha1.ConversionOptions{PDFA: v1alpha1.PDFAVersion(c.Value)}
	case rulecases.MaxImageResolution:
		ej.Spec.Options = &v1alpha1.ConversionOptions{MaxImageResolution: num()}
	case rulecases.Quality:
		ej.Spec.Options = &v1alpha1.ConversionOptions{Quality: num()}
	case rulecases.TimeoutSeconds:
		ej.Spec.TimeoutSeconds = num()
	case rulecases.Retries:
		ej.Spec.Retries = num()
	default:
		t.Fatalf("no field %q", c.Field)
	}
	return ej
}

// TestRulesAgreeWithTheAPIServer feeds the shared table to the real API server (the CRD's
// pattern, enums, bounds and CEL rules) and to the Go rules: both must give the table's answer.
func TestRulesAgreeWithTheAPIServer(t *testing.T) {
	if api == nil {
		t.Skip("-short: this test needs the envtest API server")
	}
	ns := api.Namespace(t, "v")
	for i, c := range rulecases.Cases {
		t.Run(c.Field+"="+c.Value, func(t *testing.T) {
			err := api.Client.Create(context.Background(), apiObject(t, ns, i, c), client.DryRunAll)
			switch {
			case c.Valid && err != nil:
				t.Errorf("the API server rejected a valid value: %v", err)
			case !c.Valid && err == nil:
				t.Error("the API server accepted an invalid value")
			case !c.Valid && !apierrors.IsInvalid(err):
				t.Errorf("the API server refused for another cause than validation: %v", err)
			}
			if goErr := goRule(t, c); (goErr == nil) != (err == nil) {
				t.Errorf("Go rule and API server disagree: Go %v, API server %v", goErr, err)
			}
		})
	}
}

// TestCRDStatesTheGoConstants reads the generated CRD: its pattern, length, enums and bounds
// are the constants of this package, so a marker edited alone fails here.
func TestCRDStatesTheGoConstants(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo.Root(t), "config", "crd", "bases", "kubexport.io_exportjobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	opts := spec.Properties["options"]
	pr := opts.Properties["pageRange"]
	if pr.Pattern != validation.PageRangePattern {
		t.Errorf("CRD pageRange pattern %q, Go %q", pr.Pattern, validation.PageRangePattern)
	}
	if pr.MaxLength == nil || *pr.MaxLength != validation.PageRangeMaxLength {
		t.Errorf("CRD pageRange maxLength %v, Go %d", pr.MaxLength, validation.PageRangeMaxLength)
	}
	pdfa := make([]string, 0, len(opts.Properties["pdfA"].Enum))
	for _, e := range opts.Properties["pdfA"].Enum {
		var s string
		if err := yaml.Unmarshal(e.Raw, &s); err != nil {
			t.Fatal(err)
		}
		pdfa = append(pdfa, s)
	}
	if !slices.Equal(pdfa, validation.PDFALevels) {
		t.Errorf("CRD pdfA enum %v, Go %v", pdfa, validation.PDFALevels)
	}
	dpi := make([]int32, 0, len(opts.Properties["maxImageResolution"].Enum))
	for _, e := range opts.Properties["maxImageResolution"].Enum {
		var n int32
		if err := yaml.Unmarshal(e.Raw, &n); err != nil {
			t.Fatal(err)
		}
		dpi = append(dpi, n)
	}
	if !slices.Equal(dpi, validation.MaxImageResolutions) {
		t.Errorf("CRD maxImageResolution enum %v, Go %v", dpi, validation.MaxImageResolutions)
	}
	for name, want := range map[string][2]float64{
		"quality":        {validation.MinQuality, validation.MaxQuality},
		"timeoutSeconds": {validation.MinTimeoutSeconds, validation.MaxTimeoutSeconds},
		"retries":        {validation.MinRetries, validation.MaxRetries},
	} {
		p, ok := spec.Properties[name]
		if !ok {
			p = opts.Properties[name]
		}
		if p.Minimum == nil || p.Maximum == nil || *p.Minimum != want[0] || *p.Maximum != want[1] {
			t.Errorf("CRD %s bounds %v..%v, Go %v", name, p.Minimum, p.Maximum, want)
		}
	}
}
