package contract

import (
	"testing"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// TestReasonsMirrorAPI keeps the converter's reasons equal to the API's, which define them.
func TestReasonsMirrorAPI(t *testing.T) {
	pairs := []struct{ contract, api string }{
		{ReasonSucceeded, v1alpha1.ReasonSucceeded},
		{ReasonPasswordProtected, v1alpha1.ReasonPasswordProtected},
		{ReasonCorrupt, v1alpha1.ReasonCorrupt},
		{ReasonUnsupportedFormat, v1alpha1.ReasonUnsupportedFormat},
		{ReasonTooLarge, v1alpha1.ReasonTooLarge},
		{ReasonConversionTimeout, v1alpha1.ReasonConversionTimeout},
		{ReasonConversionFailed, v1alpha1.ReasonConversionFailed},
		{ReasonStorageError, v1alpha1.ReasonStorageError},
		{ReasonSourceNotFound, v1alpha1.ReasonSourceNotFound},
		{ReasonInvalidParameters, v1alpha1.ReasonInvalidParameters},
	}
	for _, p := range pairs {
		if p.contract != p.api {
			t.Errorf("contract reason %q differs from the API's %q", p.contract, p.api)
		}
	}
}
