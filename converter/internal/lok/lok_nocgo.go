//go:build !cgo

package lok

import (
	"errors"
	"os"
)

// errNoCgo explains why a static build cannot convert.
var errNoCgo = errors.New("this converter was built without cgo, so it cannot run LibreOfficeKit: build it with CGO_ENABLED=1 and the libreofficekit-dev headers")

// ErrNotInitialised is returned by calls before Init succeeded.
var ErrNotInitialised = errNoCgo

// Available reports whether this build can run LibreOfficeKit (built with cgo).
const Available = false

func Init(installDir, profileURL string) error { return errNoCgo }

type Document struct{}

type LoadResult struct{ PasswordRequests int }

func Load(url, password string) (*Document, LoadResult, error) {
	return nil, LoadResult{}, errNoCgo
}

type DocumentType int

const (
	TypeText         DocumentType = 0
	TypeSpreadsheet  DocumentType = 1
	TypePresentation DocumentType = 2
	TypeDrawing      DocumentType = 3
	TypeOther        DocumentType = 4
)

func (t DocumentType) String() string                        { return "unknown" }
func (d *Document) Type() DocumentType                       { return TypeOther }
func (d *Document) SaveAs(url, format, options string) error { return errNoCgo }
func (d *Document) Close()                                   {}
func Exit(code int)                                          { os.Exit(code) }

func Shutdown() {}
