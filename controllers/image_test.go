package controllers

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
)

func TestImageMatches(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	otherDigest := "sha256:" + strings.Repeat("cd", 32)
	cases := []struct {
		image, entry string
		want         bool
	}{
		// Exact references match only themselves.
		{"kubexport/converter:1.2", "kubexport/converter:1.2", true},
		{"kubexport/converter:1.20", "kubexport/converter:1.2", false},
		{"kubexport/converter:1", "kubexport/converter:1.2", false},
		{"kubexport/converter", "kubexport/converter:1.2", false},
		{"docker.io/kubexport/converter:1.2", "kubexport/converter:1.2", false}, // compared as written
		{"kubexport/converter@" + digest, "kubexport/converter@" + digest, true},
		{"kubexport/converter@" + otherDigest, "kubexport/converter@" + digest, false},
		{"kubexport/converter:1.2@" + digest, "kubexport/converter@" + digest, false},
		// A repository entry matches any tag or digest of that repository, and only it.
		{"kubexport/converter:1", "kubexport/converter:", true},
		{"kubexport/converter", "kubexport/converter:", true},
		{"kubexport/converter@" + digest, "kubexport/converter:", true},
		{"kubexport/converter:1@" + digest, "kubexport/converter:", true},
		{"kubexport/converter-evil:1", "kubexport/converter:", false},
		{"kubexport/converter/evil:1", "kubexport/converter:", false},
		{"evil/kubexport/converter:1", "kubexport/converter:", false},
		{"kubexport/converte:1", "kubexport/converter:", false},
		{"kubexport/converter:1/evil", "kubexport/converter:", false},
		{"localhost:5000/converter:1", "localhost:5000/converter:", true},
		{"localhost:5000/converter", "localhost:5000/converter:", true},
		{"localhost:5001/converter:1", "localhost:5000/converter:", false},
		{"localhost:5000/converter-evil:1", "localhost:5000/converter:", false},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:", true},
		// A path entry matches everything below that path, and nothing beside it.
		{"registry/a/x:1", "registry/a/", true},
		{"registry/a/b/c@" + digest, "registry/a/", true},
		{"registry/ab/x", "registry/a/", false},
		{"registry/a", "registry/a/", false},
		{"registry/a/", "registry/a/", false},
		{"evil/registry/a/x", "registry/a/", false},
		{"localhost:5000/x:1", "localhost:5000/", true},
		{"localhost:50000/x:1", "localhost:5000/", false},
		// Nothing matches an empty entry or image.
		{"kubexport/converter:1", "", false},
		{"", "kubexport/converter:", false},
		{"", "", false},
	}
	for _, tc := range cases {
		if got := imageMatches(tc.image, tc.entry); got != tc.want {
			t.Errorf("imageMatches(%q, %q) = %v, want %v", tc.image, tc.entry, got, tc.want)
		}
	}
}

func TestImageAllowed(t *testing.T) {
	allowed := []string{"kubexport/converter:", "registry.local/team/", "other/tool:1"}
	cases := map[string]bool{
		"kubexport/converter:dev":    true,
		"registry.local/team/conv:2": true,
		"other/tool:1":               true,
		"other/tool:2":               false,
		"registry.local/teams/x:1":   false,
		"evil.example/converter:1":   false,
	}
	for image, want := range cases {
		if got := imageAllowed(image, allowed); got != want {
			t.Errorf("imageAllowed(%q) = %v, want %v", image, got, want)
		}
	}
	if imageAllowed("kubexport/converter:dev", nil) {
		t.Error("an empty allowlist allows an image")
	}
}

func TestParseAllowedImages(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    []string
		wantErr string
	}{
		"empty":                  {in: "", want: nil},
		"only blanks and commas": {in: " , ,", want: nil},
		"the dev overlay's list": {
			in: "kubexport/converter:,registry.k8s.io/pause:", want: []string{"kubexport/converter:", "registry.k8s.io/pause:"},
		},
		"spaces around entries":       {in: " a/b:1 , reg:5000/team/ ", want: []string{"a/b:1", "reg:5000/team/"}},
		"digest":                      {in: "a/b@sha256:00", want: []string{"a/b@sha256:00"}},
		"repository with a port":      {in: "localhost:5000/converter:", want: []string{"localhost:5000/converter:"}},
		"repository entry with a tag": {in: "kubexport/converter:1:", wantErr: `"kubexport/converter:1:"`},
		"repository entry with digest": {
			in: "kubexport/converter@sha256:00:", wantErr: `"kubexport/converter@sha256:00:"`,
		},
		"path entry with a digest": {in: "a@sha256:00/", wantErr: `"a@sha256:00/"`},
		"bare colon":               {in: ":", wantErr: `":"`},
		"bare slash":               {in: "a/b:1,/", wantErr: `"/"`},
		"inner white space":        {in: "a/b :1", wantErr: `"a/b :1"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAllowedImages(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseAllowedImages(%q) = %v, %v; want an error naming %s", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseAllowedImages(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestImageConverterImage(t *testing.T) {
	open := Config{ConverterImage: "kubexport/converter:1"}
	listed := open
	listed.AllowedConverterImages = []string{"kubexport/converter:", "registry.k8s.io/pause:"}
	ej := func(image string) *v1alpha1.ExportJob {
		w := testutil.MakeExportJob("deck", "team")
		if image != "" {
			w = w.Annotation(v1alpha1.AnnotationConverterImage, image)
		}
		return w.Obj()
	}
	cases := map[string]struct {
		ej          *v1alpha1.ExportJob
		cfg         Config
		wantImage   string
		wantIgnored bool
		wantErr     bool
	}{
		"no annotation, no list":        {ej: ej(""), cfg: open, wantImage: "kubexport/converter:1"},
		"no annotation, list":           {ej: ej(""), cfg: listed, wantImage: "kubexport/converter:1"},
		"annotation, no list: ignored":  {ej: ej("evil.example/c:1"), cfg: open, wantImage: "kubexport/converter:1", wantIgnored: true},
		"annotation naming the default": {ej: ej("kubexport/converter:1"), cfg: open, wantImage: "kubexport/converter:1"},
		"annotation in the list":        {ej: ej("registry.k8s.io/pause:3.10"), cfg: listed, wantImage: "registry.k8s.io/pause:3.10"},
		"annotation outside the list":   {ej: ej("evil.example/c:1"), cfg: listed, wantErr: true},
		"default allowed without its repo": {
			ej: ej("x/y:1"), cfg: Config{ConverterImage: "x/y:1", AllowedConverterImages: []string{"a/"}}, wantImage: "x/y:1",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := converterImage(tc.ej, tc.cfg)
			var notAllowed *ImageNotAllowedError
			if tc.wantErr != errors.As(err, &notAllowed) || (err != nil && !tc.wantErr) {
				t.Fatalf("converterImage error = %v, want an ImageNotAllowedError: %v", err, tc.wantErr)
			}
			if got != tc.wantImage {
				t.Errorf("converterImage = %q, want %q", got, tc.wantImage)
			}
			if ignored := imageOverrideIgnored(tc.ej, tc.cfg); ignored != tc.wantIgnored {
				t.Errorf("imageOverrideIgnored = %v, want %v", ignored, tc.wantIgnored)
			}
		})
	}
}
