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
	"strings"
	"time"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout       = 120 * time.Second
	DefaultMaxInputBytes = 100 << 20
)

// Config holds the converter's limits and tools. The zero value is usable.
type Config struct {
	// Soffice runs LibreOffice.
	Soffice Soffice
	// Timeout is the budget for LibreOffice's conversion; DefaultTimeout if zero.
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

func (c Config) withDefaults() Config {
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
func (c Config) ConvertFile(ctx context.Context, input, output string, opts Options) (Output, error) {
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

	pdf, err := c.runSoffice(ctx, workDir, prepared, det, opts)
	if err != nil {
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
func (c Config) prepare(input, workDir, password string) (string, docformat.Detection, error) {
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
	// LibreOffice's command line cannot pass a password, and we decrypt only OOXML. Encrypted
	// XLS files go on to LibreOffice: most use Excel's built-in default password, which it opens.
	if det.Encrypted && det.Format != docformat.XLS {
		if password == "" {
			return "", docformat.Detection{}, permanent(contract.ReasonPasswordProtected, nil,
				"the %s file is encrypted and no password was given", det.Format)
		}
		return "", docformat.Detection{}, permanent(contract.ReasonPasswordProtected, nil,
			"the %s file's encryption cannot be opened by the converter even with a password "+
				"(only encrypted Office 2007+ files can); save it without a password",
			det.Format)
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

// runSoffice runs LibreOffice under the timeout and returns the path of the PDF it wrote, or the
// classified reason why there is none.
func (c Config) runSoffice(ctx context.Context, workDir, input string, det docformat.Detection, opts Options) (string, error) {
	runCtx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	res, outDir, err := c.Soffice.run(runCtx, workDir, ConvertToArg(det.Format.Family(), opts), input)
	if err != nil {
		return "", transient(contract.ReasonConversionFailed, err, "cannot run LibreOffice")
	}
	c.Logger.Info("LibreOffice finished", "duration", time.Since(start).Round(time.Millisecond),
		"timedOut", res.TimedOut, "exitCode", res.ExitCode, "signal", int(res.Signal))
	if res.TimedOut {
		if ctx.Err() != nil { // the caller gave up (SIGTERM), not our budget
			return "", transient(contract.ReasonConversionFailed, ctx.Err(), "the conversion was interrupted")
		}
		return "", permanent(contract.ReasonConversionTimeout, nil, "LibreOffice did not finish within %s", c.Timeout)
	}
	pdf := filepath.Join(outDir, strings.TrimSuffix(filepath.Base(input), filepath.Ext(input))+".pdf")
	if st, err := os.Stat(pdf); err == nil && st.Size() > 0 {
		return pdf, nil
	}
	detail := lastLines(res.Log, 3)
	switch {
	case res.Signal != 0:
		return "", transient(contract.ReasonConversionFailed, errors.New(detail), "LibreOffice crashed (%s)", res.Signal)
	case opts.PageRange != "" && strings.Contains(res.Log, "Please verify input parameters"):
		// The PDF export refuses to store when the range selects no page of the document.
		return "", permanent(contract.ReasonInvalidParameters, errors.New(detail), "the page range %q selects no page of the document", opts.PageRange)
	case det.Encrypted:
		return "", permanent(contract.ReasonPasswordProtected, errors.New(detail), "the %s file is encrypted and LibreOffice could not open it", det.Format)
	default:
		return "", permanent(contract.ReasonConversionFailed, errors.New(detail), "LibreOffice wrote no PDF (exit code %d)", res.ExitCode)
	}
}

// lastLines returns the last n non-empty lines of s, joined with "; ", without LibreOffice's
// harmless javaldx warning.
func lastLines(s string, n int) string {
	var keep []string
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "javaldx") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	if len(keep) == 0 {
		return "no output from soffice"
	}
	return strings.Join(keep, "; ")
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
