package converter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kubexport/kubexport/converter/internal/lok"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
)

// Defaults for Converter fields left zero.
const (
	DefaultTimeout       = 120 * time.Second
	DefaultMaxInputBytes = 100 << 20
)

// Converter converts documents: its limits, its LibreOfficeKit workers and where it works. The
// zero value is usable.
type Converter struct {
	// LibreOffice configures the LibreOfficeKit workers.
	LibreOffice LibreOffice
	// Engine is a warm engine to convert with, shared by the documents of a batch; when nil,
	// ConvertFile starts a worker for its document and stops it afterwards.
	Engine *Engine
	// Timeout is the budget for LibreOffice's work on one document (including starting a
	// worker when none is running); DefaultTimeout if zero.
	Timeout time.Duration
	// MaxInputBytes caps the input size; DefaultMaxInputBytes if zero.
	MaxInputBytes int64
	// ZipLimits guard ZIP-based inputs; DefaultZipLimits() if zero.
	ZipLimits ZipLimits
	// ScratchDir is where per-conversion work directories are made; os.TempDir() if empty.
	ScratchDir string
	// Logger receives progress logs; slog.Default() if nil.
	Logger *slog.Logger
}

func (c Converter) withDefaults() Converter {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxInputBytes <= 0 {
		c.MaxInputBytes = DefaultMaxInputBytes
	}
	if c.ZipLimits == (ZipLimits{}) {
		c.ZipLimits = DefaultZipLimits()
	}
	if c.ScratchDir == "" {
		c.ScratchDir = os.TempDir()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ConvertFile converts the office document at input into a PDF at output. On failure the error
// is (or wraps) an *Error with the contract reason; output is then not created.
func (c Converter) ConvertFile(ctx context.Context, input, output string, opts Options) (Output, error) {
	c = c.withDefaults()
	opts, err := opts.Validate()
	if err != nil {
		return Output{}, err
	}
	if err := os.MkdirAll(c.ScratchDir, 0o700); err != nil {
		return Output{}, transient(contract.ReasonConversionFailed, err, "cannot create the scratch directory")
	}
	workDir, err := os.MkdirTemp(c.ScratchDir, "convert-")
	if err != nil {
		return Output{}, transient(contract.ReasonConversionFailed, err, "cannot create a scratch directory")
	}
	defer os.RemoveAll(workDir)

	prepared, det, err := c.prepare(input, workDir, opts.Password)
	if err != nil {
		return Output{}, err
	}
	log := c.Logger.With("format", string(det.Format))
	log.Info("Converting document", "options", opts.String())

	engine := c.Engine
	if engine == nil {
		engine = NewEngine(c.LibreOffice, c.ScratchDir, c.Logger)
		defer engine.Close()
	}
	pdf := filepath.Join(workDir, "document.pdf")
	start := time.Now()
	resp, err := engine.convert(ctx, c.Timeout, workerRequest{
		Input:         fileURL(prepared),
		Output:        fileURL(pdf),
		FilterOptions: FilterOptionsJSON(det.Format.Family(), opts),
		Password:      opts.Password,
	})
	if err != nil {
		return Output{}, err
	}
	log.Info("LibreOffice finished", "duration", time.Since(start).Round(time.Millisecond),
		"loadMs", resp.LoadMs, "saveMs", resp.SaveMs, "passwordRequests", resp.PasswordRequests)
	if err := judgeWorkerResponse(resp, det, opts); err != nil {
		return Output{}, err
	}
	info, err := InspectPDF(pdf)
	if err != nil {
		return Output{}, permanent(contract.ReasonConversionFailed, err, "LibreOffice wrote a PDF that does not parse")
	}
	if info.Pages < 1 {
		return Output{}, permanent(contract.ReasonConversionFailed, nil, "LibreOffice wrote a PDF without pages")
	}
	size, sum, err := moveFile(pdf, output)
	if err != nil {
		return Output{}, transient(contract.ReasonConversionFailed, err, "cannot write the PDF")
	}
	return Output{Pages: info.Pages, SizeBytes: size, SHA256: sum, Format: det.Format}, nil
}

// prepare checks the input and returns the path of the file LibreOffice should open, named with
// the extension of its detected format.
func (c Converter) prepare(input, workDir, password string) (string, docformat.Detection, error) {
	f, err := os.Open(input)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", docformat.Detection{}, permanent(contract.ReasonSourceNotFound, err, "the input file does not exist")
		}
		return "", docformat.Detection{}, transient(contract.ReasonConversionFailed, err, "cannot open the input file")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", docformat.Detection{}, transient(contract.ReasonConversionFailed, err, "cannot stat the input file")
	}
	if !st.Mode().IsRegular() {
		return "", docformat.Detection{}, permanent(contract.ReasonInvalidParameters, nil, "the input is not a regular file")
	}
	if st.Size() > c.MaxInputBytes {
		return "", docformat.Detection{}, permanent(contract.ReasonTooLarge, nil,
			"the input has %d bytes, more than the limit of %d", st.Size(), c.MaxInputBytes)
	}
	det, err := detect(f, st.Size())
	if err != nil {
		return "", docformat.Detection{}, err
	}
	if det.EncryptedOOXML {
		plain, err := decryptInput(det.OLE, password, filepath.Join(workDir, "decrypted"))
		if err != nil {
			return "", docformat.Detection{}, err
		}
		return c.prepare(plain, workDir, "")
	}
	// LibreOffice opens encrypted DOC, XLS and ODF with the password (the worker answers its
	// password request). It raises no request for an encrypted PPT in 7.4 and fails as if the
	// file were damaged, so that is decided here. Without a password an encrypted file cannot
	// open, except an XLS: most encrypted workbooks use Excel's built-in default password, which
	// LibreOffice tries on its own.
	switch {
	case det.Encrypted && det.Format == docformat.PPT:
		return "", docformat.Detection{}, permanent(contract.ReasonPasswordProtected, nil,
			"the PowerPoint 97-2003 (ppt) file is encrypted, and LibreOffice 7.4 cannot open encrypted ppt files, "+
				"so a password cannot help; save it without a password or as pptx")
	case det.Encrypted && password == "" && det.Format != docformat.XLS:
		return "", docformat.Detection{}, permanent(contract.ReasonPasswordProtected, nil, "the %s file is encrypted and no password was given", det.Format)
	}
	if det.Zip != nil {
		if err := CheckZipLimits(det.Zip.File, c.ZipLimits); err != nil {
			return "", docformat.Detection{}, err
		}
		if err := VerifyZipEntries(det.Zip.File); err != nil {
			return "", docformat.Detection{}, err
		}
	}
	dst := filepath.Join(workDir, "in", "document."+string(det.Format))
	if err := linkOrCopy(input, dst); err != nil {
		return "", docformat.Detection{}, transient(contract.ReasonConversionFailed, err, "cannot stage the input for LibreOffice")
	}
	return dst, det, nil
}

