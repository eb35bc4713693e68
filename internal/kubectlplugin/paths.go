package kubectlplugin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// pdfName is the PDF's file name for a document: its base name with the extension replaced.
func pdfName(doc string) string {
	base := filepath.Base(doc)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if stem == "" || stem == "." || stem == ".." {
		stem = "document"
	}
	return stem + v1alpha1.PDFExtension
}

// destinations says where each document's PDF goes: next to the document without out; into out
// when it is a directory (it exists as one, ends with a separator, or several documents share
// it); at out itself for a single document. isDir reports whether a path is an existing
// directory. Two documents that would write the same PDF are refused before anything starts.
func destinations(docs []string, out string, isDir func(string) bool) ([]string, error) {
	if len(docs) == 0 {
		return nil, errors.New("name at least one document to convert")
	}
	dirOut := out != "" && (isDir(out) || strings.HasSuffix(out, string(filepath.Separator)) || strings.HasSuffix(out, "/") || len(docs) > 1)
	dests := make([]string, len(docs))
	seen := map[string]string{}
	for i, d := range docs {
		switch {
		case out == "":
			dests[i] = filepath.Join(filepath.Dir(d), pdfName(d))
		case dirOut:
			dests[i] = filepath.Join(out, pdfName(d))
		default:
			dests[i] = filepath.Clean(out)
		}
		if filepath.Clean(d) == dests[i] {
			return nil, fmt.Errorf("the PDF of %s would overwrite the document itself: choose another place with -o", d)
		}
		if prev, ok := seen[dests[i]]; ok {
			return nil, fmt.Errorf("%s and %s would both be converted to %s: convert them separately, or into different places with -o", prev, d, dests[i])
		}
		seen[dests[i]] = d
	}
	return dests, nil
}

// isDirectory reports whether path is an existing directory.
func isDirectory(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
