// Package validation holds the syntaxes and value sets of ExportJob fields that code outside the
// API server checks too: the upload service (before it stores anything) and the converter (for
// its command line and as a last guard in Job mode). It is the one Go definition of each rule;
// the CRD's markers in api/v1alpha1 state the same rules for the API server, and
// TestRulesAgreeWithTheAPIServer feeds one table to both.
//
// It imports only the standard library, so the converter can use it without linking
// Kubernetes' API types.
package validation

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Page ranges (spec.options.pageRange): comma-separated pages and ranges counted from 1, each
// range from a lower to a higher page, at most six digits per page.
const (
	// PageRangeMaxLength is the CRD's MaxLength of spec.options.pageRange.
	PageRangeMaxLength = 256
	// PageRangePattern is the CRD's Pattern of spec.options.pageRange.
	PageRangePattern = `^[1-9][0-9]{0,5}(-[1-9][0-9]{0,5})?(,[1-9][0-9]{0,5}(-[1-9][0-9]{0,5})?)*$`
)

var pageRangeRE = regexp.MustCompile(PageRangePattern)

// NormalizePageRange removes the blanks people type between pages ("1 - 3, 5" is "1-3,5").
// Validate the result with PageRange.
func NormalizePageRange(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// PageRange checks s (already normalised) against spec.options.pageRange's schema: length,
// pattern, and each range running from a lower to a higher page (the CRD's CEL rule).
func PageRange(s string) error {
	if len(s) > PageRangeMaxLength {
		return fmt.Errorf("pageRange is longer than %d characters", PageRangeMaxLength)
	}
	if !pageRangeRE.MatchString(s) {
		return fmt.Errorf("pageRange %q is not a list of pages and ranges counted from 1, such as \"1-3,5\"", s)
	}
	for r := range strings.SplitSeq(s, ",") {
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			continue
		}
		a, _ := strconv.Atoi(lo) // the pattern admits at most six digits
		b, _ := strconv.Atoi(hi)
		if a > b {
			return fmt.Errorf("pageRange %q: each range must run from a lower to a higher page, as in \"1-3,5\"", s)
		}
	}
	return nil
}

// PDF/A conformance levels (spec.options.pdfA, the CRD's Enum of PDFAVersion).
const (
	PDFA1b = "PDF/A-1b"
	PDFA2b = "PDF/A-2b"
	PDFA3b = "PDF/A-3b"
)

// PDFALevels lists the PDF/A levels in order.
var PDFALevels = []string{PDFA1b, PDFA2b, PDFA3b}

// PDFALevel checks a PDF/A level; the empty string (a regular PDF) is not a level.
func PDFALevel(s string) error {
	if slices.Contains(PDFALevels, s) {
		return nil
	}
	return fmt.Errorf("pdfA must be %s, not %q", orList(PDFALevels), s)
}

// MaxImageResolutions are the values of spec.options.maxImageResolution, in DPI (the CRD's Enum).
var MaxImageResolutions = []int32{75, 150, 300, 600, 1200}

// MaxImageResolution checks a maxImageResolution value.
func MaxImageResolution(dpi int32) error {
	if slices.Contains(MaxImageResolutions, dpi) {
		return nil
	}
	vals := make([]string, len(MaxImageResolutions))
	for i, v := range MaxImageResolutions {
		vals[i] = strconv.Itoa(int(v))
	}
	return fmt.Errorf("maxImageResolution must be one of %s (DPI), not %d", orList(vals), dpi)
}

// Bounds of the numeric fields (the CRD's Minimum and Maximum).
const (
	MinQuality        = 1
	MaxQuality        = 100
	MinTimeoutSeconds = 10
	MaxTimeoutSeconds = 86400
	MinRetries        = 0
	MaxRetries        = 10
)

// Quality checks spec.options.quality.
func Quality(q int32) error {
	return inRange("quality", q, MinQuality, MaxQuality)
}

// TimeoutSeconds checks spec.timeoutSeconds.
func TimeoutSeconds(s int32) error {
	return inRange("timeoutSeconds", s, MinTimeoutSeconds, MaxTimeoutSeconds)
}

// Retries checks spec.retries.
func Retries(n int32) error {
	return inRange("retries", n, MinRetries, MaxRetries)
}

func inRange(field string, v, lo, hi int32) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s must be a whole number from %d to %d, not %d", field, lo, hi, v)
	}
	return nil
}

// orList joins values as "a, b or c".
func orList(vals []string) string {
	if len(vals) < 2 {
		return strings.Join(vals, "")
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}
