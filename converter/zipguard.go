package converter

import (
	"archive/zip"
	"fmt"
	"io"

	"github.com/kubexport/kubexport/internal/contract"
)

// ZipLimits bound what a ZIP-based input may expand to before LibreOffice sees it.
type ZipLimits struct {
	// MaxEntries caps the number of entries in the archive.
	MaxEntries int
	// MaxUncompressedBytes caps the sum of the entries' uncompressed sizes.
	MaxUncompressedBytes int64
	// MaxRatio caps an entry's uncompressed/compressed ratio, checked for entries of at least
	// RatioMinBytes uncompressed (tiny entries compress absurdly well and harm nobody).
	MaxRatio      float64
	RatioMinBytes int64
}

// DefaultZipLimits are generous for real documents (a 300-slide deck has a few thousand entries
// and compresses XML 5–20×) and stop zip bombs, whose ratio is in the hundreds or thousands.
func DefaultZipLimits() ZipLimits {
	return ZipLimits{
		MaxEntries:           10000,
		MaxUncompressedBytes: 512 << 20,
		MaxRatio:             200,
		RatioMinBytes:        1 << 20,
	}
}

// CheckZipLimits checks the central directory's declared sizes against the limits. It fails with
// TooLarge. The declared sizes are binding: VerifyZipEntries fails an entry that inflates beyond
// its declared size.
func CheckZipLimits(files []*zip.File, l ZipLimits) error {
	if len(files) > l.MaxEntries {
		return permanent(contract.ReasonTooLarge, nil, "the archive has %d entries, more than the limit of %d", len(files), l.MaxEntries)
	}
	var total uint64
	for _, f := range files {
		size := f.UncompressedSize64
		if size > uint64(l.MaxUncompressedBytes) || total+size > uint64(l.MaxUncompressedBytes) {
			return permanent(contract.ReasonTooLarge, nil, "the archive expands to more than the limit of %d bytes", l.MaxUncompressedBytes)
		}
		total += size
		if size >= uint64(l.RatioMinBytes) {
			ratio := float64(size) / float64(max(f.CompressedSize64, 1))
			if ratio > l.MaxRatio {
				return permanent(contract.ReasonTooLarge, nil, "the archive entry %q expands %.0f-fold, more than the limit of %.0f", f.Name, ratio, l.MaxRatio)
			}
		}
	}
	return nil
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
