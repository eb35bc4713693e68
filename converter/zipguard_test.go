package converter

import (
	"archive/zip"
	"bytes"
	"testing"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

func TestCheckZipLimits(t *testing.T) {
	limits := ZipLimits{MaxEntries: 3, MaxUncompressedBytes: 1000, MaxRatio: 10, RatioMinBytes: 100}
	file := func(name string, compressed, uncompressed uint64) *zip.File {
		return &zip.File{FileHeader: zip.FileHeader{Name: name, CompressedSize64: compressed, UncompressedSize64: uncompressed}}
	}
	tests := []struct {
		name       string
		files      []*zip.File
		wantReason string
	}{
		{"within limits", []*zip.File{file("a", 50, 400), file("b", 100, 500)}, ""},
		{"too many entries", []*zip.File{file("a", 1, 1), file("b", 1, 1), file("c", 1, 1), file("d", 1, 1)}, contract.ReasonTooLarge},
		{"one huge entry", []*zip.File{file("a", 10, 1<<40)}, contract.ReasonTooLarge},
		{"sum too large", []*zip.File{file("a", 90, 600), file("b", 90, 600)}, contract.ReasonTooLarge},
		{"declared size overflowing the sum", []*zip.File{file("a", 90, 600), file("b", 1, ^uint64(0)-100)}, contract.ReasonTooLarge},
		{"ratio too high", []*zip.File{file("a", 10, 200)}, contract.ReasonTooLarge},
		{"high ratio of a tiny entry is fine", []*zip.File{file("a", 1, 99)}, ""},
		{"stored entry with zero compressed size", []*zip.File{file("a", 0, 150)}, contract.ReasonTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := reasonOf(CheckZipLimits(tc.files, limits)); got != tc.wantReason {
				t.Errorf("CheckZipLimits() reason = %q, want %q", got, tc.wantReason)
			}
		})
	}
}

func TestZipGuardsOnGeneratedArchives(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		wantReason string
	}{
		{"valid deck", docs.PPTX(3), ""},
		{"ratio bomb", docs.RatioBomb(8 << 20), contract.ReasonTooLarge},
		{"many entries", docs.ManyEntries(DefaultZipLimits().MaxEntries + 1), contract.ReasonTooLarge},
		{"huge declared size", docs.HugeDeclaredSize(8 << 30), contract.ReasonTooLarge},
		{"garbage entry", docs.GarbageEntry(docs.PPTX(2), "ppt/slides/slide2.xml"), contract.ReasonCorrupt},
		{"size lie below the limit", docs.HugeDeclaredSize(1000), contract.ReasonCorrupt}, // declares 1000 bytes, inflates to 0
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			zr, err := zip.NewReader(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil {
				t.Fatalf("zip.NewReader() error = %v", err)
			}
			err = CheckZipLimits(zr.File, DefaultZipLimits())
			if err == nil {
				err = VerifyZipEntries(zr.File)
			}
			if got := reasonOf(err); got != tc.wantReason {
				t.Errorf("guards reason = %q (%v), want %q", got, err, tc.wantReason)
			}
		})
	}
}
