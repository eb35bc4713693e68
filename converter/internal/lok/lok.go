//go:build cgo

// Package lok is a small binding to LibreOfficeKit 7.4: initialise LibreOffice from its install
// path, load a document (answering a password request in C), read its type and save it through
// an export filter. LibreOfficeKitInit.h loads LibreOffice's library at run time, so a binary
// using this package links only libc; it needs the libreofficekit-dev headers to build.
//
// LibreOfficeKit has one instance per process and is not safe for concurrent use: call
// everything from one goroutine locked to its OS thread (runtime.LockOSThread), and run it in a
// process of its own (LibreOffice installs signal handlers, may hang, and cannot be unloaded).
package lok

/*
#cgo LDFLAGS: -ldl
#include <stdbool.h>
#include <string.h>
#include <LibreOfficeKit/LibreOfficeKitInit.h>
#include <LibreOfficeKit/LibreOfficeKit.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

// From LibreOfficeKitEnums.h, which does not compile as C in 7.4.
#define KX_CALLBACK_DOCUMENT_PASSWORD 20
#define KX_CALLBACK_DOCUMENT_PASSWORD_TO_MODIFY 21
#define KX_FEATURE_DOCUMENT_PASSWORD (1ULL << 0)
#define KX_FEATURE_DOCUMENT_PASSWORD_TO_MODIFY (1ULL << 1)

static LibreOfficeKit *kx_kit;

// The load in progress. LibreOffice calls kx_callback during documentLoad, possibly on another
// thread, and blocks until setDocumentPassword answers; the answer must carry our own load URL
// (the callback's payload is not always a URL). The password is offered once: a second request
// means it was wrong, and NULL ends the load.
static const char *kx_url;
static const char *kx_password;
static volatile int kx_requests;

static void kx_callback(int type, const char *payload, void *data) {
	(void)payload; (void)data;
	switch (type) {
	case KX_CALLBACK_DOCUMENT_PASSWORD:
		kx_requests++;
		kx_kit->pClass->setDocumentPassword(kx_kit, kx_url, kx_requests == 1 ? kx_password : NULL);
		break;
	case KX_CALLBACK_DOCUMENT_PASSWORD_TO_MODIFY:
		// No password to modify: LibreOffice opens the document read-only, enough to export it.
		kx_kit->pClass->setDocumentPassword(kx_kit, kx_url, NULL);
		break;
	}
}

// kx_onstack adds SA_ONSTACK to every handler LibreOffice installed without it: the Go runtime
// aborts when a signal arrives through such a handler on a goroutine stack.
static void kx_onstack(void) {
	for (int s = 1; s < NSIG; s++) {
		struct sigaction sa;
		if (sigaction(s, NULL, &sa) != 0) continue;
		if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) continue;
		if (sa.sa_flags & SA_ONSTACK) continue;
		sa.sa_flags |= SA_ONSTACK;
		sigaction(s, &sa, NULL);
	}
}

static int kx_init(const char *install, const char *profile) {
	kx_kit = lok_init_2(install, profile);
	if (kx_kit == NULL) return 0;
	kx_onstack();
	kx_kit->pClass->setOptionalFeatures(kx_kit, KX_FEATURE_DOCUMENT_PASSWORD | KX_FEATURE_DOCUMENT_PASSWORD_TO_MODIFY);
	kx_kit->pClass->registerCallback(kx_kit, kx_callback, NULL);
	return 1;
}

static LibreOfficeKitDocument *kx_load(const char *url, const char *password, int *requests) {
	kx_url = url;
	kx_password = password;
	kx_requests = 0;
	LibreOfficeKitDocument *doc = kx_kit->pClass->documentLoadWithOptions(kx_kit, url, "Batch=true");
	kx_onstack(); // loading may install more handlers (e.g. a filter's)
	*requests = kx_requests;
	kx_url = NULL;
	kx_password = NULL;
	return doc;
}

static void kx_shutdown(void) { kx_kit->pClass->destroy(kx_kit); kx_kit = NULL; }
static int kx_ready(void) { return kx_kit != NULL; }
static char *kx_error(void) { return kx_kit->pClass->getError(kx_kit); }
static void kx_free_error(char *s) {
	if (s == NULL) return;
	if (kx_kit->pClass->freeError) kx_kit->pClass->freeError(s); else free(s);
}
static int kx_type(LibreOfficeKitDocument *d) { return d->pClass->getDocumentType(d); }
static int kx_save(LibreOfficeKitDocument *d, const char *url, const char *format, const char *opts) {
	int ok = d->pClass->saveAs(d, url, format, opts);
	kx_onstack();
	return ok;
}
static void kx_destroy(LibreOfficeKitDocument *d) { d->pClass->destroy(d); }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Init starts LibreOffice from installDir (its program directory, e.g.
// /usr/lib/libreoffice/program) with the user profile at profileURL (a file:// URL). It enables
// the document-password callback. Only the first call in a process starts LibreOffice.
func Init(installDir, profileURL string) error {
	if C.kx_ready() != 0 {
		return nil
	}
	ci, cp := C.CString(installDir), C.CString(profileURL)
	defer C.free(unsafe.Pointer(ci))
	defer C.free(unsafe.Pointer(cp))
	if C.kx_init(ci, cp) == 0 {
		return fmt.Errorf("lok_init_2(%s): LibreOffice did not start", installDir)
	}
	return nil
}

// Document is a loaded document. Close it when done.
type Document struct {
	d *C.LibreOfficeKitDocument
}

// LoadResult tells how a load went apart from the document.
type LoadResult struct {
	// PasswordRequests counts LibreOffice's requests for the document's password: 0 for an
	// unencrypted document, 1 when the given password opened it, 2 when it was wrong (the second
	// request was refused).
	PasswordRequests int
}

// ErrNotInitialised is returned by calls before Init succeeded.
var ErrNotInitialised = errors.New("LibreOfficeKit is not initialised")

// Load opens the document at url (an absolute, percent-encoded file:// URL) without dialogs.
// password answers the first password request, if any; an empty password refuses it.
func Load(url, password string) (*Document, LoadResult, error) {
	if C.kx_ready() == 0 {
		return nil, LoadResult{}, ErrNotInitialised
	}
	cu := C.CString(url)
	defer C.free(unsafe.Pointer(cu))
	var cpw *C.char
	if password != "" {
		cpw = C.CString(password)
		defer func() {
			C.memset(unsafe.Pointer(cpw), 0, C.size_t(len(password)))
			C.free(unsafe.Pointer(cpw))
		}()
	}
	var requests C.int
	d := C.kx_load(cu, cpw, &requests)
	res := LoadResult{PasswordRequests: int(requests)}
	if d == nil {
		return nil, res, fmt.Errorf("loading %s: %s", url, lastError())
	}
	return &Document{d: d}, res, nil
}

// DocumentType is LibreOfficeKit's LibreOfficeKitDocumentType.
type DocumentType int

// Document types (LibreOfficeKitTypes.h / LibreOfficeKitEnums.h of 7.4).
const (
	TypeText         DocumentType = 0
	TypeSpreadsheet  DocumentType = 1
	TypePresentation DocumentType = 2
	TypeDrawing      DocumentType = 3
	TypeOther        DocumentType = 4
)

func (t DocumentType) String() string {
	switch t {
	case TypeText:
		return "text document"
	case TypeSpreadsheet:
		return "spreadsheet"
	case TypePresentation:
		return "presentation"
	case TypeDrawing:
		return "drawing"
	default:
		return fmt.Sprintf("document of type %d", int(t))
	}
}

// Type returns the kind of document LibreOffice loaded.
func (d *Document) Type() DocumentType { return DocumentType(C.kx_type(d.d)) }

// SaveAs stores the document at url (a file:// URL) in format (e.g. "pdf") with the export
// filter's options (for PDF, a JSON object of FilterData properties).
func (d *Document) SaveAs(url, format, options string) error {
	cu, cf, co := C.CString(url), C.CString(format), C.CString(options)
	defer C.free(unsafe.Pointer(cu))
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(co))
	if C.kx_save(d.d, cu, cf, co) == 0 {
		return fmt.Errorf("saving as %s: %s", format, lastError())
	}
	return nil
}

// Close releases the document.
func (d *Document) Close() {
	if d.d != nil {
		C.kx_destroy(d.d)
		d.d = nil
	}
}

// lastError is LibreOfficeKit's last error message.
func lastError() string {
	e := C.kx_error()
	if e == nil {
		return "no error message from LibreOffice"
	}
	defer C.kx_free_error(e)
	if s := C.GoString(e); s != "" {
		return s
	}
	return "no error message from LibreOffice"
}

// Exit ends the process at once with code, without running LibreOffice's or Go's shutdown:
// LibreOfficeKit 7.4 cannot be destroyed reliably.
func Exit(code int) {
	C._exit(C.int(code))
}

// Shutdown shuts LibreOffice down properly, writing its profile (configuration, extension
// registrations) to disk. Only for preparing a profile: a converting process ends with Exit.
func Shutdown() {
	if C.kx_ready() != 0 {
		C.kx_shutdown()
	}
}

// Available reports whether this build can run LibreOfficeKit (built with cgo).
const Available = true
