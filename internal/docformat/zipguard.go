package docformat

import (
	"archive/zip"
	"fmt"
)

// ZipLimits bound what a ZIP-based document may expand to. The upload service checks them on the
// stored upload's central directory and the converter again before LibreOffice sees the file.
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

// CheckZipLimits checks the central directory's declared sizes against the limits. It refuses
// with an *Error of Problem TooLarge. The declared sizes are binding: archive/zip fails an entry
// that inflates beyond its declared size, so whoever extracts must read through archive/zip.
func CheckZipLimits(files []*zip.File, l ZipLimits) error {
	if len(files) > l.MaxEntries {
		return tooLarge("the archive has %d entries, more than the limit of %d", len(files), l.MaxEntries)
	}
	var total uint64
	for _, f := range files {
		size := f.UncompressedSize64
		if size > uint64(l.MaxUncompressedBytes) || total+size > uint64(l.MaxUncompressedBytes) {
			return tooLarge("the archive expands to more than the limit of %d bytes", l.MaxUncompressedBytes)
		}
		total += size
		if size >= uint64(l.RatioMinBytes) {
			ratio := float64(size) / float64(max(f.CompressedSize64, 1))
			if ratio > l.MaxRatio {
				return tooLarge("the archive entry %q expands %.0f-fold, more than the limit of %.0f", f.Name, ratio, l.MaxRatio)
			}
		}
	}
	return nil
}

// tooLarge refuses an archive that expands beyond the limits.
func tooLarge(format string, args ...any) *Error {
	return &Error{Problem: TooLarge, Message: fmt.Sprintf(format, args...)}
}
