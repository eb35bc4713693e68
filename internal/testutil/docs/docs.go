// Package docs writes small office documents for tests: minimal valid PPTX, DOCX, XLSX and ODP
// files with known page counts, broken variants, zip bombs, encrypted OOXML and non-office
// content. Everything is generated in memory, deterministically except for encryption salts.
package docs

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// entry is one file of a ZIP package.
type entry struct {
	name string
	data string
}

// fixedTime keeps generated archives byte-for-byte reproducible.
var fixedTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// zipEntries writes entries in order; the first is stored uncompressed when store is true (ODF
// requires that for mimetype).
func zipEntries(entries []entry, storeFirst bool) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, e := range entries {
		method := zip.Deflate
		if i == 0 && storeFirst {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method, Modified: fixedTime})
		if err != nil {
			panic(fmt.Sprintf("docs: writing %s: %v", e.name, err)) // in-memory writer cannot fail
		}
		_, _ = w.Write([]byte(e.data))
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("docs: closing zip: %v", err))
	}
	return buf.Bytes()
}

// Write writes data to name in dir and returns the path, failing the test on error.
func Write(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
	return p
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

// Namespaces of PresentationML, DrawingML and relationships.
const (
	nsP   = "http://schemas.openxmlformats.org/presentationml/2006/main"
	nsA   = "http://schemas.openxmlformats.org/drawingml/2006/main"
	nsR   = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
	nsRel = "http://schemas.openxmlformats.org/package/2006/relationships"
	relOD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
)

// Slide describes one slide of a generated deck.
type Slide struct {
	// Title is the text on the slide.
	Title string
	// Hidden excludes the slide from the slide show (and from a default PDF export).
	Hidden bool
	// Picture is a PNG shown below the title, if set.
	Picture []byte
}

// PPTX returns a minimal valid presentation with n visible slides titled "Slide 1".."Slide n".
func PPTX(n int) []byte { return PPTXSlides(numberedSlides(n)) }

func numberedSlides(n int) []Slide {
	s := make([]Slide, n)
	for i := range s {
		s[i] = Slide{Title: fmt.Sprintf("Slide %d", i+1)}
	}
	return s
}

// PPTXSlides returns a minimal valid presentation with the given slides.
func PPTXSlides(slides []Slide) []byte {
	return pptxPackage(slides, "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml")
}

// PPSX returns a slide show (the .ppsx content type) with n slides.
func PPSX(n int) []byte {
	return pptxPackage(numberedSlides(n), "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml")
}

func pptxPackage(slides []Slide, mainType string) []byte {
	var ct, presRels, sldIDs strings.Builder
	ct.WriteString(xmlHeader + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Default Extension="png" ContentType="image/png"/>` +
		`<Override PartName="/ppt/presentation.xml" ContentType="` + mainType + `"/>` +
		`<Override PartName="/ppt/slideMasters/slideMaster1.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.slideMaster+xml"/>` +
		`<Override PartName="/ppt/slideLayouts/slideLayout1.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.slideLayout+xml"/>` +
		`<Override PartName="/ppt/theme/theme1.xml" ContentType="application/vnd.openxmlformats-officedocument.theme+xml"/>`)
	presRels.WriteString(xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
		`<Relationship Id="rId1" Type="` + relOD + `/slideMaster" Target="slideMasters/slideMaster1.xml"/>` +
		`<Relationship Id="rId2" Type="` + relOD + `/theme" Target="theme/theme1.xml"/>`)
	entries := []entry{}
	for i, s := range slides {
		n := i + 1
		fmt.Fprintf(&ct, `<Override PartName="/ppt/slides/slide%d.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.slide+xml"/>`, n)
		fmt.Fprintf(&presRels, `<Relationship Id="rId%d" Type="%s/slide" Target="slides/slide%d.xml"/>`, n+10, relOD, n)
		fmt.Fprintf(&sldIDs, `<p:sldId id="%d" r:id="rId%d"/>`, 255+n, n+10)
		picRel := ""
		if s.Picture != nil {
			media := fmt.Sprintf("ppt/media/image%d.png", n)
			picRel = `<Relationship Id="rId2" Type="` + relOD + `/image" Target="../media/` + path.Base(media) + `"/>`
			entries = append(entries, entry{media, string(s.Picture)})
		}
		entries = append(entries,
			entry{fmt.Sprintf("ppt/slides/slide%d.xml", n), slideXML(s)},
			entry{fmt.Sprintf("ppt/slides/_rels/slide%d.xml.rels", n), xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
				`<Relationship Id="rId1" Type="` + relOD + `/slideLayout" Target="../slideLayouts/slideLayout1.xml"/>` + picRel + `</Relationships>`})
	}
	ct.WriteString(`</Types>`)
	presRels.WriteString(`</Relationships>`)
	sldIDList := ""
	if len(slides) > 0 {
		sldIDList = `<p:sldIdLst>` + sldIDs.String() + `</p:sldIdLst>`
	}
	pres := xmlHeader + `<p:presentation xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `">` +
		`<p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst>` + sldIDList +
		`<p:sldSz cx="9144000" cy="6858000" type="screen4x3"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>`
	head := []entry{
		{"[Content_Types].xml", ct.String()},
		{"_rels/.rels", xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
			`<Relationship Id="rId1" Type="` + relOD + `/officeDocument" Target="ppt/presentation.xml"/></Relationships>`},
		{"ppt/presentation.xml", pres},
		{"ppt/_rels/presentation.xml.rels", presRels.String()},
		{"ppt/slideMasters/slideMaster1.xml", slideMasterXML},
		{"ppt/slideMasters/_rels/slideMaster1.xml.rels", xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
			`<Relationship Id="rId1" Type="` + relOD + `/slideLayout" Target="../slideLayouts/slideLayout1.xml"/>` +
			`<Relationship Id="rId2" Type="` + relOD + `/theme" Target="../theme/theme1.xml"/></Relationships>`},
		{"ppt/slideLayouts/slideLayout1.xml", slideLayoutXML},
		{"ppt/slideLayouts/_rels/slideLayout1.xml.rels", xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
			`<Relationship Id="rId1" Type="` + relOD + `/slideMaster" Target="../slideMasters/slideMaster1.xml"/></Relationships>`},
		{"ppt/theme/theme1.xml", themeXML},
	}
	return zipEntries(slices.Concat(head, entries), false)
}

const emptyTree = `<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr>` +
	`<p:grpSpPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/><a:chOff x="0" y="0"/><a:chExt cx="0" cy="0"/></a:xfrm></p:grpSpPr>`

func slideXML(s Slide) string {
	pic := ""
	if s.Picture != nil {
		pic = `<p:pic><p:nvPicPr><p:cNvPr id="3" name="Picture"/><p:cNvPicPr/><p:nvPr/></p:nvPicPr>` +
			`<p:blipFill><a:blip r:embed="rId2"/><a:stretch><a:fillRect/></a:stretch></p:blipFill>` +
			`<p:spPr><a:xfrm><a:off x="457200" y="1600200"/><a:ext cx="8229600" cy="4800600"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr></p:pic>`
	}
	show := ""
	if s.Hidden {
		show = ` show="0"`
	}
	return xmlHeader + `<p:sld xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `"` + show + `>` +
		`<p:cSld><p:spTree>` + emptyTree +
		`<p:sp><p:nvSpPr><p:cNvPr id="2" name="Title"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>` +
		`<p:spPr><a:xfrm><a:off x="457200" y="457200"/><a:ext cx="8229600" cy="1143000"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr>` +
		`<p:txBody><a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang="en-US" sz="4000"/><a:t>` + xmlEscape(s.Title) + `</a:t></a:r></a:p></p:txBody></p:sp>` +
		pic + `</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>`
}

var slideMasterXML = xmlHeader + `<p:sldMaster xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `">` +
	`<p:cSld><p:spTree>` + emptyTree + `</p:spTree></p:cSld>` +
	`<p:clrMap bg1="lt1" tx1="dk1" bg2="lt2" tx2="dk2" accent1="accent1" accent2="accent2" accent3="accent3" accent4="accent4" accent5="accent5" accent6="accent6" hlink="hlink" folHlink="folHlink"/>` +
	`<p:sldLayoutIdLst><p:sldLayoutId id="2147483649" r:id="rId1"/></p:sldLayoutIdLst></p:sldMaster>`

var slideLayoutXML = xmlHeader + `<p:sldLayout xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `" type="blank">` +
	`<p:cSld name="Blank"><p:spTree>` + emptyTree + `</p:spTree></p:cSld>` +
	`<p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sldLayout>`

var themeXML = xmlHeader + `<a:theme xmlns:a="` + nsA + `" name="Minimal"><a:themeElements>` +
	`<a:clrScheme name="Minimal">` +
	`<a:dk1><a:srgbClr val="000000"/></a:dk1><a:lt1><a:srgbClr val="FFFFFF"/></a:lt1>` +
	`<a:dk2><a:srgbClr val="1F497D"/></a:dk2><a:lt2><a:srgbClr val="EEECE1"/></a:lt2>` +
	`<a:accent1><a:srgbClr val="4F81BD"/></a:accent1><a:accent2><a:srgbClr val="C0504D"/></a:accent2>` +
	`<a:accent3><a:srgbClr val="9BBB59"/></a:accent3><a:accent4><a:srgbClr val="8064A2"/></a:accent4>` +
	`<a:accent5><a:srgbClr val="4BACC6"/></a:accent5><a:accent6><a:srgbClr val="F79646"/></a:accent6>` +
	`<a:hlink><a:srgbClr val="0000FF"/></a:hlink><a:folHlink><a:srgbClr val="800080"/></a:folHlink></a:clrScheme>` +
	`<a:fontScheme name="Minimal"><a:majorFont><a:latin typeface="Liberation Sans"/><a:ea typeface=""/><a:cs typeface=""/></a:majorFont>` +
	`<a:minorFont><a:latin typeface="Liberation Sans"/><a:ea typeface=""/><a:cs typeface=""/></a:minorFont></a:fontScheme>` +
	`<a:fmtScheme name="Minimal"><a:fillStyleLst><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:fillStyleLst>` +
	`<a:lnStyleLst><a:ln w="9525"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln><a:ln w="25400"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln><a:ln w="38100"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln></a:lnStyleLst>` +
	`<a:effectStyleLst><a:effectStyle><a:effectLst/></a:effectStyle><a:effectStyle><a:effectLst/></a:effectStyle><a:effectStyle><a:effectLst/></a:effectStyle></a:effectStyleLst>` +
	`<a:bgFillStyleLst><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:bgFillStyleLst></a:fmtScheme>` +
	`</a:themeElements></a:theme>`

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// DOCX returns a minimal text document of n pages, separated by page breaks.
func DOCX(pages int) []byte {
	var body strings.Builder
	for i := 1; i <= pages; i++ {
		if i > 1 {
			body.WriteString(`<w:p><w:r><w:br w:type="page"/></w:r></w:p>`)
		}
		fmt.Fprintf(&body, `<w:p><w:r><w:t>Page %d</w:t></w:r></w:p>`, i)
	}
	const nsW = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
	return zipEntries([]entry{
		{"[Content_Types].xml", xmlHeader + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
		{"_rels/.rels", xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
			`<Relationship Id="rId1" Type="` + relOD + `/officeDocument" Target="word/document.xml"/></Relationships>`},
		{"word/document.xml", xmlHeader + `<w:document xmlns:w="` + nsW + `"><w:body>` + body.String() +
			`<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>` +
			`</w:body></w:document>`},
	}, false)
}

// XLSX returns a minimal one-sheet workbook with a few cells (one page).
func XLSX() []byte {
	const nsS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
	return zipEntries([]entry{
		{"[Content_Types].xml", xmlHeader + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
			`<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`},
		{"_rels/.rels", xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
			`<Relationship Id="rId1" Type="` + relOD + `/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
		{"xl/workbook.xml", xmlHeader + `<workbook xmlns="` + nsS + `" xmlns:r="` + nsR + `"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`},
		{"xl/_rels/workbook.xml.rels", xmlHeader + `<Relationships xmlns="` + nsRel + `">` +
			`<Relationship Id="rId1" Type="` + relOD + `/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`},
		{"xl/worksheets/sheet1.xml", xmlHeader + `<worksheet xmlns="` + nsS + `"><sheetData>` +
			`<row r="1"><c r="A1" t="inlineStr"><is><t>Item</t></is></c><c r="B1" t="inlineStr"><is><t>Count</t></is></c></row>` +
			`<row r="2"><c r="A2" t="inlineStr"><is><t>Apples</t></is></c><c r="B2"><v>3</v></c></row>` +
			`</sheetData></worksheet>`},
	}, false)
}

// ODP returns a minimal OpenDocument presentation with n slides.
func ODP(n int) []byte {
	var pages strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&pages, `<draw:page draw:name="page%d" draw:master-page-name="Default">`+
			`<draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box><text:p>Slide %d</text:p></draw:text-box></draw:frame>`+
			`</draw:page>`, i, i)
	}
	const ns = `xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" ` +
		`xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" ` +
		`xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" ` +
		`xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"`
	return zipEntries([]entry{
		{"mimetype", "application/vnd.oasis.opendocument.presentation"},
		{"META-INF/manifest.xml", xmlHeader + `<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">` +
			`<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.presentation"/>` +
			`<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>` +
			`<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/></manifest:manifest>`},
		{"styles.xml", xmlHeader + `<office:document-styles ` + ns + ` office:version="1.2">` +
			`<office:automatic-styles><style:page-layout style:name="PM1"><style:page-layout-properties fo:page-width="28cm" fo:page-height="21cm" style:print-orientation="landscape"/></style:page-layout></office:automatic-styles>` +
			`<office:master-styles><style:master-page style:name="Default" style:page-layout-name="PM1"/></office:master-styles></office:document-styles>`},
		{"content.xml", xmlHeader + `<office:document-content ` + ns + ` office:version="1.2">` +
			`<office:body><office:presentation>` + pages.String() + `</office:presentation></office:body></office:document-content>`},
	}, true)
}

// Truncated returns the first n bytes of data (a ZIP without its central directory).
func Truncated(data []byte, n int) []byte {
	if n > len(data) {
		n = len(data)
	}
	return append([]byte(nil), data[:n]...)
}

// GarbageEntry returns a copy of a ZIP package whose named entry's compressed bytes are
// overwritten with garbage: the central directory still reads, but the entry fails to inflate or
// fails its CRC check.
func GarbageEntry(pkg []byte, name string) []byte {
	out := append([]byte(nil), pkg...)
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		panic(fmt.Sprintf("docs: GarbageEntry needs a valid zip: %v", err))
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			panic(fmt.Sprintf("docs: locating %s: %v", name, err))
		}
		for i := int64(0); i < int64(f.CompressedSize64); i++ {
			out[off+i] = byte(0xA5 ^ i)
		}
		return out
	}
	panic(fmt.Sprintf("docs: no entry %q", name))
}

