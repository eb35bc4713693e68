package converter

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// PDFInfo is what the converter reads back from a PDF it produced.
type PDFInfo struct {
	// Pages is the number of pages in the page tree.
	Pages int
	// PDFAPart is the PDF/A part the XMP metadata claims (pdfaid:part), 0 if none.
	PDFAPart int
	// PDFAConformance is the claimed conformance level (pdfaid:conformance), e.g. "B".
	PDFAConformance string
}

var disablePDFCPUConfig sync.Once

// InspectPDF parses and validates (relaxed) a PDF file and returns its page count and PDF/A
// claim. Any failure means the file is not a usable PDF.
func InspectPDF(name string) (PDFInfo, error) {
	// pdfcpu would otherwise create a configuration directory under $HOME.
	disablePDFCPUConfig.Do(api.DisableConfigDir)

	f, err := os.Open(name)
	if err != nil {
		return PDFInfo{}, fmt.Errorf("opening PDF: %w", err)
	}
	defer f.Close()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := api.ReadAndValidate(f, conf)
	if err != nil {
		return PDFInfo{}, fmt.Errorf("parsing PDF: %w", err)
	}
	if err := ctx.EnsurePageCount(); err != nil {
		return PDFInfo{}, fmt.Errorf("counting PDF pages: %w", err)
	}
	info := PDFInfo{Pages: ctx.PageCount}
	xmp, err := catalogMetadata(ctx)
	if err != nil {
		return PDFInfo{}, err
	}
	info.PDFAPart, info.PDFAConformance = pdfaClaim(xmp)
	return info, nil
}

// catalogMetadata returns the decoded XMP metadata stream of the document catalog, nil if none.
func catalogMetadata(ctx *model.Context) ([]byte, error) {
	cat, err := ctx.Catalog()
	if err != nil {
		return nil, fmt.Errorf("reading PDF catalog: %w", err)
	}
	obj, ok := cat.Find("Metadata")
	if !ok || obj == nil {
		return nil, nil
	}
	sd, _, err := ctx.DereferenceStreamDict(obj)
	if err != nil {
		return nil, fmt.Errorf("reading PDF metadata: %w", err)
	}
	if sd == nil {
		return nil, errors.New("reading PDF metadata: /Metadata is not a stream")
	}
	if err := sd.Decode(); err != nil {
		return nil, fmt.Errorf("decoding PDF metadata: %w", err)
	}
	return sd.Content, nil
}

var (
	pdfaPartRE        = regexp.MustCompile(`pdfaid:part(?:>\s*|\s*=\s*["'])([1-4])`)
	pdfaConformanceRE = regexp.MustCompile(`pdfaid:conformance(?:>\s*|\s*=\s*["'])([ABUabu])`)
)

// pdfaClaim extracts pdfaid:part and pdfaid:conformance from XMP, in element or attribute form.
func pdfaClaim(xmp []byte) (int, string) {
	m := pdfaPartRE.FindSubmatch(xmp)
	if m == nil {
		return 0, ""
	}
	part, _ := strconv.Atoi(string(m[1]))
	conf := ""
	if c := pdfaConformanceRE.FindSubmatch(xmp); c != nil {
		conf = string(c[1])
	}
	return part, conf
}
