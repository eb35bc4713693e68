package converter_test

import (
	"path/filepath"
	"testing"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
)

// TestCorpus converts every manifest file in local mode and in Job mode through MinIO.
func TestCorpus(t *testing.T) {
	dir, cases := corpus.Load(t)
	t.Logf("corpus: %d files from %s", len(cases), dir)
	requireSoffice(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket("corpus-src")
	m.MakeBucket("corpus-out")
	for _, tc := range cases {
		input := filepath.Join(dir, tc.Path)
		t.Run("local/"+tc.Path, func(t *testing.T) {
			t.Parallel()
			r, out := convertLocal(t, input)
			if tc.Valid() {
				expectSuccess(t, r, out, tc.Pages)
				return
			}
			expectFailure(t, r, out, contract.ExitPermanent, tc.Reason)
		})
		t.Run("job/"+tc.Path, func(t *testing.T) {
			t.Parallel()
			j := newJobEnv(t, m, "corpus-src", "corpus-out", filepath.Base(tc.Path))
			j.upload(t, input)
			r := j.run(t)
			if tc.Valid() {
				j.expectUploaded(t, r, tc.Pages)
				return
			}
			expectFailure(t, r, "", contract.ExitPermanent, tc.Reason)
			j.expectNoOutput(t)
		})
	}
}