// RatioBomb returns a PPTX-looking package with an extra entry of size bytes of zeros, which
// deflates about 1000-fold.
func RatioBomb(size int) []byte {
	return addEntries(PPTX(1), []entry{{"ppt/media/zeros.bin", strings.Repeat("\x00", size)}}, zip.Deflate)
}

// ManyEntries returns a PPTX-looking package with n extra tiny entries, stored: deflating each
// costs a compressor reset, seconds for ten thousand under the race detector.
func ManyEntries(n int) []byte {
	extra := make([]entry, n)
	for i := range extra {
		extra[i] = entry{fmt.Sprintf("ppt/customXml/item%d.xml", i), "<a/>"}
	}
	return addEntries(PPTX(1), extra, zip.Store)
}

// HugeDeclaredSize returns a PPTX-looking package with an entry whose headers declare size
// uncompressed bytes while holding only a few compressed ones.
func HugeDeclaredSize(size uint64) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	copyEntries(zw, PPTX(1))
	payload := []byte{0x03, 0x00} // an empty deflate stream
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "ppt/media/huge.bin", Method: zip.Deflate, Modified: fixedTime,
		CompressedSize64: uint64(len(payload)), UncompressedSize64: size, CRC32: crc32.ChecksumIEEE(nil),
	})
	if err != nil {
		panic(fmt.Sprintf("docs: raw entry: %v", err))
	}
	_, _ = w.Write(payload)
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("docs: closing zip: %v", err))
	}
	return buf.Bytes()
}

