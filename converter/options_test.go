package converter

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/rulecases"
)

// TestOptionsAgreeWithTheAPI feeds the shared table of option values (the one the API server's
// schema is tested with) to Validate: it accepts exactly the valid ones.
func TestOptionsAgreeWithTheAPI(t *testing.T) {
	cases := rulecases.For(rulecases.PageRange, rulecases.PDFA, rulecases.MaxImageResolution, rulecases.Quality)
	if len(cases) < 30 {
		t.Fatalf("only %d cases: the shared table lost fields", len(cases))
	}
	for _, c := range cases {
		var o Options
		switch c.Field {
		case rulecases.PageRange:
			o.PageRange = c.Value
		case rulecases.PDFA:
			o.PDFA = c.Value
		default:
			n, err := strconv.Atoi(c.Value)
			if err != nil {
				t.Fatalf("%s=%q: %v", c.Field, c.Value, err)
			}
			if c.Field == rulecases.Quality {
				o.Quality = n
			} else {
				o.MaxImageResolution = n
			}
		}
		_, err := o.Validate()
		if c.Valid && err != nil {
			t.Errorf("%s=%q: refused a value the API accepts: %v", c.Field, c.Value, err)
		}
		if !c.Valid && reasonOf(err) != contract.ReasonInvalidParameters {
			t.Errorf("%s=%q: got %v, want InvalidParameters", c.Field, c.Value, err)
		}
	}
}

func TestValidateNormalizesPageRange(t *testing.T) {
	for in, want := range map[string]string{"": "", "  ": "", " 1 - 3 , 5 ": "1-3,5", "3-3": "3-3"} {
		got, err := Options{PageRange: in}.Validate()
		if err != nil || got.PageRange != want {
			t.Errorf("Validate(PageRange %q) = %q, %v; want %q", in, got.PageRange, err, want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name       string
		in         Options
		wantReason string
	}{
		{"zero", Options{}, ""},
		{"all set", Options{PageRange: "1-2", PDFA: "PDF/A-3b", Quality: 100, MaxImageResolution: 300}, ""},
		{"bad range", Options{PageRange: "x"}, contract.ReasonInvalidParameters},
		{"bad pdfa", Options{PDFA: "PDF/A-4"}, contract.ReasonInvalidParameters},
		{"quality too high", Options{Quality: 101}, contract.ReasonInvalidParameters},
		{"negative quality", Options{Quality: -1}, contract.ReasonInvalidParameters},
		{"resolution too low", Options{MaxImageResolution: 10}, contract.ReasonInvalidParameters},
		{"resolution outside the API's set", Options{MaxImageResolution: 2400}, contract.ReasonInvalidParameters},
		{"quality wraps to valid when narrowed", Options{Quality: 1<<32 + 50}, contract.ReasonInvalidParameters},
	}
	for _, tc := range tests {
		_, err := tc.in.Validate()
		if got := reasonOf(err); got != tc.wantReason {
			t.Errorf("%s: Validate() reason = %q (%v), want %q", tc.name, got, err, tc.wantReason)
		}
	}
}

func TestFilterOptionsJSON(t *testing.T) {
	tests := []struct {
		name string
		fam  Family
		opts Options
		want string
	}{
		{"defaults", FamilyImpress, Options{}, "{}"},
		{"writer defaults", FamilyWriter, Options{}, "{}"},
		{"calc page range", FamilyCalc, Options{PageRange: "2"},
			`{"PageRange":{"type":"string","value":"2"}}`},
		{"pdfa levels", FamilyImpress, Options{PDFA: "PDF/A-1b"},
			`{"SelectPdfVersion":{"type":"long","value":"1"}}`},
		{"everything on impress", FamilyImpress,
			Options{PageRange: "1-3,5", PDFA: "PDF/A-2b", ExportNotes: true, ExportHiddenSlides: true, Quality: 80, MaxImageResolution: 150, Password: "secret"},
			`{"PageRange":{"type":"string","value":"1-3,5"},"SelectPdfVersion":{"type":"long","value":"2"},` +
				`"ExportNotesPages":{"type":"boolean","value":"true"},"ExportHiddenSlides":{"type":"boolean","value":"true"},` +
				`"UseLosslessCompression":{"type":"boolean","value":"false"},"Quality":{"type":"long","value":"80"},` +
				`"ReduceImageResolution":{"type":"boolean","value":"true"},"MaxImageResolution":{"type":"long","value":"150"}}`},
		{"notes and hidden slides on writer", FamilyWriter, Options{ExportNotes: true, ExportHiddenSlides: true},
			`{"ExportNotes":{"type":"boolean","value":"true"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, FilterOptionsJSON(tc.fam, tc.opts)); diff != "" {
				t.Errorf("FilterOptionsJSON() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionsStringHidesPassword(t *testing.T) {
	s := Options{Password: "hunter2"}.String()
	if want := "password=true"; !contains(s, want) || contains(s, "hunter2") {
		t.Errorf("Options.String() = %q, want %q and no password", s, want)
	}
}

func TestWorkerEnv(t *testing.T) {
	got := workerEnv([]string{"PATH=/bin", "HOME=/root", "TMPDIR=/tmp", "LANG=C.UTF-8", "GODEBUG=gctrace=1"}, "/w")
	want := []string{"PATH=/bin", "LANG=C.UTF-8", "HOME=/w", "TMPDIR=/w/tmp", "SAL_USE_VCLPLUGIN=svp", "GODEBUG=asyncpreemptoff=1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workerEnv() mismatch (-want +got):\n%s", diff)
	}
}

func TestFileURL(t *testing.T) {
	if got, want := fileURL("/scratch/w 1/in/Résumé #1.docx"), "file:///scratch/w%201/in/R%C3%A9sum%C3%A9%20%231.docx"; got != want {
		t.Errorf("fileURL() = %q, want %q", got, want)
	}
}

func TestLastLines(t *testing.T) {
	log := "convert a -> b\nWarning: failed to launch javaldx - java may not function correctly\n\nError: source file could not be loaded\n"
	if got, want := lastLines(log), "convert a -> b; Error: source file could not be loaded"; got != want {
		t.Errorf("lastLines() = %q, want %q", got, want)
	}
	if got, want := lastLines(""), "no output from LibreOffice"; got != want {
		t.Errorf("lastLines(empty) = %q, want %q", got, want)
	}
}
