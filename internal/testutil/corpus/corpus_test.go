package corpus

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    []File
		wantErr string
	}{
		"valid and invalid": {
			in: "file\texpect\tpages\torigin\nvalid/a.pptx\tpdf\t3\tx\ninvalid/b.ppt\tpassword-protected\t0\ty\n\ninvalid/c.pptx\tcorrupt\t0\tz\n",
			want: []File{
				{Path: "valid/a.pptx", Expect: "pdf", Pages: 3},
				{Path: "invalid/b.ppt", Expect: "password-protected", Reason: "PasswordProtected"},
				{Path: "invalid/c.pptx", Expect: "corrupt", Reason: "Corrupt"},
			},
		},
		"too few columns":     {in: "h\na.pptx\tpdf\n", wantErr: "line 2: want file, expect, pages"},
		"pages not a number":  {in: "h\na.pptx\tpdf\tmany\n", wantErr: `pages "many"`},
		"unknown expectation": {in: "h\na.pptx\tmaybe\t1\n", wantErr: `unknown expectation "maybe"`},
		"nothing listed":      {in: "file\texpect\tpages\n", wantErr: "lists no files"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestSharedCorpusParses checks the real manifest when the corpus is present.
func TestSharedCorpusParses(t *testing.T) {
	_, files := Load(t)
	valid := 0
	for _, f := range files {
		if f.Valid() {
			valid++
		}
	}
	if valid == 0 || valid == len(files) {
		t.Errorf("%d of %d files valid: the corpus must hold both kinds", valid, len(files))
	}
}
