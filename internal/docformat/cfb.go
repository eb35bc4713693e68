package docformat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf16"
)

// This file reads just enough of the Compound File Binary format ([MS-CFB]), the OLE container
// of legacy Office files and of encrypted OOXML packages, to list the top-level streams and read
// a stream or its beginning. Every chain walk is bounded, so a malicious file cannot loop.

const (
	cfbHeaderSize   = 512
	cfbDirEntrySize = 128
	cfbEndOfChain   = 0xFFFFFFFE
	cfbFreeSect     = 0xFFFFFFFF
	cfbNoStream     = 0xFFFFFFFF
	cfbMaxRegSect   = 0xFFFFFFFA

	cfbTypeStorage = 1
	cfbTypeStream  = 2
	cfbTypeRoot    = 5
)

// errCFB marks a structurally broken compound file.
var errCFB = errors.New("broken OLE compound file")

type cfbEntry struct {
	name        string
	typ         byte
	left, right uint32
	child       uint32
	start       uint32
	size        uint64
}

// CompoundFile is a parsed OLE compound file: its header, allocation tables and directory are
// read once, when Detect opens it, and its streams on demand. Detect carries it in the
// Detection, so a later step (decryption) reads streams without parsing the container again.
// It reads from the io.ReaderAt given to Detect, which must stay open while it is used, and is
// not safe for concurrent use.
type CompoundFile struct {
	r          io.ReaderAt
	size       int64
	sectorSize int64
	miniSize   int64
	miniCutoff uint64
	fat        []uint32
	miniFAT    []uint32
	entries    []cfbEntry
	streams    map[string]cfbEntry // the root storage's children, by name
	maxSectors int
	miniStream []byte // the mini stream, read lazily
}

// openCompoundFile parses the header, FAT, mini FAT and directory of a compound file.
func openCompoundFile(r io.ReaderAt, size int64) (*CompoundFile, error) {
	hdr := make([]byte, cfbHeaderSize)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("%w: reading header: %v", errCFB, err)
	}
	if !bytes.Equal(hdr[:8], oleMagic) {
		return nil, fmt.Errorf("%w: bad signature", errCFB)
	}
	le := binary.LittleEndian
	shift := le.Uint16(hdr[0x1E:])
	miniShift := le.Uint16(hdr[0x20:])
	if (shift != 9 && shift != 12) || miniShift != 6 {
		return nil, fmt.Errorf("%w: sector shift %d, mini sector shift %d", errCFB, shift, miniShift)
	}
	f := &CompoundFile{
		r:          r,
		size:       size,
		sectorSize: 1 << shift,
		miniSize:   1 << miniShift,
		miniCutoff: uint64(le.Uint32(hdr[0x38:])),
	}
	f.maxSectors = int(size/f.sectorSize) + 1
	numFAT := int(le.Uint32(hdr[0x2C:]))
	if numFAT <= 0 || numFAT > f.maxSectors {
		return nil, fmt.Errorf("%w: %d FAT sectors in a %d-byte file", errCFB, numFAT, size)
	}

	// The DIFAT lists the FAT's sectors: 109 in the header, the rest in a chain of DIFAT sectors.
	fatSectors := make([]uint32, 0, numFAT)
	for i := 0; i < 109 && len(fatSectors) < numFAT; i++ {
		fatSectors = append(fatSectors, le.Uint32(hdr[0x4C+4*i:]))
	}
	next := le.Uint32(hdr[0x44:])
	perDIFAT := int(f.sectorSize/4) - 1
	for hops := 0; len(fatSectors) < numFAT; hops++ {
		if next >= cfbMaxRegSect || hops > f.maxSectors {
			return nil, fmt.Errorf("%w: DIFAT chain ends early", errCFB)
		}
		sec, err := f.readSector(next)
		if err != nil {
			return nil, err
		}
		for i := 0; i < perDIFAT && len(fatSectors) < numFAT; i++ {
			fatSectors = append(fatSectors, le.Uint32(sec[4*i:]))
		}
		next = le.Uint32(sec[4*perDIFAT:])
	}
	for _, s := range fatSectors {
		sec, err := f.readSector(s)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(sec); i += 4 {
			f.fat = append(f.fat, le.Uint32(sec[i:]))
		}
	}

	dir, err := f.readChain(le.Uint32(hdr[0x30:]), -1)
	if err != nil {
		return nil, fmt.Errorf("reading directory: %w", err)
	}
	for off := 0; off+cfbDirEntrySize <= len(dir); off += cfbDirEntrySize {
		f.entries = append(f.entries, parseCFBEntry(dir[off:off+cfbDirEntrySize]))
	}
	if len(f.entries) == 0 || f.entries[0].typ != cfbTypeRoot {
		return nil, fmt.Errorf("%w: no root entry", errCFB)
	}
	if n := le.Uint32(hdr[0x40:]); n > 0 {
		mf, err := f.readChain(le.Uint32(hdr[0x3C:]), -1)
		if err != nil {
			return nil, fmt.Errorf("reading mini FAT: %w", err)
		}
		for i := 0; i+4 <= len(mf); i += 4 {
			f.miniFAT = append(f.miniFAT, le.Uint32(mf[i:]))
		}
	}
	if f.streams, err = f.rootStreams(); err != nil {
		return nil, err
	}
	return f, nil
}

