package disposition

import (
	"mime"
	"net/url"
	"strings"
	"testing"
)

func TestAttachment(t *testing.T) {
	tests := []struct{ name, want string }{
		{"deck.pdf", `attachment; filename="deck.pdf"`},
		{"Q3 review.pdf", `attachment; filename="Q3 review.pdf"`},
		{"Café.pdf", `attachment; filename="Caf_.pdf"; filename*=UTF-8''Caf%C3%A9.pdf`},
		{`say "hi".pdf`, `attachment; filename="say _hi_.pdf"; filename*=UTF-8''say%20%22hi%22.pdf`},
		{`back\slash.pdf`, `attachment; filename="back_slash.pdf"; filename*=UTF-8''back%5Cslash.pdf`},
		{"日本.pdf", `attachment; filename="__.pdf"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.pdf`},
		{"100%;x.pdf", `attachment; filename="100%;x.pdf"`},
	}
	for _, tc := range tests {
		if got := Attachment(tc.name); got != tc.want {
			t.Errorf("Attachment(%q)\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	// The header must survive Go's own parser, and filename* must decode to the exact name.
	for _, name := range []string{"Café.pdf", `say "hi".pdf`, "日本.pdf", "a b.pdf"} {
		v := Attachment(name)
		typ, params, err := mime.ParseMediaType(v)
		if err != nil || typ != "attachment" || params["filename"] != name {
			t.Errorf("Attachment(%q) = %s parses as %q %v (%v)", name, v, typ, params, err)
		}
		if _, enc, ok := strings.Cut(v, "filename*=UTF-8''"); ok {
			dec, err := url.PathUnescape(enc)
			if err != nil || dec != name {
				t.Errorf("filename* of %q decodes to %q (%v)", name, dec, err)
			}
		}
	}
}
