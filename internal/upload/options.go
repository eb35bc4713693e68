package upload

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/api/v1alpha1/validation"
)

// Form fields of an upload besides the file.
const (
	fieldFile               = "file"
	fieldPageRange          = "pageRange"
	fieldPDFA               = "pdfA"
	fieldExportNotes        = "exportNotes"
	fieldExportHiddenSlides = "exportHiddenSlides"
	fieldTimeoutSeconds     = "timeoutSeconds"
	fieldQuality            = "quality"
	fieldMaxImageResolution = "maxImageResolution"
)

// maxFieldBytes bounds one option value.
const maxFieldBytes = 1024

// optionFields lists the accepted option fields, for error messages.
var optionFields = []string{fieldPageRange, fieldPDFA, fieldExportNotes, fieldExportHiddenSlides,
	fieldTimeoutSeconds, fieldQuality, fieldMaxImageResolution}

// Options are the conversion options an upload asked for.
type Options struct {
	// Conversion becomes spec.options; nil when no option was given.
	Conversion *v1alpha1.ConversionOptions
	// TimeoutSeconds becomes spec.timeoutSeconds; nil keeps the ExportJob's default.
	TimeoutSeconds *int32
}

// optionForm collects option fields as they arrive, in any order, each validated on arrival so a
// bad option is refused before the file is stored when it precedes the file part.
type optionForm struct {
	seen map[string]bool
	opts v1alpha1.ConversionOptions
	set  bool
	tmo  *int32
}

// add validates one field and records it. Errors are *Error with status 400.
func (f *optionForm) add(name, value string) error {
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	if f.seen[name] {
		return invalidOption("the field %q appears twice; send each option once", name)
	}
	f.seen[name] = true
	value = strings.TrimSpace(value)
	if value == "" {
		return nil // an empty form control means "not set"
	}
	switch name {
	case fieldPageRange:
		pr, err := parsePageRange(value)
		if err != nil {
			return err
		}
		f.opts.PageRange, f.set = pr, true
	case fieldPDFA:
		v, err := parsePDFA(value)
		if err != nil {
			return err
		}
		if v != "" {
			f.opts.PDFA, f.set = v, true
		}
	case fieldExportNotes, fieldExportHiddenSlides:
		b, err := parseFormBool(name, value)
		if err != nil {
			return err
		}
		if name == fieldExportNotes {
			f.opts.ExportNotes = b
		} else {
			f.opts.ExportHiddenSlides = b
		}
		f.set = f.set || b
	case fieldTimeoutSeconds:
		n, err := parseIntField(name, value, validation.TimeoutSeconds)
		if err != nil {
			return err
		}
		f.tmo = ptr.To(n)
	case fieldQuality:
		n, err := parseIntField(name, value, validation.Quality)
		if err != nil {
			return err
		}
		f.opts.Quality, f.set = ptr.To(n), true
	case fieldMaxImageResolution:
		n, err := parseIntField(name, value, validation.MaxImageResolution)
		if err != nil {
			return err
		}
		f.opts.MaxImageResolution, f.set = ptr.To(n), true
	default:
		known := slices.Sorted(slices.Values(optionFields))
		return invalidOption("unknown form field %q; the document goes in %q and the options are %s",
			name, fieldFile, strings.Join(known, ", "))
	}
	return nil
}

// options returns what the form asked for.
func (f *optionForm) options() Options {
	o := Options{TimeoutSeconds: f.tmo}
	if f.set {
		c := f.opts
		o.Conversion = &c
	}
	return o
}

func invalidOption(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, codeInvalidOptions, format, args...)
}

// parsePageRange checks a page range with the ExportJob schema's rule, so a bad range is refused
// before anything is stored. Blanks are ignored.
func parsePageRange(s string) (string, error) {
	s = validation.NormalizePageRange(s)
	if err := validation.PageRange(s); err != nil {
		return "", invalidOption("%v", err)
	}
	return s, nil
}

// parsePDFA accepts the conformance levels in any letter case, and "none"/"off" for a regular PDF.
func parsePDFA(s string) (v1alpha1.PDFAVersion, error) {
	switch strings.ToLower(s) {
	case "none", "off", "false", "no":
		return "", nil
	}
	for _, v := range validation.PDFALevels {
		if strings.EqualFold(s, v) {
			return v1alpha1.PDFAVersion(v), nil
		}
	}
	return "", invalidOption("%v (or none)", validation.PDFALevel(s))
}

// parseFormBool accepts what HTML checkboxes and API clients send.
func parseFormBool(name, s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, invalidOption("%s must be true or false, not %q", name, s)
}

// parseIntField parses a whole number and checks it with the field's rule.
func parseIntField(name, s string, rule func(int32) error) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, invalidOption("%s must be a whole number, not %q", name, s)
	}
	if err := rule(int32(n)); err != nil {
		return 0, invalidOption("%v", err)
	}
	return int32(n), nil
}
