package docformat

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Detection is what the content of a file turned out to be.
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
	// OLE is the parsed compound file of a legacy binary file or an encrypted OOXML package, to
	// read its streams (the encrypted package) without parsing the container again.
	OLE *CompoundFile
}

// Kind returns the container of the detected document.
func (d Detection) Kind() Kind {
	if d.EncryptedOOXML {
		return KindOLE
	}
	return d.Format.Kind()
}

// Detect determines the real format of a file from its whole content, read from r (size bytes).
// It refuses with an *Error: Empty for an empty file, Corrupt for a damaged container,
// Unsupported for anything that is not an office format we convert (naming what it is
// instead). Other errors come from reading r. The Detection reads from r later (Zip, OLE), so r
// must stay open while it is used.
func Detect(r io.ReaderAt, size int64) (Detection, error) {
	if size == 0 {
		return Detection{}, &Error{Problem: Empty, Message: "the file is empty"}
	}
	head := make([]byte, min(size, SniffLen))
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Detection{}, fmt.Errorf("reading input: %w", err)
	}
	head = head[:n]
	switch containerOf(head) {
	case containerZip:
		return detectZip(r, size)
	case containerOLE:
		return detectOLE(r, size)
	case containerRTF:
		return Detection{Format: RTF}, nil
	default:
		return Detection{}, unsupported(describeContent(head))
	}
}

func detectZip(r io.ReaderAt, size int64) (Detection, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // we never extract, so odd names are harmless
		return Detection{}, corrupt(err, "the file looks like a ZIP-based document but the archive is broken")
	}
	f, err := zipFormat(zr)
	if err != nil {
		return Detection{}, err
	}
	det := Detection{Format: f, Zip: zr}
	if f.Kind() == KindODF {
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
		if f, ok := odfMimetypes[m]; ok {
			return f, nil
		}
		return "", unsupportedType(describeZipMimetype(m))
	}
	for _, mp := range ooxmlMainParts {
		if _, ok := entries[mp.name]; !ok {
			continue
		}
		ctEntry, ok := entries["[Content_Types].xml"]
		if !ok {
			return "", corrupt(nil, "the OOXML package has %s but no [Content_Types].xml", mp.name)
		}
		b, err := readZipEntry(ctEntry, maxMetaEntry)
		if err != nil {
			return "", err
		}
		ct, err := partContentType(b, "/"+mp.name)
		if err != nil {
			return "", corrupt(err, "the OOXML package's [Content_Types].xml cannot be read")
		}
		if ct == "" {
			return mp.fallback, nil
		}
		if f, ok := ooxmlContentTypes[ct]; ok {
			return f, nil
		}
		return "", unsupportedType(fmt.Sprintf("an OOXML package of type %q", ct))
	}
	return "", unsupportedAs("a ZIP archive",
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
		return nil, corrupt(err, "the archive entry %q cannot be opened", f.Name)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, corrupt(err, "the archive entry %q is damaged", f.Name)
	}
	return b, nil
}

// Stream names in OLE compound files.
const (
	// StreamEncryptionInfo and StreamEncryptedPackage hold an encrypted OOXML package
	// ([MS-OFFCRYPTO] 2.3.4): how it is encrypted, and the encrypted ZIP.
	StreamEncryptionInfo   = "EncryptionInfo"
	StreamEncryptedPackage = "EncryptedPackage"

	streamPowerPoint  = "PowerPoint Document"
	streamCurrentUser = "Current User"
	// streamPowerPoint95 holds a PowerPoint 4.0/95 presentation in files of that era.
	streamPowerPoint95 = "PP40"
	// streamPPTEncryptedSummary replaces the summary streams of an encrypted PowerPoint
	// document ([MS-PPT] 2.1.5).
	streamPPTEncryptedSummary = "EncryptedSummary"
	streamWord                = "WordDocument"
	streamWorkbook            = "Workbook"
	streamBook                = "Book" // Excel 5/95
)

func detectOLE(r io.ReaderAt, size int64) (Detection, error) {
	cf, err := openCompoundFile(r, size)
	if err != nil {
		return Detection{}, corrupt(err, "the file looks like a legacy Office document but its container is broken")
	}
	if cf.HasStream(StreamEncryptionInfo) && cf.HasStream(StreamEncryptedPackage) {
		return Detection{EncryptedOOXML: true, OLE: cf}, nil
	}
	if cf.HasStream(streamPowerPoint) || cf.HasStream(streamPowerPoint95) {
		return Detection{Format: PPT, Encrypted: pptEncrypted(cf), OLE: cf}, nil
	}
	if cf.HasStream(streamWord) {
		b, err := cf.ReadStream(streamWord, 32)
		if err != nil || len(b) < 12 {
			return Detection{}, corrupt(err, "the Word document's main stream is damaged")
		}
		return Detection{Format: DOC, Encrypted: wordEncrypted(b), OLE: cf}, nil
	}
	for _, name := range []string{streamWorkbook, streamBook} {
		if cf.HasStream(name) {
			b, err := cf.ReadStream(name, 1<<20)
			if err != nil {
				return Detection{}, corrupt(err, "the Excel workbook stream is damaged")
			}
			return Detection{Format: XLS, Encrypted: excelHasFilePass(b), OLE: cf}, nil
		}
	}
	return Detection{}, unsupportedAs("an OLE compound file without a Word, Excel or PowerPoint document",
		"the content is an OLE compound file without a Word, Excel or PowerPoint document in it")
}

// pptTokenEncrypted is the CurrentUserAtom headerToken of an encrypted PowerPoint 97+
// document ([MS-PPT] 2.3.2); a plain one carries 0xE391C05F.
const pptTokenEncrypted = 0xF3D1C4DF

// pptEncrypted decides from sure signs only: an EncryptedSummary stream, or the Current User
// stream's header token. A Current User stream that is missing, shorter than PowerPoint 97's
// record (PowerPoint 95 writes a shorter one) or carries another token says nothing for sure:
// LibreOffice opens such files, so its result decides, not this check.
func pptEncrypted(cf *CompoundFile) bool {
	if cf.HasStream(streamPPTEncryptedSummary) {
		return true
	}
	b, err := cf.ReadStream(streamCurrentUser, 64)
	return err == nil && pptTokenIsEncrypted(b)
}

// pptTokenIsEncrypted interprets a CurrentUserAtom: an 8-byte record header, size, headerToken.
func pptTokenIsEncrypted(cu []byte) bool {
	return len(cu) >= 16 && binary.LittleEndian.Uint32(cu[12:]) == pptTokenEncrypted
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