func parseCFBEntry(b []byte) cfbEntry {
	le := binary.LittleEndian
	nameLen := min(int(le.Uint16(b[0x40:])), 64)
	u := make([]uint16, 0, 32)
	for i := 0; i+1 < nameLen; i += 2 {
		c := le.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return cfbEntry{
		name:  string(utf16.Decode(u)),
		typ:   b[0x42],
		left:  le.Uint32(b[0x44:]),
		right: le.Uint32(b[0x48:]),
		child: le.Uint32(b[0x4C:]),
		start: le.Uint32(b[0x74:]),
		size:  le.Uint64(b[0x78:]),
	}
}

func (f *CompoundFile) readSector(n uint32) ([]byte, error) {
	if n >= cfbMaxRegSect {
		return nil, fmt.Errorf("%w: invalid sector %#x", errCFB, n)
	}
	off := (int64(n) + 1) * f.sectorSize
	if off+f.sectorSize > f.size {
		// The last sector of a file may be short; anything beyond the end is damage.
		if off >= f.size {
			return nil, fmt.Errorf("%w: sector %d beyond end of file", errCFB, n)
		}
	}
	buf := make([]byte, f.sectorSize)
	m, err := f.r.ReadAt(buf, off)
	if err != nil && !(errors.Is(err, io.EOF) && m > 0) {
		return nil, fmt.Errorf("%w: reading sector %d: %v", errCFB, n, err)
	}
	return buf, nil
}

// readChain follows a FAT chain from start and returns its sectors' bytes, at most limit bytes
// when limit >= 0.
func (f *CompoundFile) readChain(start uint32, limit int64) ([]byte, error) {
	var out []byte
	for s, hops := start, 0; s != cfbEndOfChain; hops++ {
		if hops > f.maxSectors || int(s) >= len(f.fat) {
			return nil, fmt.Errorf("%w: sector chain loops or leaves the FAT", errCFB)
		}
		sec, err := f.readSector(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sec...)
		if limit >= 0 && int64(len(out)) >= limit {
			return out[:limit], nil
		}
		s = f.fat[s]
	}
	return out, nil
}

// rootStreams returns the streams and storages directly under the root storage, by name.
func (f *CompoundFile) rootStreams() (map[string]cfbEntry, error) {
	out := map[string]cfbEntry{}
	seen := map[uint32]bool{}
	var walk func(id uint32) error
	walk = func(id uint32) error {
		if id == cfbNoStream {
			return nil
		}
		if int(id) >= len(f.entries) || seen[id] {
			return fmt.Errorf("%w: directory tree is inconsistent", errCFB)
		}
		seen[id] = true
		e := f.entries[id]
		if e.typ == cfbTypeStream || e.typ == cfbTypeStorage {
			out[e.name] = e
		}
		if err := walk(e.left); err != nil {
			return err
		}
		return walk(e.right)
	}
	if err := walk(f.entries[0].child); err != nil {
		return nil, err
	}
	return out, nil
}

// StreamNames returns the names of the streams directly under the root storage, sorted.
func (f *CompoundFile) StreamNames() []string {
	var names []string
	for name, e := range f.streams {
		if e.typ == cfbTypeStream {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// HasStream reports whether the root storage holds a stream of that name.
func (f *CompoundFile) HasStream(name string) bool {
	e, ok := f.streams[name]
	return ok && e.typ == cfbTypeStream
}

// ReadStream returns up to limit bytes (all if limit < 0) of the root storage's stream name.
func (f *CompoundFile) ReadStream(name string, limit int64) ([]byte, error) {
	e, ok := f.streams[name]
	if !ok || e.typ != cfbTypeStream {
		return nil, fmt.Errorf("%w: no stream %q", errCFB, name)
	}
	return f.readStream(e, limit)
}

// readStream returns up to limit bytes (all if limit < 0) of a stream entry.
func (f *CompoundFile) readStream(e cfbEntry, limit int64) ([]byte, error) {
	want := int64(e.size)
	if want < 0 || want > f.size*64 {
		return nil, fmt.Errorf("%w: stream %q claims %d bytes", errCFB, e.name, e.size)
	}
	if limit >= 0 && limit < want {
		want = limit
	}
	if e.size >= f.miniCutoff {
		b, err := f.readChain(e.start, want)
		if err != nil {
			return nil, err
		}
		if int64(len(b)) < want {
			return nil, fmt.Errorf("%w: stream %q is shorter than its size", errCFB, e.name)
		}
		return b[:want], nil
	}
	if f.miniStream == nil {
		root := f.entries[0]
		ms, err := f.readChain(root.start, int64(root.size))
		if err != nil {
			return nil, fmt.Errorf("reading mini stream: %w", err)
		}
		f.miniStream = ms
	}
	var out []byte
	for s, hops := e.start, 0; s != cfbEndOfChain && int64(len(out)) < want; hops++ {
		if hops > len(f.miniFAT) || int(s) >= len(f.miniFAT) {
			return nil, fmt.Errorf("%w: mini sector chain of %q loops or leaves the mini FAT", errCFB, e.name)
		}
		off := int64(s) * f.miniSize
		if off+f.miniSize > int64(len(f.miniStream)) {
			return nil, fmt.Errorf("%w: mini sector %d of %q beyond the mini stream", errCFB, s, e.name)
		}
		out = append(out, f.miniStream[off:off+f.miniSize]...)
		s = f.miniFAT[s]
	}
	if int64(len(out)) < want {
		return nil, fmt.Errorf("%w: stream %q is shorter than its size", errCFB, e.name)
	}
	return out[:want], nil
}