func addEntries(pkg []byte, extra []entry, method uint16) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	copyEntries(zw, pkg)
	for _, e := range extra {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method, Modified: fixedTime})
		if err != nil {
			panic(fmt.Sprintf("docs: writing %s: %v", e.name, err))
		}
		_, _ = w.Write([]byte(e.data))
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("docs: closing zip: %v", err))
	}
	return buf.Bytes()
}

func copyEntries(zw *zip.Writer, pkg []byte) {
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		panic(fmt.Sprintf("docs: reading zip: %v", err))
	}
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			panic(fmt.Sprintf("docs: copying %s: %v", f.Name, err))
		}
	}
}

// PNG returns a small PNG image.
func PNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		img.Set(x, x, color.RGBA{R: 200, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(fmt.Sprintf("docs: encoding PNG: %v", err))
	}
	return buf.Bytes()
}

// NoisePNG returns a w×h PNG of deterministic colour noise, which compresses badly: a picture
// whose size in a PDF depends on the export's image quality and resolution.
func NoisePNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var x uint32 = 88172645
	for i := 0; i < len(img.Pix); i += 4 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = byte(x), byte(x>>8), byte(x>>16), 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(fmt.Sprintf("docs: encoding PNG: %v", err))
	}
	return buf.Bytes()
}

// Text returns plain text.
func Text() []byte {
	return []byte("This is a plain text file, not a presentation.\nSecond line.\n")
}

// Padded returns a PPTX of n slides padded with an incompressible stored entry to at least size
// bytes, for input-size caps.
func Padded(n, size int) []byte {
	pad := make([]byte, size)
	var x uint32 = 2463534242
	for i := range pad { // xorshift: incompressible, deterministic
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		pad[i] = byte(x)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	copyEntries(zw, PPTX(n))
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "ppt/media/padding.bin", Method: zip.Store, Modified: fixedTime})
	if err != nil {
		panic(fmt.Sprintf("docs: padding entry: %v", err))
	}
	_, _ = w.Write(pad)
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("docs: closing zip: %v", err))
	}
	return buf.Bytes()
}
