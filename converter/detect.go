package converter

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/kubexport/kubexport/internal/contract"
)

// Detection is what the content of an input turned out to be.
type Detection struct {
	// Format is the document format; empty for an encrypted OOXML package, whose format is only
	// known after decryption.
	Format Format
	// EncryptedOOXML is true for an OLE container holding an encrypted OOXML package
	// (EncryptionInfo and EncryptedPackage streams), which can be decrypted with a password.
	EncryptedOOXML bool
	// Encrypted is true for a legacy binary file whose encryption flag is set, or an OpenDocument
	// package with encrypted entries.
	Encrypted bool
	// Zip is the opened archive of a ZIP-based format, for the guards.
	Zip *zip.Reader
}

// Sniffing prefixes.
var (
	zipLocalMagic = []byte("PK\x03\x04")
	zipEmptyMagic = []byte("PK\x05\x06")
	rtfMagic      = []byte(`{\rtf`)
)

// Detect determines the real format of the input from its content. It fails with a permanent
// *Error: Corrupt for a damaged container, UnsupportedFormat for anything that is not an office
// format we convert (naming what it is instead).
func Detect(r io.ReaderAt, size int64) (Detection, error) {
	if size == 0 {
		return Detection{}, permanent(contract.ReasonCorrupt, nil, "the file is empty")
	}
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Detection{}, fmt.Errorf("reading input: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, zipLocalMagic) || bytes.HasPrefix(head, zipEmptyMagic):
		return detectZip(r, size)
	case bytes.HasPrefix(head, cfbMagic):
		return detectCFB(r, size)
	case bytes.HasPrefix(head, rtfMagic):
		return Detection{Format: FormatRTF}, nil
	default:
		return Detection{}, permanent(contract.ReasonUnsupportedFormat, nil,
			"the content is %s, not an office document we convert", describeContent(head))
	}
}

// describeContent names content that is not an office document, for the UnsupportedFormat message.
func describeContent(head []byte) string {
	if bytes.HasPrefix(head, []byte("%PDF-")) {
		return "a PDF document"
	}
	ct := http.DetectContentType(head)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if ct == "application/octet-stream" {
		return "unrecognised binary data"
	}
	return ct
}

func detectZip(r io.ReaderAt, size int64) (Detection, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // we never extract, so odd names are harmless
		return Detection{}, permanent(contract.ReasonCorrupt, err, "the file looks like a ZIP-based document but the archive is broken")
	}
	f, err := zipFormat(zr)
	if err != nil {
		return Detection{}, err
	}
	det := Detection{Format: f, Zip: zr}
	if f == FormatODP || f == FormatOTP || f == FormatODT || f == FormatOTT || f == FormatODS || f == FormatOTS {
		if det.Encrypted, err = odfEncrypted(zr); err != nil {
			return Detection{}, err
		}
	}
	return det, nil
}

// odfEncrypted reports whether an OpenDocument package's manifest declares encrypted entries
// (manifest:encryption-data), which only a password opens.
func odfEncrypted(zr *zip.Reader) (bool, error) {
	for _, f := range zr.File {
		if f.Name != "META-INF/manifest.xml" {
			continue
		}
		b, err := readZipEntry(f, 16<<20)
		if err != nil {
			return false, err
		}
		return bytes.Contains(b, []byte("encryption-data")), nil
	}
	return false, nil
}

// OOXML main-part content types, by the format they identify.
var ooxmlContentTypes = map[string]Format{
	"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": FormatPPTX,
	"application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml":                   FormatPPTM,
	"application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml":    FormatPPSX,
	"application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml":                      FormatPPSM,
	"application/vnd.openxmlformats-officedocument.presentationml.template.main+xml":     FormatPOTX,
	"application/vnd.ms-powerpoint.template.macroEnabled.main+xml":                       FormatPOTM,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml":   FormatDOCX,
	"application/vnd.ms-word.document.macroEnabled.main+xml":                             FormatDOCM,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml":   FormatDOTX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml":         FormatXLSX,
	"application/vnd.ms-excel.sheet.macroEnabled.main+xml":                               FormatXLSM,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml":      FormatXLTX,
}

// ooxmlMainParts are the main parts of the three OOXML families, with the format to assume when
// [Content_Types].xml does not name the part's content type.
var ooxmlMainParts = []struct {
	name     string
	fallback Format
}{
	{"ppt/presentation.xml", FormatPPTX},
	{"word/document.xml", FormatDOCX},
	{"xl/workbook.xml", FormatXLSX},
}

