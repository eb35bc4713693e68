package converter

import (
	"archive/zip"
	"bytes"
	"sort"
)

// zipOf builds a ZIP archive from name → content, in name order.
func zipOf(files map[string]string) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			panic(err)
		}
		_, _ = w.Write([]byte(files[n]))
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }
