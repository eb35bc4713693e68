package converter

import "github.com/kubexport/kubexport/internal/docformat"

// Family is the LibreOffice application that opens a format; docformat's table gives each
// format its family. The names stay here for the export options, which choose by family.
type Family = docformat.Family

// Families.
const (
	FamilyUnknown = docformat.FamilyUnknown
	FamilyImpress = docformat.FamilyImpress
	FamilyWriter  = docformat.FamilyWriter
	FamilyCalc    = docformat.FamilyCalc
)
