package converter

// Format is a document format the converter recognises by content.
type Format string

// Formats the converter converts. The value is also the file extension LibreOffice gets, so its
// own type detection agrees with ours whatever the user named the file.
const (
	FormatPPTX Format = "pptx"
	FormatPPTM Format = "pptm"
	FormatPPSX Format = "ppsx"
	FormatPPSM Format = "ppsm"
	FormatPOTX Format = "potx"
	FormatPOTM Format = "potm"
	FormatPPT  Format = "ppt"
	FormatODP  Format = "odp"
	FormatOTP  Format = "otp"
	FormatDOCX Format = "docx"
	FormatDOCM Format = "docm"
	FormatDOTX Format = "dotx"
	FormatDOC  Format = "doc"
	FormatODT  Format = "odt"
	FormatOTT  Format = "ott"
	FormatRTF  Format = "rtf"
	FormatXLSX Format = "xlsx"
	FormatXLSM Format = "xlsm"
	FormatXLTX Format = "xltx"
	FormatXLS  Format = "xls"
	FormatODS  Format = "ods"
	FormatOTS  Format = "ots"
)

// Family is the LibreOffice application that opens a format; it selects the PDF export filter.
type Family int

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

// Family returns the application family of the format.
func (f Format) Family() Family {
	switch f {
	case FormatPPTX, FormatPPTM, FormatPPSX, FormatPPSM, FormatPOTX, FormatPOTM, FormatPPT, FormatODP, FormatOTP:
		return FamilyImpress
	case FormatDOCX, FormatDOCM, FormatDOTX, FormatDOC, FormatODT, FormatOTT, FormatRTF:
		return FamilyWriter
	case FormatXLSX, FormatXLSM, FormatXLTX, FormatXLS, FormatODS, FormatOTS:
		return FamilyCalc
	default:
		return FamilyUnknown
	}
}

// IsZip reports whether the format is a ZIP package (OOXML or ODF), which the ZIP guards check.
func (f Format) IsZip() bool {
	switch f {
	case FormatPPT, FormatDOC, FormatXLS, FormatRTF:
		return false
	default:
		return f.Family() != FamilyUnknown
	}
}
