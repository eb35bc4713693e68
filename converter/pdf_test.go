package converter

import "testing"

func TestPDFAClaim(t *testing.T) {
	tests := []struct {
		name     string
		xmp      string
		wantPart int
		wantConf string
	}{
		{"elements", `<rdf:Description xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"><pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>`, 2, "B"},
		{"attributes", `<rdf:Description pdfaid:part="1" pdfaid:conformance="A"/>`, 1, "A"},
		{"no claim", `<rdf:Description><dc:title>x</dc:title></rdf:Description>`, 0, ""},
		{"empty", ``, 0, ""},
	}
	for _, tc := range tests {
		part, conf := pdfaClaim([]byte(tc.xmp))
		if part != tc.wantPart || conf != tc.wantConf {
			t.Errorf("%s: pdfaClaim() = %d, %q; want %d, %q", tc.name, part, conf, tc.wantPart, tc.wantConf)
		}
	}
}