// ODF mimetype entries, by the format they identify.
var odfMimeTypes = map[string]Format{
	"application/vnd.oasis.opendocument.presentation":          FormatODP,
	"application/vnd.oasis.opendocument.presentation-template": FormatOTP,
	"application/vnd.oasis.opendocument.text":                  FormatODT,
	"application/vnd.oasis.opendocument.text-template":         FormatOTT,
	"application/vnd.oasis.opendocument.spreadsheet":           FormatODS,
	"application/vnd.oasis.opendocument.spreadsheet-template":  FormatOTS,
}

// maxMetaEntry caps how much of [Content_Types].xml or mimetype is read for detection.
const maxMetaEntry = 1 << 20

// zipFormat identifies an OOXML or ODF package by its entries.
func zipFormat(zr *zip.Reader) (Format, error) {
	entries := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		entries[strings.TrimPrefix(f.Name, "/")] = f
	}
	if mt, ok := entries["mimetype"]; ok {
		b, err := readZipEntry(mt, maxMetaEntry)
		if err != nil {
			return "", err
		}
		m := strings.TrimSpace(string(b))
		if f, ok := odfMimeTypes[m]; ok {
			return f, nil
		}
		return "", permanent(contract.ReasonUnsupportedFormat, nil, "the content is an OpenDocument package of type %q, which we do not convert", m)
	}
	for _, mp := range ooxmlMainParts {
		if _, ok := entries[mp.name]; !ok {
			continue
		}
		ctEntry, ok := entries["[Content_Types].xml"]
		if !ok {
			return "", permanent(contract.ReasonCorrupt, nil, "the OOXML package has %s but no [Content_Types].xml", mp.name)
		}
		b, err := readZipEntry(ctEntry, maxMetaEntry)
		if err != nil {
			return "", err
		}
		ct, err := partContentType(b, "/"+mp.name)
		if err != nil {
			return "", permanent(contract.ReasonCorrupt, err, "the OOXML package's [Content_Types].xml cannot be read")
		}
		if ct == "" {
			return mp.fallback, nil
		}
		if f, ok := ooxmlContentTypes[ct]; ok {
			return f, nil
		}
		return "", permanent(contract.ReasonUnsupportedFormat, nil, "the content is an OOXML package of type %q, which we do not convert", ct)
	}
	return "", permanent(contract.ReasonUnsupportedFormat, nil,
		"the content is a ZIP archive that is neither an Office Open XML nor an OpenDocument file")
}

// partContentType returns the content type [Content_Types].xml declares for partName: its
// Override, or else the Default for its extension; "" if neither exists.
func partContentType(contentTypes []byte, partName string) (string, error) {
	var doc struct {
		Defaults []struct {
			Extension   string `xml:"Extension,attr"`
			ContentType string `xml:"ContentType,attr"`
		} `xml:"Default"`
		Overrides []struct {
			PartName    string `xml:"PartName,attr"`
			ContentType string `xml:"ContentType,attr"`
		} `xml:"Override"`
	}
	if err := xml.Unmarshal(contentTypes, &doc); err != nil {
		return "", fmt.Errorf("parsing [Content_Types].xml: %w", err)
	}
	for _, o := range doc.Overrides {
		if strings.EqualFold(o.PartName, partName) {
			return o.ContentType, nil
		}
	}
	ext := strings.TrimPrefix(path.Ext(partName), ".")
	for _, d := range doc.Defaults {
		if strings.EqualFold(d.Extension, ext) && d.ContentType != "application/xml" {
			return d.ContentType, nil
		}
	}
	return "", nil
}

// readZipEntry reads at most limit bytes of an entry; a decompression or checksum failure is Corrupt.
func readZipEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, permanent(contract.ReasonCorrupt, err, "the archive entry %q cannot be opened", f.Name)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, permanent(contract.ReasonCorrupt, err, "the archive entry %q is damaged", f.Name)
	}
	return b, nil
}

// Stream names in OLE compound files.
const (
	streamEncryptionInfo   = "EncryptionInfo"
	streamEncryptedPackage = "EncryptedPackage"
	streamPowerPoint       = "PowerPoint Document"
	streamCurrentUser      = "Current User"
	streamWord             = "WordDocument"
	streamWorkbook         = "Workbook"
	streamBook             = "Book" // Excel 5/95
)

