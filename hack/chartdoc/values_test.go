package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDoc(t *testing.T) {
	for _, tc := range []struct {
		name    string
		comment string
		want    doc
		wantOK  bool
	}{
		{name: "no comment"},
		{name: "a plain comment documents nothing", comment: "# just a note"},
		{
			name:    "one line",
			comment: "# -- Operator replicas.",
			want:    doc{description: "Operator replicas."},
			wantOK:  true,
		},
		{
			name:    "continued, with a note above that is left out",
			comment: "# Section header\n\n# -- Converter Jobs running\n# at once.",
			want:    doc{description: "Converter Jobs running at once."},
			wantOK:  true,
		},
		{
			name:    "default and type overrides",
			comment: "# -- Batch size.\n# @type -- int\n# @default -- the operator's (8)",
			want:    doc{description: "Batch size.", typ: "int", defaultText: "the operator's (8)"},
			wantOK:  true,
		},
		{
			name:    "an empty description",
			comment: "# --",
			want:    doc{},
			wantOK:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseDoc(tc.comment)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(doc{})); diff != "" {
				t.Errorf("parseDoc (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRows(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  string
		want    []row
		wantErr string
	}{
		{
			name: "leaves, a documented map and a null with overrides, in file order",
			values: `# header of the file

# -- Name prefix.
fullnameOverride: ""
manager:
  # -- Operator replicas.
  replicas: 2
  # -- Its resources.
  resources:
    limits: {cpu: 500m}
  # -- Batch size.
  # @type -- int
  # @default -- the operator's
  maxBatchSize: null
  # -- Extra arguments.
  extraArgs: []
  # -- Pipes | escaped later.
  ratio: 0.5
  # -- On or off.
  enabled: true
`,
			want: []row{
				{Key: "fullnameOverride", Type: "string", Default: "`\"\"`", Description: "Name prefix."},
				{Key: "manager.replicas", Type: "int", Default: "`2`", Description: "Operator replicas."},
				{Key: "manager.resources", Type: "object", Default: "`{\"limits\":{\"cpu\":\"500m\"}}`", Description: "Its resources."},
				{Key: "manager.maxBatchSize", Type: "int", Default: "the operator's", Description: "Batch size."},
				{Key: "manager.extraArgs", Type: "list", Default: "`[]`", Description: "Extra arguments."},
				{Key: "manager.ratio", Type: "float", Default: "`0.5`", Description: "Pipes | escaped later."},
				{Key: "manager.enabled", Type: "bool", Default: "`true`", Description: "On or off."},
			},
		},
		{
			name:    "undocumented values are named",
			values:  "a:\n  # -- Documented.\n  b: 1\n  c: 2\nd: []\nempty: {}\n",
			wantErr: `values without a "# --" comment on themselves or a map above them: a.c, d, empty`,
		},
		{
			name:    "a comment that says nothing",
			values:  "# --\na: 1\n",
			wantErr: `a: the "# --" comment says nothing`,
		},
		{
			name:    "not a mapping",
			values:  "- a\n",
			wantErr: "values file is not a mapping",
		},
		{
			name:    "empty",
			values:  "",
			wantErr: "values file is empty",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rows([]byte(tc.values))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTable(t *testing.T) {
	got := table([]row{
		{Key: "a.b", Type: "string", Default: "`\"x|y\"`", Description: "One | two."},
		{Key: "c", Type: "int", Default: "the operator's", Description: "Three."},
	})
	want := "| Key | Type | Default | Description |\n" +
		"| --- | --- | --- | --- |\n" +
		"| `a.b` | string | `\"x\\|y\"` | One \\| two. |\n" +
		"| `c` | int | the operator's | Three. |\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestSplice(t *testing.T) {
	readme := "# Chart\n\nIntro.\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nAfter.\n"
	got, err := splice(readme, "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Chart\n\nIntro.\n\n" + beginMarker + "\n\n| new |\n\n" + endMarker + "\n\nAfter.\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("splice (-want +got):\n%s", diff)
	}
	// Splicing again gives the same text: the generator is idempotent.
	again, err := splice(got, "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Errorf("second splice changed the README:\n%s", cmp.Diff(got, again))
	}

	for _, bad := range []string{
		"no markers",
		endMarker + "\n" + beginMarker + "\n",
		beginMarker + " only",
	} {
		if _, err := splice(bad, "| t |\n"); err == nil || !strings.Contains(err.Error(), "the README needs the lines") {
			t.Errorf("splice(%q) error = %v, want one naming the markers", bad, err)
		}
	}
}
