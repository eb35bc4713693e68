package docs

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Zip writes a ZIP archive of name → content, entries in name order, all deflated: the shape of
// a package no office writer made (a plain archive, an ODF file without its stored mimetype).
func Zip(files map[string]string) []byte {
	entries := make([]entry, 0, len(files))
	for name, data := range files {
		entries = append(entries, entry{name, data})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return zipEntries(entries, false)
}

// PowerPoint CurrentUserAtom header tokens ([MS-PPT] 2.3.2).
const (
	PPTTokenPlain     = 0xE391C05F
	PPTTokenEncrypted = 0xF3D1C4DF
)

// CurrentUserAtom returns a PowerPoint "Current User" stream with the given header token.
func CurrentUserAtom(token uint32) []byte {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b[2:], 0x0FF6) // record type
	binary.LittleEndian.PutUint32(b[4:], 20)     // record length
	binary.LittleEndian.PutUint32(b[8:], 0x14)   // size
	binary.LittleEndian.PutUint32(b[12:], token)
	return b
}

// CurrentUser95 returns a "Current User" stream as PowerPoint 95 wrote it: a 4-byte size, then
// that many bytes (a user name), shorter than PowerPoint 97's CurrentUserAtom and without its
// header token.
func CurrentUser95() []byte {
	name := "Presenter"
	b := make([]byte, 4, 4+len(name))
	binary.LittleEndian.PutUint32(b, uint32(len(name)))
	return append(b, name...)
}

// PPT returns a legacy PowerPoint file: a compound file with a "PowerPoint Document" stream and
// a "Current User" stream that marks it encrypted or not.
func PPT(encrypted bool) []byte {
	token := uint32(PPTTokenPlain)
	if encrypted {
		token = PPTTokenEncrypted
	}
	return CFB([]Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)}, {Name: "Current User", Data: CurrentUserAtom(token)}})
}

// Word FibBase flags ([MS-DOC] 2.5.2).
const (
	WordFlagEncrypted  = 0x0100
	WordFlagObfuscated = 0x8000
)

// WordFIB returns the start of a WordDocument stream with the given FibBase flags.
func WordFIB(flags uint16) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint16(b, 0xA5EC) // wIdent
	binary.LittleEndian.PutUint16(b[0x0A:], flags)
	return b
}

// BIFF record types ([MS-XLS] 2.3).
const (
	BIFFBOF      = 0x0809
	BIFFEOF      = 0x000A
	BIFFFilePass = 0x002F
)

// BIFFRecord encodes one BIFF record of an Excel workbook stream.
func BIFFRecord(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data))
	binary.LittleEndian.PutUint16(b, typ)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(data)))
	return append(b, data...)
}
