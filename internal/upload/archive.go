package upload

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/docformat"
)

// maxZipDirectoryBytes bounds what checkArchive reads of a stored package (the end record and the
// central directory), and so the memory it parses into. A document within the converter's
// 10 000 entries has a directory of a megabyte at most; one larger is refused.
const maxZipDirectoryBytes = 8 << 20

// zipWindowBytes is how much one read from storage fetches: archive/zip reads the directory 4 KiB
// at a time, each a request of its own without the window.
const zipWindowBytes = 256 << 10

// codeArchiveTooLarge refuses a package that expands beyond the converter's limits: a zip bomb.
const codeArchiveTooLarge = "archive_too_large"

// checkArchive reads the central directory of a stored ZIP-based document and refuses one that
// expands beyond the converter's limits (docformat.CheckZipLimits: entries, total size, ratio)
// with a 413, before an ExportJob exists. A package whose directory does not parse is left to
// the converter, which reports damaged documents in detail.
func (s *Server) checkArchive(ctx context.Context, key string, size int64) error {
	obj, err := s.storage.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return storageErr("reading back the document", err)
	}
	defer obj.Close()
	ra := &windowReaderAt{r: obj, size: size, budget: maxZipDirectoryBytes}
	zr, err := zip.NewReader(ra, size)
	var store *storageError
	switch {
	case errors.Is(err, errReadBudget):
		return newError(http.StatusRequestEntityTooLarge, codeArchiveTooLarge,
			"The document's table of contents is larger than %s, far more than a document we convert has. Check the file.",
			formatBytes(maxZipDirectoryBytes)).with("limitBytes", maxZipDirectoryBytes).wrap(err)
	case errors.As(err, &store):
		return err
	case err != nil && !errors.Is(err, zip.ErrInsecurePath): // we never extract, so odd names are harmless
		loggerFrom(ctx).Info("Stored package does not open as a ZIP archive; leaving it to the converter", "key", key, "err", err.Error())
		return nil
	}
	var de *docformat.Error
	if err := docformat.CheckZipLimits(zr.File, docformat.DefaultZipLimits()); errors.As(err, &de) {
		return newError(http.StatusRequestEntityTooLarge, codeArchiveTooLarge,
			"The document cannot be converted: %s. Real documents compress 5 to 20-fold; check the file.", de.Message).wrap(err)
	}
	return nil
}

// errReadBudget is returned when windowReaderAt has read its budget.
var errReadBudget = errors.New("read budget exhausted")

// windowReaderAt reads an object through one cached window of zipWindowBytes, fetching at most
// budget bytes in all. Errors from storage are storageErrors.
type windowReaderAt struct {
	r      io.ReaderAt
	size   int64
	budget int64
	buf    []byte
	off    int64 // of buf in the object
}

func (w *windowReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= w.size {
			return n, io.EOF
		}
		if pos < w.off || pos >= w.off+int64(len(w.buf)) {
			if err := w.fetch(pos, len(p)-n); err != nil {
				return n, err
			}
		}
		n += copy(p[n:], w.buf[pos-w.off:])
	}
	return n, nil
}

// fetch fills the window from pos with at least want bytes (up to the end of the object).
func (w *windowReaderAt) fetch(pos int64, want int) error {
	length := min(max(int64(want), zipWindowBytes), w.size-pos)
	if length > w.budget {
		return errReadBudget
	}
	w.budget -= length
	if int64(cap(w.buf)) < length {
		w.buf = make([]byte, length)
	}
	w.buf, w.off = w.buf[:length], pos
	if n, err := w.r.ReadAt(w.buf, pos); int64(n) < length {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		w.buf = w.buf[:0]
		return storageErr(fmt.Sprintf("reading back bytes %d-%d of the document", pos, pos+length-1), err)
	}
	return nil
}
