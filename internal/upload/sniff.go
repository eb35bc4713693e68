package upload

import (
	"errors"
	"net/http"

	"github.com/kubexport/kubexport/internal/docformat"
)

// sniffLen is how much of an upload is read before anything is stored.
const sniffLen = docformat.SniffLen

// acceptedTypesText is what the 415 message offers instead.
const acceptedTypesText = "Upload a PowerPoint (.pptx, .ppsx, .pptm, .ppt), Word (.docx, .doc, .rtf), Excel (.xlsx, .xls) or OpenDocument (.odp, .odt, .ods) file."

// Sniff decides from the first bytes of an upload (up to sniffLen; fewer for a short file)
// whether it can be an office document the converter handles, with the rules the converter
// detects formats by (docformat). It is a cheap first gate: it refuses what is certainly
// something else (a PDF, an image, text, a plain ZIP archive, an EPUB) with a 415 *Error naming
// what it is, and an empty file with a 400. The converter still inspects the whole document and
// reports a damaged or disguised one as a failed export.
func Sniff(head []byte) (docformat.Kind, error) {
	kind, err := docformat.Sniff(head)
	var de *docformat.Error
	switch {
	case err == nil:
		return kind, nil
	case errors.As(err, &de) && de.Problem == docformat.Empty:
		return "", newError(http.StatusBadRequest, "empty_file", "The file is empty. Choose the document again and upload it.")
	case errors.As(err, &de) && de.Problem == docformat.Unsupported:
		return "", newError(http.StatusUnsupportedMediaType, codeUnsupportedType,
			"The file is %s, not an office document we convert. %s", de.Detected, acceptedTypesText).with("detected", de.Detected)
	default: // Sniff sees too little to call anything corrupt; should it start to, that is a 500.
		return "", err
	}
}
