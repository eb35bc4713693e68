package docs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
)

// Stream is a named stream at the root of a compound file.
type Stream struct {
	Name string
	Data []byte
}

// CFB writes an OLE compound file (version 3, 512-byte sectors) with the streams at its root.
// Streams under 4096 bytes go to the mini stream, as [MS-CFB] requires. Files are limited to
// what 109 FAT sectors address (about 7 MB), plenty for tests.
func CFB(streams []Stream) []byte {
	const (
		sector     = 512
		mini       = 64
		cutoff     = 4096
		endChain   = 0xFFFFFFFE
		freeSect   = 0xFFFFFFFF
		fatSect    = 0xFFFFFFFD
		noStream   = 0xFFFFFFFF
		perFAT     = sector / 4
		dirPerSect = sector / 128
	)
	le := binary.LittleEndian
	ceil := func(n, d int) int { return (n + d - 1) / d }

	// Sort streams the way the directory's red-black tree orders siblings: by name length, then
	// by upper-cased name. We link them as a chain of right children, all black.
	sorted := append([]Stream(nil), streams...)
	slices.SortFunc(sorted, func(x, y Stream) int {
		a, b := utf16.Encode([]rune(x.Name)), utf16.Encode([]rune(y.Name))
		if len(a) != len(b) {
			return cmp.Compare(len(a), len(b))
		}
		return strings.Compare(strings.ToUpper(x.Name), strings.ToUpper(y.Name))
	})

	var miniStream bytes.Buffer
	var miniFAT []uint32
	type placed struct {
		start uint32
		size  int
		big   bool
	}
	place := make([]placed, len(sorted))
	var bigStreams [][]byte
	for i, s := range sorted {
		if len(s.Data) < cutoff {
			start := uint32(len(miniFAT))
			n := ceil(len(s.Data), mini)
			for k := range n {
				if k == n-1 {
					miniFAT = append(miniFAT, endChain)
				} else {
					miniFAT = append(miniFAT, uint32(len(miniFAT)+1))
				}
			}
			miniStream.Write(s.Data)
			miniStream.Write(make([]byte, n*mini-len(s.Data)))
			if n == 0 {
				start = endChain
			}
			place[i] = placed{start: start, size: len(s.Data)}
		} else {
			place[i] = placed{size: len(s.Data), big: true}
			bigStreams = append(bigStreams, s.Data)
		}
	}

	dirSectors := ceil(len(sorted)+1, dirPerSect)
	miniFATSectors := ceil(len(miniFAT)*4, sector)
	miniStreamSectors := ceil(miniStream.Len(), sector)
	bigSectors := 0
	for _, b := range bigStreams {
		bigSectors += ceil(len(b), sector)
	}
	payload := dirSectors + miniFATSectors + miniStreamSectors + bigSectors
	fatSectors := 1
	for ceil(payload+fatSectors, perFAT) > fatSectors {
		fatSectors++
	}
	if fatSectors > 109 {
		panic(fmt.Sprintf("docs: compound file too large (%d FAT sectors)", fatSectors))
	}
	total := fatSectors + payload
	fat := make([]uint32, fatSectors*perFAT)
	for i := range fat {
		fat[i] = freeSect
	}
	next := 0
	chain := func(n int) uint32 {
		if n == 0 {
			return endChain
		}
		start := next
		for k := range n {
			if k == n-1 {
				fat[next] = endChain
			} else {
				fat[next] = uint32(next + 1)
			}
			next++
		}
		return uint32(start)
	}
	for k := 0; k < fatSectors; k++ {
		fat[next] = fatSect
		next++
	}
	dirStart := chain(dirSectors)
	miniFATStart := chain(miniFATSectors)
	miniStreamStart := chain(miniStreamSectors)
	bi := 0
	for i := range place {
		if place[i].big {
			place[i].start = chain(ceil(len(bigStreams[bi]), sector))
			bi++
		}
	}

	body := make([]byte, total*sector)
	sect := func(n uint32) []byte { return body[int(n)*sector : int(n+1)*sector] }
	for k := 0; k < fatSectors; k++ {
		for j := range perFAT {
			le.PutUint32(sect(uint32(k))[4*j:], fat[k*perFAT+j])
		}
	}
	writeChain := func(start uint32, data []byte) {
		for s, off := start, 0; off < len(data); s, off = s+1, off+sector {
			copy(sect(s), data[off:])
		}
	}
	// Directory.
	dir := make([]byte, dirSectors*sector)
	putEntry := func(idx int, name string, typ byte, right, child uint32, start uint32, size int) {
		e := dir[idx*128 : (idx+1)*128]
		u := utf16.Encode([]rune(name))
		for k, c := range u {
			le.PutUint16(e[2*k:], c)
		}
		le.PutUint16(e[0x40:], uint16(2*len(u)+2))
		e[0x42] = typ
		e[0x43] = 1 // black
		le.PutUint32(e[0x44:], noStream)
		le.PutUint32(e[0x48:], right)
		le.PutUint32(e[0x4C:], child)
		le.PutUint32(e[0x74:], start)
		le.PutUint64(e[0x78:], uint64(size))
	}
	rootChild := uint32(noStream)
	if len(sorted) > 0 {
		rootChild = 1
	}
	rootStart := uint32(endChain)
	if miniStreamSectors > 0 {
		rootStart = miniStreamStart
	}
	putEntry(0, "Root Entry", 5, noStream, rootChild, rootStart, miniStream.Len())
	for i, s := range sorted {
		right := uint32(noStream)
		if i+1 < len(sorted) {
			right = uint32(i + 2)
		}
		putEntry(i+1, s.Name, 2, right, noStream, place[i].start, place[i].size)
	}
	for idx := len(sorted) + 1; idx < dirSectors*dirPerSect; idx++ { // unused entries
		e := dir[idx*128 : (idx+1)*128]
		le.PutUint32(e[0x44:], noStream)
		le.PutUint32(e[0x48:], noStream)
		le.PutUint32(e[0x4C:], noStream)
	}
	writeChain(dirStart, dir)
	mf := make([]byte, miniFATSectors*sector)
	for i := range mf {
		mf[i] = 0xFF
	}
	for i, v := range miniFAT {
		le.PutUint32(mf[4*i:], v)
	}
	if miniFATSectors > 0 {
		writeChain(miniFATStart, mf)
	}
	if miniStreamSectors > 0 {
		writeChain(miniStreamStart, miniStream.Bytes())
	}
	bi = 0
	for i := range place {
		if place[i].big {
			writeChain(place[i].start, bigStreams[bi])
			bi++
		}
	}

	hdr := make([]byte, sector, sector+len(body))
	copy(hdr, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1})
	le.PutUint16(hdr[0x18:], 0x003E)
	le.PutUint16(hdr[0x1A:], 3)
	le.PutUint16(hdr[0x1C:], 0xFFFE)
	le.PutUint16(hdr[0x1E:], 9)
	le.PutUint16(hdr[0x20:], 6)
	le.PutUint32(hdr[0x2C:], uint32(fatSectors))
	le.PutUint32(hdr[0x30:], dirStart)
	le.PutUint32(hdr[0x38:], cutoff)
	if miniFATSectors > 0 {
		le.PutUint32(hdr[0x3C:], miniFATStart)
	} else {
		le.PutUint32(hdr[0x3C:], endChain)
	}
	le.PutUint32(hdr[0x40:], uint32(miniFATSectors))
	le.PutUint32(hdr[0x44:], endChain)
	for k := range 109 {
		v := uint32(freeSect)
		if k < fatSectors {
			v = uint32(k)
		}
		le.PutUint32(hdr[0x4C+4*k:], v)
	}
	return append(hdr, body...)
}
