package upload

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
)

// Why not minio-go's PutObject with size -1: it allocates a whole part buffer (16 MiB at the
// smallest part size, ~0.5 GiB without an explicit PartSize) per upload before reading a byte,
// even for a 40 KB presentation, and with ConcurrentStreamParts NumThreads of them. objectWriter
// holds parts in reused 256 KiB chunks instead: a small document costs what it weighs and goes
// up in a single PUT; a large one goes up as a multipart upload with a bounded number of parts
// in flight while the next part is read from the client, so memory stays at
// (parallel+1) × PartSize whatever the file size.

// chunkSize is the unit of buffer memory.
const chunkSize = 256 << 10

// chunks keeps freed chunks for the next parts. Unlike a sync.Pool, which the GC empties every
// cycle, it keeps them across collections, so a large upload reuses the same (parallel+1) parts
// of memory instead of making the heap grow and shrink part after part. It keeps at most
// maxFree chunks; more are left to the GC.
type chunkList struct {
	mu      sync.Mutex
	free    []*[]byte
	maxFree int
}

var chunks = &chunkList{maxFree: 128} // 32 MiB

func (l *chunkList) get() *[]byte {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		c := l.free[n-1]
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return c
	}
	l.mu.Unlock()
	b := make([]byte, chunkSize)
	return &b
}

func (l *chunkList) put(c *[]byte) {
	l.mu.Lock()
	if len(l.free) < l.maxFree {
		l.free = append(l.free, c)
	}
	l.mu.Unlock()
}

// S3 limits for multipart uploads.
const (
	minPartSize  = 5 << 20
	maxPartCount = 10000
)

// part is up to PartSize bytes of the upload, held in pooled chunks.
type part struct {
	chunks []*[]byte
	size   int64
}

// fill reads from r until the part holds max bytes or r ends. eof is true when r ended.
func (p *part) fill(r io.Reader, max int64) (eof bool, err error) {
	for p.size < max {
		if p.size == int64(len(p.chunks))*chunkSize { // every chunk is full
			p.chunks = append(p.chunks, chunks.get())
		}
		c := *p.chunks[len(p.chunks)-1]
		off := int(p.size % chunkSize)
		want := min(int64(chunkSize-off), max-p.size)
		n, err := io.ReadFull(r, c[off:off+int(want)])
		p.size += int64(n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return true, nil
		case err != nil:
			return false, err
		}
	}
	return false, nil
}

// release returns the chunks to the pool.
func (p *part) release() {
	for _, c := range p.chunks {
		chunks.put(c)
	}
	p.chunks, p.size = nil, 0
}

// sha256Hex is the hex SHA-256 of the part's bytes.
func (p *part) sha256Hex() string {
	h := sha256.New()
	p.each(func(b []byte) { h.Write(b) })
	return hex.EncodeToString(h.Sum(nil))
}

