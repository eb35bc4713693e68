package uploadkeys

import "testing"

func TestOwner(t *testing.T) {
	cases := []struct {
		key        string
		wantID     string
		wantPrefix string
		wantOK     bool
	}{
		{"uploads/ex-abcdefghijklmnop/deck.pptx", "ex-abcdefghijklmnop", "uploads/", true},
		{"results/ex-abcdefghijklmnop/Deck review.pdf", "ex-abcdefghijklmnop", "results/", true},
		{"results/ex-abcdefghijklmnop/sub/dir.pdf", "ex-abcdefghijklmnop", "results/", true},
		{"uploads/quarterly-review.pptx", "", "", false},         // a user's object (the README's example key)
		{"uploads/ex-abcdefghijklmnop/", "", "", false},          // no name
		{"uploads/ex-abcdefghijklmnop", "", "", false},           // no slash
		{"uploads/ex-ABCDEFGHIJKLMNOP/deck.pptx", "", "", false}, // not an id
		{"uploads/ex-abcdefghijklmno1/deck.pptx", "", "", false}, // 1 is not base32
		{"uploads/ex-abcdefghijklmnopq/deck.pptx", "", "", false},
		{"team/ex-abcdefghijklmnop/deck.pdf", "", "", false}, // the operator's default output layout
		{"Uploads/ex-abcdefghijklmnop/deck.pptx", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range cases {
		id, prefix, ok := Owner(tc.key)
		if id != tc.wantID || prefix != tc.wantPrefix || ok != tc.wantOK {
			t.Errorf("Owner(%q) = %q, %q, %v; want %q, %q, %v", tc.key, id, prefix, ok, tc.wantID, tc.wantPrefix, tc.wantOK)
		}
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !ValidID(id) || len(id) != 19 || len(id) != IDLength || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
		if got, _, ok := Owner(SourceKey(id, "a.pptx")); !ok || got != id {
			t.Fatalf("Owner(SourceKey(%s)) = %q, %v", id, got, ok)
		}
		if got, _, ok := Owner(ResultKey(id, "a.pdf")); !ok || got != id {
			t.Fatalf("Owner(ResultKey(%s)) = %q, %v", id, got, ok)
		}
	}
	for _, bad := range []string{"", "ex-", "ex-AAAAAAAAAAAAAAAA", "ex-aaaaaaaaaaaaaaa1", "ex-aaaaaaaaaaaaaaaaa", "../etc", "ex-aaaaaaaa/aaaaaaa"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
