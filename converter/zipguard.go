package converter

import (
	"archive/zip"
	"fmt"
	"io"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
)

// ZipLimits bound what a ZIP-based input may expand to before LibreOffice sees it. They are
// docformat's, so the upload service refuses a zip bomb by the same rule before storing it.
type ZipLimits = docformat.ZipLimits

// DefaultZipLimits are docformat's defaults.
func DefaultZipLimits() ZipLimits { return docformat.DefaultZipLimits() }

// CheckZipLimits checks the central directory's declared sizes against the limits
// (docformat.CheckZipLimits). It fails with TooLarge. The declared sizes are binding:
// VerifyZipEntries fails an entry that inflates beyond its declared size.
func CheckZipLimits(files []*zip.File, l ZipLimits) error {
	return refusal(docformat.CheckZipLimits(files, l))
}

// VerifyZipEntries decompresses every entry, checking its CRC-32 and that it inflates to exactly
// its declared size (archive/zip enforces both). A failure is Corrupt.
func VerifyZipEntries(files []*zip.File) error {
	buf := make([]byte, 64<<10)
	for _, f := range files {
		if err := verifyZipEntry(f, buf); err != nil {
			return err
		}
	}
	return nil
}

func verifyZipEntry(f *zip.File, buf []byte) error {
	if f.FileInfo().IsDir() {
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		return permanent(contract.ReasonCorrupt, err, "the archive entry %q cannot be opened", f.Name)
	}
	defer rc.Close()
	if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
		return permanent(contract.ReasonCorrupt, fmt.Errorf("inflating %q: %w", f.Name, err), "the archive entry %q is damaged", f.Name)
	}
	return nil
}