// crc32c is the base64 CRC-32C (Castagnoli) of the part's bytes, as S3's x-amz-checksum-crc32c.
func (p *part) crc32c() string {
	var sum uint32
	p.each(func(b []byte) { sum = crc32.Update(sum, castagnoli, b) })
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// each calls f with the part's bytes, chunk by chunk.
func (p *part) each(f func([]byte)) {
	for i, c := range p.chunks {
		n := min(int64(chunkSize), p.size-int64(i)*chunkSize)
		if n <= 0 {
			return
		}
		f((*c)[:n])
	}
}

// reader returns an io.ReadSeeker over the part, so minio-go can retry a request.
func (p *part) reader() *partReader { return &partReader{p: p} }

type partReader struct {
	p   *part
	off int64
}

func (r *partReader) Read(b []byte) (int, error) {
	if r.off >= r.p.size {
		return 0, io.EOF
	}
	c := *r.p.chunks[r.off/chunkSize]
	start := int(r.off % chunkSize)
	end := int(min(int64(chunkSize), r.p.size-(r.off-int64(start))))
	n := copy(b, c[start:end])
	r.off += int64(n)
	return n, nil
}

func (r *partReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.p.size
	default:
		return 0, errors.New("partReader.Seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("partReader.Seek: negative position")
	}
	r.off = offset
	return offset, nil
}

// objectWriter streams uploads into object storage with bounded memory.
type objectWriter struct {
	client   *minio.Client
	core     minio.Core
	partSize int64
	parallel int
}

func newObjectWriter(c *minio.Client, partSize int64, parallel int) (*objectWriter, error) {
	if partSize < minPartSize || partSize%chunkSize != 0 {
		return nil, fmt.Errorf("part size %d must be at least %d bytes and a multiple of %d", partSize, minPartSize, chunkSize)
	}
	if parallel < 1 {
		return nil, fmt.Errorf("part parallelism %d must be at least 1", parallel)
	}
	return &objectWriter{client: c, core: minio.Core{Client: c}, partSize: partSize, parallel: parallel}, nil
}

// put stores everything r yields as bucket/key and returns its size. Errors reading r are
// returned as they are (the caller knows r); storage errors are wrapped with storageErr. On
// error no object and no incomplete multipart upload is left behind.
func (w *objectWriter) put(ctx context.Context, bucket, key string, r io.Reader, contentType string) (int64, error) {
	first := &part{}
	eof, err := first.fill(r, w.partSize)
	if err != nil {
		first.release()
		return 0, err
	}
	// Payloads are not signed chunk by chunk (minio-go's default over plain HTTP, which hashes and
	// allocates per 64 KiB and made a gigabyte upload churn ~120 MiB of garbage): a single PUT
	// carries the signed SHA-256 of its body and each part a signed CRC-32C, and the server
	// refuses a body that does not match.
	opts := minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true}
	if eof {
		defer first.release()
		if _, err := w.core.PutObject(ctx, bucket, key, first.reader(), first.size, "", first.sha256Hex(), opts); err != nil {
			return 0, storageErr("storing the document", err)
		}
		return first.size, nil
	}
	return w.putMultipart(ctx, bucket, key, first, r, opts)
}

func (w *objectWriter) putMultipart(ctx context.Context, bucket, key string, first *part, r io.Reader, opts minio.PutObjectOptions) (size int64, err error) {
	uploadID, err := w.core.NewMultipartUpload(ctx, bucket, key, opts)
	if err != nil {
		first.release()
		return 0, storageErr("starting a multipart upload", err)
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = w.core.AbortMultipartUpload(actx, bucket, key, uploadID)
		}
	}()

	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(mctx)
	slots := make(chan struct{}, w.parallel)
	var (
		mu    sync.Mutex
		parts []minio.CompletePart
	)
	upload := func(num int, p *part) error {
		defer func() { p.release(); <-slots }()
		info, err := w.core.PutObjectPart(gctx, bucket, key, uploadID, num, p.reader(), p.size, minio.PutObjectPartOptions{
			DisableContentSha256: true,
			CustomHeader:         http.Header{"X-Amz-Checksum-Crc32c": {p.crc32c()}},
		})
		if err != nil {
			return storageErr(fmt.Sprintf("storing part %d of the document", num), err)
		}
		mu.Lock()
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: info.ETag})
		mu.Unlock()
		return nil
	}

	p, eof, readErr := first, false, error(nil)
	for num := 1; ; num++ {
		select {
		case slots <- struct{}{}:
		case <-gctx.Done():
			p.release()
			return 0, errors.Join(g.Wait(), ctx.Err())
		}
		size += p.size
		cur := p
		g.Go(func() error { return upload(num, cur) })
		if eof {
			break
		}
		if num == maxPartCount {
			readErr = fmt.Errorf("the document needs more than %d parts of %d bytes", maxPartCount, w.partSize)
			break
		}
		p = &part{}
		eof, readErr = p.fill(r, w.partSize) // overlaps with the uploads in flight
		if readErr != nil || (eof && p.size == 0) {
			p.release()
			break
		}
	}
	if readErr != nil {
		cancel() // stop the parts in flight: the upload is lost anyway
		_ = g.Wait()
		return 0, readErr
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	sortParts(parts)
	if _, err := w.core.CompleteMultipartUpload(ctx, bucket, key, uploadID, parts, opts); err != nil {
		return 0, storageErr("completing the multipart upload", err)
	}
	return size, nil
}

func sortParts(parts []minio.CompletePart) {
	for i := 1; i < len(parts); i++ { // few and nearly sorted: insertion sort
		for j := i; j > 0 && parts[j].PartNumber < parts[j-1].PartNumber; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
}
