// Package docformat identifies office documents by their content. It holds the one table of
// the formats kubexport converts and of how each is recognised — magic numbers, OpenDocument
// mimetypes, Office Open XML main-part content types — and the words used for anything else.
//
// The upload service checks an upload's first bytes with Sniff before storing anything; the
// converter inspects the whole file with Detect before LibreOffice sees it. Both read the same
// tables, so they agree on what an office document is. The package imports only the standard
// library, so neither binary pulls in the other's dependencies through it.
package docformat

// Format is a document format recognised by content.
type Format string

// Formats we convert. The value is also the file extension LibreOffice gets, so its own type
// detection agrees with ours whatever the user named the file.
const (
	PPTX Format = "pptx"
	PPTM Format = "pptm"
	PPSX Format = "ppsx"
	PPSM Format = "ppsm"
	POTX Format = "potx"
	POTM Format = "potm"
	PPT  Format = "ppt"
	ODP  Format = "odp"
	OTP  Format = "otp"
	DOCX Format = "docx"
	DOCM Format = "docm"
	DOTX Format = "dotx"
	DOC  Format = "doc"
	ODT  Format = "odt"
	OTT  Format = "ott"
	RTF  Format = "rtf"
	XLSX Format = "xlsx"
	XLSM Format = "xlsm"
	XLTX Format = "xltx"
	XLS  Format = "xls"
	ODS  Format = "ods"
	OTS  Format = "ots"
)

// Kind is the container a document comes in, which its first bytes show.
type Kind string

// Kinds, as the upload service records them (upload.kubexport.io/kind).
const (
	// KindOOXML is an Office Open XML package (.pptx, .ppsx, .pptm, .docx, .xlsx, ...).
	KindOOXML Kind = "ooxml"
	// KindODF is an OpenDocument package (.odp, .odt, .ods and templates).
	KindODF Kind = "odf"
	// KindOLE is a legacy binary Office file (.ppt, .doc, .xls) or an encrypted OOXML package.
	KindOLE Kind = "ole"
	// KindRTF is a Rich Text Format document.
	KindRTF Kind = "rtf"
)

// Family is the LibreOffice application that opens a format; it selects the PDF export filter.
type Family int

// Families.
const (
	FamilyUnknown Family = iota
	FamilyImpress
	FamilyWriter
	FamilyCalc
)

func (f Family) String() string {
	switch f {
	case FamilyImpress:
		return "presentation"
	case FamilyWriter:
		return "text document"
	case FamilyCalc:
		return "spreadsheet"
	default:
		return "unknown"
	}
}

// ExportFilter is the name of LibreOffice's PDF export filter for the family.
func (f Family) ExportFilter() string {
	switch f {
	case FamilyImpress:
		return "impress_pdf_Export"
	case FamilyWriter:
		return "writer_pdf_Export"
	case FamilyCalc:
		return "calc_pdf_Export"
	default:
		return "pdf_Export"
	}
}

// formatInfo is what the table knows about a format.
type formatInfo struct {
	kind   Kind
	family Family
	// mediaType identifies a package: the content of an ODF package's mimetype entry, or the
	// content type [Content_Types].xml gives an OOXML package's main part. Empty for OLE and RTF,
	// which are told apart by their streams or magic number.
	mediaType string
}

// formats is the table of every format we convert.
var formats = map[Format]formatInfo{
	PPTX: {KindOOXML, FamilyImpress, "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"},
	PPTM: {KindOOXML, FamilyImpress, "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"},
	PPSX: {KindOOXML, FamilyImpress, "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml"},
	PPSM: {KindOOXML, FamilyImpress, "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml"},
	POTX: {KindOOXML, FamilyImpress, "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml"},
	POTM: {KindOOXML, FamilyImpress, "application/vnd.ms-powerpoint.template.macroEnabled.main+xml"},
	PPT:  {KindOLE, FamilyImpress, ""},
	ODP:  {KindODF, FamilyImpress, "application/vnd.oasis.opendocument.presentation"},
	OTP:  {KindODF, FamilyImpress, "application/vnd.oasis.opendocument.presentation-template"},

	DOCX: {KindOOXML, FamilyWriter, "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"},
	DOCM: {KindOOXML, FamilyWriter, "application/vnd.ms-word.document.macroEnabled.main+xml"},
	DOTX: {KindOOXML, FamilyWriter, "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml"},
	DOC:  {KindOLE, FamilyWriter, ""},
	ODT:  {KindODF, FamilyWriter, "application/vnd.oasis.opendocument.text"},
	OTT:  {KindODF, FamilyWriter, "application/vnd.oasis.opendocument.text-template"},
	RTF:  {KindRTF, FamilyWriter, ""},

	XLSX: {KindOOXML, FamilyCalc, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"},
	XLSM: {KindOOXML, FamilyCalc, "application/vnd.ms-excel.sheet.macroEnabled.main+xml"},
	XLTX: {KindOOXML, FamilyCalc, "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml"},
	XLS:  {KindOLE, FamilyCalc, ""},
	ODS:  {KindODF, FamilyCalc, "application/vnd.oasis.opendocument.spreadsheet"},
	OTS:  {KindODF, FamilyCalc, "application/vnd.oasis.opendocument.spreadsheet-template"},
}

// Family returns the application family of the format; FamilyUnknown for a format not in the table.
func (f Format) Family() Family { return formats[f].family }

// Kind returns the container of the format; "" for a format not in the table.
func (f Format) Kind() Kind { return formats[f].kind }

// IsZip reports whether the format is a ZIP package (OOXML or ODF), which the ZIP guards check.
func (f Format) IsZip() bool {
	k := f.Kind()
	return k == KindOOXML || k == KindODF
}

// byMediaType indexes the formats of one kind by their media type.
func byMediaType(k Kind) map[string]Format {
	m := map[string]Format{}
	for f, info := range formats {
		if info.kind == k {
			m[info.mediaType] = f
		}
	}
	return m
}

var (
	// odfMimetypes maps an ODF mimetype entry to its format.
	odfMimetypes = byMediaType(KindODF)
	// ooxmlContentTypes maps an OOXML main part's content type to its format.
	ooxmlContentTypes = byMediaType(KindOOXML)
)

// ooxmlMainParts are the main parts of the three OOXML families, with the format to assume when
// [Content_Types].xml does not name the part's content type.
var ooxmlMainParts = []struct {
	name     string
	fallback Format
}{
	{"ppt/presentation.xml", PPTX},
	{"word/document.xml", DOCX},
	{"xl/workbook.xml", XLSX},
}
