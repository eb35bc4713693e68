// Package rulecases is the one table of valid and invalid ExportJob option values that every
// place validating them is tested with: the API server (the CRD's schema, through envtest), the
// rules of api/v1alpha1/validation, the upload service's form parsing and the converter's
// options. Expected outcomes are written by hand from the documented field rules.
package rulecases

import "strings"

// Field names, as in the ExportJob's spec and the upload form.
const (
	PageRange          = "pageRange"
	PDFA               = "pdfA"
	MaxImageResolution = "maxImageResolution"
	Quality            = "quality"
	TimeoutSeconds     = "timeoutSeconds"
	Retries            = "retries"
)

// Case is one value of one field and whether the API accepts it.
type Case struct {
	Field string
	Value string
	Valid bool
}

// Cases lists canonical values only (no blanks, exact letter case): the upload form's
// leniency (spaces in page ranges, "pdf/a-2b", "none") is tested by the upload service itself.
// Zero is absent from the numeric fields because the converter's options use it for "unset".
var Cases = []Case{
	{PageRange, "1", true},
	{PageRange, "1-3,5", true},
	{PageRange, "2-2", true},
	{PageRange, "10-20,30-40", true},
	{PageRange, "999999", true},
	{PageRange, strings.Repeat("1,", 127) + "10", true}, // 256 characters: the maximum
	{PageRange, strings.Repeat("1,", 128) + "1", false}, // 257 characters
	{PageRange, "0", false},
	{PageRange, "01", false},
	{PageRange, "1000000", false},
	{PageRange, "1-", false},
	{PageRange, "-3", false},
	{PageRange, "3-1", false},
	{PageRange, "1-3,5-4", false},
	{PageRange, "1,,2", false},
	{PageRange, "1.5", false},
	{PageRange, "1;2", false},
	{PageRange, "a", false},
	{PageRange, "1-2-3", false},

	{PDFA, "PDF/A-1b", true},
	{PDFA, "PDF/A-2b", true},
	{PDFA, "PDF/A-3b", true},
	{PDFA, "PDF/A-1a", false},
	{PDFA, "PDF/A-4b", false},
	{PDFA, "PDFA-1b", false},
	{PDFA, "2b", false},

	{MaxImageResolution, "75", true},
	{MaxImageResolution, "150", true},
	{MaxImageResolution, "300", true},
	{MaxImageResolution, "600", true},
	{MaxImageResolution, "1200", true},
	{MaxImageResolution, "50", false},
	{MaxImageResolution, "100", false},
	{MaxImageResolution, "2400", false},
	{MaxImageResolution, "-75", false},

	{Quality, "1", true},
	{Quality, "90", true},
	{Quality, "100", true},
	{Quality, "101", false},
	{Quality, "-1", false},

	{TimeoutSeconds, "10", true},
	{TimeoutSeconds, "86400", true},
	{TimeoutSeconds, "9", false},
	{TimeoutSeconds, "86401", false},

	{Retries, "0", true},
	{Retries, "10", true},
	{Retries, "11", false},
	{Retries, "-1", false},
}

// For returns the cases of the given fields.
func For(fields ...string) []Case {
	var out []Case
	for _, c := range Cases {
		for _, f := range fields {
			if c.Field == f {
				out = append(out, c)
			}
		}
	}
	return out
}