func detectCFB(r io.ReaderAt, size int64) (Detection, error) {
	cf, err := openCFB(r, size)
	if err != nil {
		return Detection{}, permanent(contract.ReasonCorrupt, err, "the file looks like a legacy Office document but its container is broken")
	}
	streams, err := cf.rootStreams()
	if err != nil {
		return Detection{}, permanent(contract.ReasonCorrupt, err, "the file looks like a legacy Office document but its container is broken")
	}
	has := func(name string) (cfbEntry, bool) { e, ok := streams[name]; return e, ok && e.typ == cfbTypeStream }

	if _, ok := has(streamEncryptionInfo); ok {
		if _, ok := has(streamEncryptedPackage); ok {
			return Detection{EncryptedOOXML: true}, nil
		}
	}
	if _, ok := has(streamPowerPoint); ok {
		enc, err := pptEncrypted(cf, streams)
		if err != nil {
			return Detection{}, err
		}
		return Detection{Format: FormatPPT, Encrypted: enc}, nil
	}
	if e, ok := has(streamWord); ok {
		b, err := cf.readStream(e, 32)
		if err != nil || len(b) < 12 {
			return Detection{}, permanent(contract.ReasonCorrupt, err, "the Word document's main stream is damaged")
		}
		return Detection{Format: FormatDOC, Encrypted: wordEncrypted(b)}, nil
	}
	for _, name := range []string{streamWorkbook, streamBook} {
		if e, ok := has(name); ok {
			b, err := cf.readStream(e, 1<<20)
			if err != nil {
				return Detection{}, permanent(contract.ReasonCorrupt, err, "the Excel workbook stream is damaged")
			}
			return Detection{Format: FormatXLS, Encrypted: excelHasFilePass(b)}, nil
		}
	}
	return Detection{}, permanent(contract.ReasonUnsupportedFormat, nil,
		"the content is an OLE compound file without a Word, Excel or PowerPoint document in it")
}

// PowerPoint's CurrentUserAtom headerToken ([MS-PPT] 2.3.2): the second value marks an
// encrypted document.
const (
	pptTokenPlain     = 0xE391C05F
	pptTokenEncrypted = 0xF3D1C4DF
)

// pptEncrypted reads the Current User stream's header token. A PowerPoint file without that
// stream is damaged.
func pptEncrypted(cf *cfbFile, streams map[string]cfbEntry) (bool, error) {
	cu, ok := streams[streamCurrentUser]
	if !ok {
		return false, permanent(contract.ReasonCorrupt, nil, "the PowerPoint file has no Current User stream")
	}
	b, err := cf.readStream(cu, 64)
	if err != nil {
		return false, permanent(contract.ReasonCorrupt, err, "the PowerPoint Current User stream is damaged")
	}
	return pptTokenIsEncrypted(b)
}

// pptTokenIsEncrypted interprets a CurrentUserAtom: an 8-byte record header, size, headerToken.
func pptTokenIsEncrypted(cu []byte) (bool, error) {
	if len(cu) < 16 {
		return false, permanent(contract.ReasonCorrupt, nil, "the PowerPoint Current User stream is too short")
	}
	switch tok := binary.LittleEndian.Uint32(cu[12:]); tok {
	case pptTokenEncrypted:
		return true, nil
	case pptTokenPlain:
		return false, nil
	default:
		return false, permanent(contract.ReasonCorrupt, nil, "the PowerPoint Current User stream has an unknown header token %#x", tok)
	}
}

// Word FibBase flags ([MS-DOC] 2.5.2): fEncrypted, and fObfuscated (XOR obfuscation, which also
// needs the password).
const (
	wordFlagEncrypted  = 0x0100
	wordFlagObfuscated = 0x8000
)

// wordEncrypted reads the FibBase flags at offset 0x0A of the WordDocument stream.
func wordEncrypted(fib []byte) bool {
	flags := binary.LittleEndian.Uint16(fib[0x0A:])
	return flags&wordFlagEncrypted != 0 || flags&wordFlagObfuscated != 0
}

// BIFF record types ([MS-XLS] 2.3).
const (
	biffEOF      = 0x000A
	biffFilePass = 0x002F
)

// excelHasFilePass reports whether the workbook globals substream holds a FILEPASS record, which
// means the workbook is encrypted (possibly with Excel's built-in default password, which
// LibreOffice opens on its own).
func excelHasFilePass(stream []byte) bool {
	for off := 0; off+4 <= len(stream); {
		typ := binary.LittleEndian.Uint16(stream[off:])
		n := int(binary.LittleEndian.Uint16(stream[off+2:]))
		switch typ {
		case biffFilePass:
			return true
		case biffEOF:
			return false
		}
		off += 4 + n
	}
	return false
}
