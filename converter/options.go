package converter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kubexport/kubexport/api/v1alpha1/validation"
	"github.com/kubexport/kubexport/internal/contract"
)

// Options are the user's export options. The zero value exports everything with LibreOffice's
// defaults.
type Options struct {
	// PageRange selects pages, e.g. "1-3,5"; empty exports all.
	PageRange string
	// PDFA is "PDF/A-1b", "PDF/A-2b", "PDF/A-3b" or empty for plain PDF.
	PDFA string
	// ExportNotes adds the notes pages of a presentation after its slides (Impress
	// ExportNotesPages); for text documents and spreadsheets it exports comments as PDF notes.
	ExportNotes bool
	// ExportHiddenSlides includes hidden slides of a presentation.
	ExportHiddenSlides bool
	// Quality is the JPEG quality 1..100; 0 keeps LibreOffice's default (90).
	Quality int
	// MaxImageResolution reduces images to this many DPI; 0 keeps their resolution.
	MaxImageResolution int
	// Password opens an encrypted input. Never logged.
	Password string
}

// String describes the options for logs, without the password.
func (o Options) String() string {
	return fmt.Sprintf("pageRange=%q pdfa=%q notes=%t hiddenSlides=%t quality=%d maxImageResolution=%d password=%t",
		o.PageRange, o.PDFA, o.ExportNotes, o.ExportHiddenSlides, o.Quality, o.MaxImageResolution, o.Password != "")
}

// pdfaVersions maps the PDF/A levels (validation.PDFALevels) to LibreOffice's SelectPdfVersion.
var pdfaVersions = map[string]int{
	validation.PDFA1b: 1,
	validation.PDFA2b: 2,
	validation.PDFA3b: 3,
}

// Validate checks the options with the ExportJob's rules (api/v1alpha1/validation) and returns
// them normalised; a failure is InvalidParameters. Zero values mean "unset", as in the API.
func (o Options) Validate() (Options, error) {
	o.PageRange = validation.NormalizePageRange(o.PageRange)
	var errs []error
	if o.PageRange != "" {
		errs = append(errs, validation.PageRange(o.PageRange))
	}
	if o.PDFA != "" {
		errs = append(errs, validation.PDFALevel(o.PDFA))
	}
	if o.Quality != 0 {
		errs = append(errs, validation.Quality(clampInt32(o.Quality)))
	}
	if o.MaxImageResolution != 0 {
		errs = append(errs, validation.MaxImageResolution(clampInt32(o.MaxImageResolution)))
	}
	if err := errors.Join(errs...); err != nil {
		return o, permanent(contract.ReasonInvalidParameters, nil, "%v", err)
	}
	return o, nil
}

// clampInt32 keeps an out-of-range int out of range when narrowed, so it cannot wrap into a
// valid value.
func clampInt32(n int) int32 {
	return int32(min(max(n, math.MinInt32), math.MaxInt32))
}

// filterProp is one property of LibreOffice's PDF export FilterData.
type filterProp struct {
	name, typ, value string
}

// filterProps maps validated options to PDF export filter properties for a document family.
// Property names are LibreOffice's (filter/source/pdf/pdfexport.cxx).
func filterProps(fam Family, o Options) []filterProp {
	var props []filterProp
	if o.PageRange != "" {
		props = append(props, filterProp{"PageRange", "string", o.PageRange})
	}
	if v, ok := pdfaVersions[o.PDFA]; ok {
		props = append(props, filterProp{"SelectPdfVersion", "long", strconv.Itoa(v)})
	}
	if o.ExportNotes {
		if fam == FamilyImpress {
			props = append(props, filterProp{"ExportNotesPages", "boolean", "true"})
		} else {
			props = append(props, filterProp{"ExportNotes", "boolean", "true"})
		}
	}
	if o.ExportHiddenSlides && fam == FamilyImpress {
		props = append(props, filterProp{"ExportHiddenSlides", "boolean", "true"})
	}
	if o.Quality > 0 {
		props = append(props,
			filterProp{"UseLosslessCompression", "boolean", "false"},
			filterProp{"Quality", "long", strconv.Itoa(o.Quality)})
	}
	if o.MaxImageResolution > 0 {
		props = append(props,
			filterProp{"ReduceImageResolution", "boolean", "true"},
			filterProp{"MaxImageResolution", "long", strconv.Itoa(o.MaxImageResolution)})
	}
	return props
}

// FilterOptionsJSON is the PDF export filter's FilterData for a document family as the JSON
// object LibreOfficeKit's saveAs accepts as filter options: {"Name":{"type":"long","value":"2"}}.
// Empty options give "{}" (LibreOffice's defaults).
func FilterOptionsJSON(fam Family, o Options) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range filterProps(fam, o) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s:{"type":%s,"value":%s}`, jsonString(p.name), jsonString(p.typ), jsonString(p.value))
	}
	b.WriteByte('}')
	return b.String()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
