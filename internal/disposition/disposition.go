// Package disposition builds the Content-Disposition of the PDFs kubexport serves: the one
// definition used both for the object's stored metadata (the converter) and for downloads from
// the upload service, so a PDF is named the same however it is fetched.
package disposition

import "strings"

// Attachment returns an attachment header value for name following RFC 6266: a quoted
// ASCII fallback in filename= for old clients and the exact UTF-8 name in filename*= (RFC 5987
// percent-encoding).
func Attachment(name string) string {
	var fallback strings.Builder
	ascii := true
	for _, r := range name {
		switch {
		case r == '"' || r == '\\':
			fallback.WriteByte('_')
		case r < 0x20 || r == 0x7f:
			fallback.WriteByte('_')
			ascii = false
		case r > 0x7e:
			fallback.WriteByte('_')
			ascii = false
		default:
			fallback.WriteRune(r)
		}
	}
	v := `attachment; filename="` + fallback.String() + `"`
	if !ascii || strings.ContainsAny(name, `"\`) {
		v += "; filename*=UTF-8''" + encodeRFC5987(name)
	}
	return v
}

// encodeRFC5987 percent-encodes everything but RFC 5987's attr-char.
func encodeRFC5987(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
