package converter

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/kubexport/kubexport/internal/docformat"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// encryptedStreams detects an encrypted OOXML compound file and returns its two streams, read
// from the compound file the detection carries.
func encryptedStreams(t *testing.T, data []byte) (info, pkg []byte) {
	t.Helper()
	det, err := docformat.Detect(bytes.NewReader(data), int64(len(data)))
	if err != nil || !det.EncryptedOOXML {
		t.Fatalf("Detect() = %+v, %v; want an encrypted OOXML package", det, err)
	}
	if info, err = det.OLE.ReadStream(docformat.StreamEncryptionInfo, -1); err != nil {
		t.Fatalf("reading EncryptionInfo: %v", err)
	}
	if pkg, err = det.OLE.ReadStream(docformat.StreamEncryptedPackage, -1); err != nil {
		t.Fatalf("reading EncryptedPackage: %v", err)
	}
	return info, pkg
}

func TestDecryptOOXMLRoundTrip(t *testing.T) {
	for _, size := range []int{0, 5000, 70000} { // empty padding, one mini-stream-sized info, many segments
		plain := docs.Padded(2, size)
		info, pkg := encryptedStreams(t, docs.EncryptOOXML(plain, "pässwörd"))
		got, err := decryptOOXML(info, pkg, "pässwörd")
		if err != nil {
			t.Fatalf("size %d: decryptOOXML() error = %v", size, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("size %d: decrypted %d bytes differ from the %d plain bytes", size, len(got), len(plain))
		}
		if _, err := decryptOOXML(info, pkg, "password"); !errors.Is(err, errWrongPassword) {
			t.Errorf("size %d: decryptOOXML(wrong password) error = %v, want errWrongPassword", size, err)
		}
	}
}

// TestDecryptIndependentFixtures decrypts packages encrypted by another implementation
// (testdata/README.md) and checks the result is the expected OOXML package.
func TestDecryptIndependentFixtures(t *testing.T) {
	tests := []struct {
		file, mainPart string
	}{
		{"testdata/agile-encrypted.pptx", "ppt/presentation.xml"},
		{"testdata/standard-encrypted.docx", "word/document.xml"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			info, pkg := encryptedStreams(t, data)
			if _, err := decryptOOXML(info, pkg, "hunter"); !errors.Is(err, errWrongPassword) {
				t.Errorf("wrong password: error = %v, want errWrongPassword", err)
			}
			plain, err := decryptOOXML(info, pkg, "hunter2")
			if err != nil {
				t.Fatalf("decryptOOXML() error = %v", err)
			}
			zr, err := zip.NewReader(bytes.NewReader(plain), int64(len(plain)))
			if err != nil {
				t.Fatalf("decrypted package is not a zip: %v", err)
			}
			if err := VerifyZipEntries(zr.File); err != nil {
				t.Fatalf("decrypted package is damaged: %v", err)
			}
			found := false
			for _, f := range zr.File {
				found = found || f.Name == tc.mainPart
			}
			if !found {
				t.Errorf("decrypted package has no %s", tc.mainPart)
			}
		})
	}
}

func TestDecryptOOXMLRejectsUnknownVersions(t *testing.T) {
	info := []byte{3, 0, 3, 0, 0, 0, 0, 0} // Extensible Encryption
	if _, err := decryptOOXML(info, nil, "x"); !errors.Is(err, errUnsupportedEncryption) {
		t.Errorf("decryptOOXML(v3.3) error = %v, want errUnsupportedEncryption", err)
	}
}

func TestFitBytes(t *testing.T) {
	if got := fitBytes([]byte{1, 2, 3}, 2); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("fitBytes(truncate) = %v", got)
	}
	if got := fitBytes([]byte{1}, 3); !bytes.Equal(got, []byte{1, 0x36, 0x36}) {
		t.Errorf("fitBytes(pad) = %v", got)
	}
}
