package converter

import (
	"errors"
	"io"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
)

// problemReasons are the contract reasons of docformat's refusals. An empty file is a damaged
// document: something went wrong when it was written or uploaded.
var problemReasons = map[docformat.Problem]string{
	docformat.Empty:       contract.ReasonCorrupt,
	docformat.Unsupported: contract.ReasonUnsupportedFormat,
	docformat.Corrupt:     contract.ReasonCorrupt,
	docformat.TooLarge:    contract.ReasonTooLarge,
}

// detect determines the real format of the input from its content (docformat.Detect). It fails
// with a permanent *Error: Corrupt for an empty file or a damaged container, UnsupportedFormat
// for anything that is not an office format we convert (naming what it is instead).
func detect(r io.ReaderAt, size int64) (docformat.Detection, error) {
	det, err := docformat.Detect(r, size)
	if err != nil {
		return docformat.Detection{}, refusal(err)
	}
	return det, nil
}

// refusal turns a docformat refusal into a permanent *Error with its reason; other errors pass.
func refusal(err error) error {
	var de *docformat.Error
	if errors.As(err, &de) {
		return permanent(problemReasons[de.Problem], de.Err, "%s", de.Message)
	}
	return err
}