// decryptInput decrypts the encrypted OOXML package held by the compound file that detection
// parsed into dst.
func decryptInput(cf *docformat.CompoundFile, password, dst string) (string, error) {
	if password == "" {
		return "", permanent(contract.ReasonPasswordProtected, nil, "the document is encrypted and no password was given")
	}
	info, err := cf.ReadStream(docformat.StreamEncryptionInfo, 1<<20)
	if err != nil {
		return "", permanent(contract.ReasonCorrupt, err, "the encrypted document's EncryptionInfo is damaged")
	}
	pkg, err := cf.ReadStream(docformat.StreamEncryptedPackage, -1)
	if err != nil {
		return "", permanent(contract.ReasonCorrupt, err, "the encrypted document's package is damaged")
	}
	plain, err := decryptOOXML(info, pkg, password)
	switch {
	case errors.Is(err, errWrongPassword):
		return "", permanent(contract.ReasonPasswordProtected, nil, "the password does not open the document")
	case errors.Is(err, errUnsupportedEncryption):
		return "", permanent(contract.ReasonPasswordProtected, err, "the document's encryption is not supported")
	case err != nil:
		return "", permanent(contract.ReasonCorrupt, err, "the encrypted document cannot be decrypted")
	}
	if err := os.WriteFile(dst, plain, 0o600); err != nil {
		return "", transient(contract.ReasonConversionFailed, err, "cannot write the decrypted document")
	}
	return dst, nil
}

// linkOrCopy makes dst a hard link to src, or a copy when linking is impossible.
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	_, _, err := copyFile(src, dst)
	return err
}

// moveFile moves src to dst (rename, or copy and remove across filesystems) and returns dst's
// size and SHA-256.
func moveFile(src, dst string) (int64, string, error) {
	if err := os.Rename(src, dst); err == nil {
		return hashFile(dst)
	}
	size, sum, err := copyFile(src, dst)
	if err != nil {
		return 0, "", err
	}
	return size, sum, os.Remove(src)
}

func copyFile(src, dst string) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return 0, "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(name string) (int64, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("hashing %s: %w", name, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// judgeWorkerResponse classifies what LibreOffice did with a document: a load refused for its
// password, a load failure, a document of another kind than detected (LibreOffice imports what
// it cannot parse as text), or a failed export.
func judgeWorkerResponse(resp workerResponse, det docformat.Detection, opts Options) error {
	if resp.LoadError != "" {
		cause := errors.New(resp.LoadError)
		switch {
		case resp.PasswordRequests > 0 && opts.Password == "":
			return permanent(contract.ReasonPasswordProtected, nil, "the %s file is encrypted and no password was given", det.Format)
		case resp.PasswordRequests > 1:
			return permanent(contract.ReasonPasswordProtected, nil, "the password does not open the %s file", det.Format)
		case resp.PasswordRequests == 1 || det.Encrypted:
			return permanent(contract.ReasonPasswordProtected, cause,
				"the %s file is encrypted and LibreOffice could not open it with the password given", det.Format)
		default:
			return permanent(contract.ReasonConversionFailed, cause, "LibreOffice could not load the %s file", det.Format)
		}
	}
	if want, ok := familyDocumentType[det.Format.Family()]; ok && lok.DocumentType(resp.DocumentType) != want {
		return permanent(contract.ReasonCorrupt, nil,
			"LibreOffice opened the %s file as a %s, not as a %s: its content is damaged or not what its package declares",
			det.Format, lok.DocumentType(resp.DocumentType), det.Format.Family())
	}
	if resp.SaveError != "" {
		cause := errors.New(resp.SaveError)
		if opts.PageRange != "" {
			// The PDF export refuses to write when the range selects no page of the document.
			return permanent(contract.ReasonInvalidParameters, cause, "the page range %q selects no page of the document", opts.PageRange)
		}
		return permanent(contract.ReasonConversionFailed, cause, "LibreOffice could not export the %s file to PDF", det.Format)
	}
	return nil
}

// familyDocumentType is the LibreOfficeKit document type each family must load as.
var familyDocumentType = map[Family]lok.DocumentType{
	FamilyWriter:  lok.TypeText,
	FamilyCalc:    lok.TypeSpreadsheet,
	FamilyImpress: lok.TypePresentation,
}
