package docformat

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatTable(t *testing.T) {
	type props struct {
		Kind   Kind
		Family string
		Filter string
		IsZip  bool
	}
	impress := func(k Kind, zip bool) props { return props{k, "presentation", "impress_pdf_Export", zip} }
	writer := func(k Kind, zip bool) props { return props{k, "text document", "writer_pdf_Export", zip} }
	calc := func(k Kind, zip bool) props { return props{k, "spreadsheet", "calc_pdf_Export", zip} }
	want := map[Format]props{
		"pptx": impress(KindOOXML, true), "pptm": impress(KindOOXML, true), "ppsx": impress(KindOOXML, true),
		"ppsm": impress(KindOOXML, true), "potx": impress(KindOOXML, true), "potm": impress(KindOOXML, true),
		"ppt": impress(KindOLE, false), "odp": impress(KindODF, true), "otp": impress(KindODF, true),
		"docx": writer(KindOOXML, true), "docm": writer(KindOOXML, true), "dotx": writer(KindOOXML, true),
		"doc": writer(KindOLE, false), "odt": writer(KindODF, true), "ott": writer(KindODF, true), "rtf": writer(KindRTF, false),
		"xlsx": calc(KindOOXML, true), "xlsm": calc(KindOOXML, true), "xltx": calc(KindOOXML, true),
		"xls": calc(KindOLE, false), "ods": calc(KindODF, true), "ots": calc(KindODF, true),
		"pdf": {Kind: "", Family: "unknown", Filter: "pdf_Export"}, // not ours
	}
	got := map[Format]props{}
	for f := range want {
		got[f] = props{f.Kind(), f.Family().String(), f.Family().ExportFilter(), f.IsZip()}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("format properties (-want +got):\n%s", d)
	}
	if len(formats) != len(want)-1 {
		t.Errorf("the table has %d formats, the test knows %d", len(formats), len(want)-1)
	}
}

func TestMediaTypeIndexes(t *testing.T) {
	wantODF := map[string]Format{
		"application/vnd.oasis.opendocument.presentation":          ODP,
		"application/vnd.oasis.opendocument.presentation-template": OTP,
		"application/vnd.oasis.opendocument.text":                  ODT,
		"application/vnd.oasis.opendocument.text-template":         OTT,
		"application/vnd.oasis.opendocument.spreadsheet":           ODS,
		"application/vnd.oasis.opendocument.spreadsheet-template":  OTS,
	}
	if d := cmp.Diff(wantODF, odfMimetypes); d != "" {
		t.Errorf("ODF mimetypes (-want +got):\n%s", d)
	}
	if len(ooxmlContentTypes) != 12 || ooxmlContentTypes["application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml"] != PPSX {
		t.Errorf("OOXML content types = %v, want 12 with the slideshow as ppsx", ooxmlContentTypes)
	}
	wantFirst := []string{"[Content_Types].xml", "_rels/", "docProps/", "customXml/", "ppt/", "word/", "xl/"}
	if d := cmp.Diff(wantFirst, ooxmlFirstEntries); d != "" {
		t.Errorf("OOXML first entries (-want +got):\n%s", d)
	}
}
