package converter

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
)

// This file decrypts password-encrypted OOXML packages ([MS-OFFCRYPTO] 2.3.4.10 "Agile
// Encryption", written by Office 2010 and later, and 2.3.4.5 "Standard Encryption", written by
// Office 2007). LibreOffice's command line has no way to pass a document password, so the
// converter decrypts the package itself and hands LibreOffice the plain OOXML file.

// errWrongPassword means the password does not open the package.
var errWrongPassword = errors.New("wrong password")

// errUnsupportedEncryption means the package uses an encryption scheme we cannot decrypt.
var errUnsupportedEncryption = errors.New("unsupported encryption")

// decryptOOXML decrypts an EncryptedPackage stream with the EncryptionInfo stream and password.
func decryptOOXML(info, pkg []byte, password string) ([]byte, error) {
	if len(info) < 8 {
		return nil, errors.New("EncryptionInfo stream is too short")
	}
	major := binary.LittleEndian.Uint16(info[0:])
	minor := binary.LittleEndian.Uint16(info[2:])
	switch {
	case major == 4 && minor == 4:
		return decryptAgile(info[8:], pkg, password)
	case (major == 2 || major == 3 || major == 4) && minor == 2:
		return decryptStandard(info[8:], pkg, password)
	default:
		return nil, fmt.Errorf("%w: EncryptionInfo version %d.%d", errUnsupportedEncryption, major, minor)
	}
}

// Agile encryption block keys ([MS-OFFCRYPTO] 2.3.4.11–13).
var (
	agileBlockVerifierInput = []byte{0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79}
	agileBlockVerifierValue = []byte{0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e}
	agileBlockKeyValue      = []byte{0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6}
)

// agileParams are the attributes shared by keyData and p:encryptedKey.
type agileParams struct {
	SaltSize        int    `xml:"saltSize,attr"`
	BlockSize       int    `xml:"blockSize,attr"`
	KeyBits         int    `xml:"keyBits,attr"`
	HashSize        int    `xml:"hashSize,attr"`
	CipherAlgorithm string `xml:"cipherAlgorithm,attr"`
	CipherChaining  string `xml:"cipherChaining,attr"`
	HashAlgorithm   string `xml:"hashAlgorithm,attr"`
	SaltValue       string `xml:"saltValue,attr"`
}

type agileEncryptedKey struct {
	agileParams
	SpinCount                  int    `xml:"spinCount,attr"`
	EncryptedVerifierHashInput string `xml:"encryptedVerifierHashInput,attr"`
	EncryptedVerifierHashValue string `xml:"encryptedVerifierHashValue,attr"`
	EncryptedKeyValue          string `xml:"encryptedKeyValue,attr"`
}

type agileInfo struct {
	KeyData       agileParams `xml:"keyData"`
	KeyEncryptors []struct {
		URI          string            `xml:"uri,attr"`
		EncryptedKey agileEncryptedKey `xml:"encryptedKey"`
	} `xml:"keyEncryptors>keyEncryptor"`
}

const agilePasswordKeyEncryptor = "http://schemas.microsoft.com/office/2006/keyEncryptor/password"

func newHash(name string) (func() hash.Hash, error) {
	switch name {
	case "SHA1", "SHA-1":
		return sha1.New, nil
	case "SHA256", "SHA-256":
		return sha256.New, nil
	case "SHA384", "SHA-384":
		return sha512.New384, nil
	case "SHA512", "SHA-512":
		return sha512.New, nil
	default:
		return nil, fmt.Errorf("%w: hash algorithm %q", errUnsupportedEncryption, name)
	}
}

func (p agileParams) check() error {
	if p.CipherAlgorithm != "AES" || p.CipherChaining != "ChainingModeCBC" {
		return fmt.Errorf("%w: cipher %s/%s", errUnsupportedEncryption, p.CipherAlgorithm, p.CipherChaining)
	}
	if p.KeyBits != 128 && p.KeyBits != 192 && p.KeyBits != 256 {
		return fmt.Errorf("%w: key size %d", errUnsupportedEncryption, p.KeyBits)
	}
	if p.BlockSize != aes.BlockSize {
		return fmt.Errorf("%w: block size %d", errUnsupportedEncryption, p.BlockSize)
	}
	return nil
}

// fitBytes truncates b to n bytes or pads it with 0x36 ([MS-OFFCRYPTO] 2.3.4.11).
func fitBytes(b []byte, n int) []byte {
	if len(b) >= n {
		return b[:n]
	}
	return append(append([]byte(nil), b...), bytes.Repeat([]byte{0x36}, n-len(b))...)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// agilePasswordHash is H_n: the salted password hash iterated spinCount times.
func agilePasswordHash(h func() hash.Hash, salt []byte, password string, spinCount int) []byte {
	d := h()
	d.Write(salt)
	d.Write(utf16le(password))
	sum := d.Sum(nil)
	var it [4]byte
	for i := range spinCount {
		binary.LittleEndian.PutUint32(it[:], uint32(i))
		d.Reset()
		d.Write(it[:])
		d.Write(sum)
		sum = d.Sum(sum[:0])
	}
	return sum
}

// agileKey derives the key for one block key from H_n.
func agileKey(h func() hash.Hash, hn, blockKey []byte, keyBytes int) []byte {
	d := h()
	d.Write(hn)
	d.Write(blockKey)
	return fitBytes(d.Sum(nil), keyBytes)
}

func aesCBCDecrypt(key, iv, data []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes is not a multiple of the AES block size", len(data))
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	return out, nil
}

func decodeB64(name, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("EncryptionInfo %s: %w", name, err)
	}
	return b, nil
}

func decryptAgile(infoXML, pkg []byte, password string) ([]byte, error) {
	var info agileInfo
	if err := xml.Unmarshal(infoXML, &info); err != nil {
		return nil, fmt.Errorf("parsing agile EncryptionInfo: %w", err)
	}
	var ek *agileEncryptedKey
	for i := range info.KeyEncryptors {
		if info.KeyEncryptors[i].URI == agilePasswordKeyEncryptor {
			ek = &info.KeyEncryptors[i].EncryptedKey
		}
	}
	if ek == nil {
		return nil, fmt.Errorf("%w: no password key encryptor (certificate encryption?)", errUnsupportedEncryption)
	}
	if err := ek.check(); err != nil {
		return nil, err
	}
	if err := info.KeyData.check(); err != nil {
		return nil, err
	}
	if ek.SpinCount < 0 || ek.SpinCount > 10_000_000 {
		return nil, fmt.Errorf("%w: spin count %d", errUnsupportedEncryption, ek.SpinCount)
	}
	keyHash, err := newHash(ek.HashAlgorithm)
	if err != nil {
		return nil, err
	}
	dataHash, err := newHash(info.KeyData.HashAlgorithm)
	if err != nil {
		return nil, err
	}
	salt, err := decodeB64("saltValue", ek.SaltValue)
	if err != nil {
		return nil, err
	}
	encInput, err := decodeB64("encryptedVerifierHashInput", ek.EncryptedVerifierHashInput)
	if err != nil {
		return nil, err
	}
	encValue, err := decodeB64("encryptedVerifierHashValue", ek.EncryptedVerifierHashValue)
	if err != nil {
		return nil, err
	}
	encKey, err := decodeB64("encryptedKeyValue", ek.EncryptedKeyValue)
	if err != nil {
		return nil, err
	}
	dataSalt, err := decodeB64("keyData saltValue", info.KeyData.SaltValue)
	if err != nil {
		return nil, err
	}

	keyBytes := ek.KeyBits / 8
	iv := fitBytes(salt, ek.BlockSize)
	hn := agilePasswordHash(keyHash, salt, password, ek.SpinCount)

	input, err := aesCBCDecrypt(agileKey(keyHash, hn, agileBlockVerifierInput, keyBytes), iv, encInput)
	if err != nil {
		return nil, fmt.Errorf("decrypting verifier: %w", err)
	}
	value, err := aesCBCDecrypt(agileKey(keyHash, hn, agileBlockVerifierValue, keyBytes), iv, encValue)
	if err != nil {
		return nil, fmt.Errorf("decrypting verifier hash: %w", err)
	}
	d := keyHash()
	d.Write(fitBytes(input, ek.SaltSize))
	want := d.Sum(nil)
	if len(value) < len(want) || subtle.ConstantTimeCompare(value[:len(want)], want) != 1 {
		return nil, errWrongPassword
	}
	secret, err := aesCBCDecrypt(agileKey(keyHash, hn, agileBlockKeyValue, keyBytes), iv, encKey)
	if err != nil {
		return nil, fmt.Errorf("decrypting package key: %w", err)
	}
	secret = fitBytes(secret, info.KeyData.KeyBits/8)

	return decryptAgilePackage(pkg, secret, dataSalt, dataHash, info.KeyData.BlockSize)
}

// agileSegment is the size of the independently encrypted segments of an EncryptedPackage.
const agileSegment = 4096

func decryptAgilePackage(pkg, key, salt []byte, h func() hash.Hash, blockSize int) ([]byte, error) {
	if len(pkg) < 8 {
		return nil, errors.New("EncryptedPackage stream is too short")
	}
	size := binary.LittleEndian.Uint64(pkg)
	data := pkg[8:]
	if size > uint64(len(data)) {
		return nil, fmt.Errorf("EncryptedPackage claims %d bytes but holds %d", size, len(data))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data))
	var idx [4]byte
	for seg := 0; len(out) < int(size); seg++ {
		start := seg * agileSegment
		end := min(start+agileSegment, len(data))
		chunk := data[start:end]
		if rem := len(chunk) % aes.BlockSize; rem != 0 {
			return nil, fmt.Errorf("EncryptedPackage segment %d is not a multiple of the AES block size", seg)
		}
		binary.LittleEndian.PutUint32(idx[:], uint32(seg))
		d := h()
		d.Write(salt)
		d.Write(idx[:])
		plain := make([]byte, len(chunk))
		cipher.NewCBCDecrypter(block, fitBytes(d.Sum(nil), blockSize)).CryptBlocks(plain, chunk)
		out = append(out, plain...)
		if end == len(data) {
			break
		}
	}
	if uint64(len(out)) < size {
		return nil, errors.New("EncryptedPackage is shorter than its declared size")
	}
	return out[:size], nil
}

// Standard encryption algorithm IDs ([MS-OFFCRYPTO] 2.3.2).
const (
	algAES128 = 0x660E
	algAES192 = 0x660F
	algAES256 = 0x6610
	algSHA1   = 0x8004
)

func decryptStandard(b, pkg []byte, password string) ([]byte, error) {
	le := binary.LittleEndian
	// b starts after the version and flags: EncryptionHeaderSize, EncryptionHeader, EncryptionVerifier.
	if len(b) < 4 {
		return nil, errors.New("standard EncryptionInfo is too short")
	}
	headerSize := int(le.Uint32(b))
	b = b[4:]
	if headerSize < 32 || headerSize > len(b) {
		return nil, errors.New("standard EncryptionInfo header is truncated")
	}
	hdr, ver := b[:headerSize], b[headerSize:]
	algID, algHash, keyBits := le.Uint32(hdr[8:]), le.Uint32(hdr[12:]), le.Uint32(hdr[16:])
	if algID != algAES128 && algID != algAES192 && algID != algAES256 {
		return nil, fmt.Errorf("%w: algorithm %#x (RC4?)", errUnsupportedEncryption, algID)
	}
	if algHash != 0 && algHash != algSHA1 {
		return nil, fmt.Errorf("%w: hash algorithm %#x", errUnsupportedEncryption, algHash)
	}
	if keyBits != 128 && keyBits != 192 && keyBits != 256 {
		return nil, fmt.Errorf("%w: key size %d", errUnsupportedEncryption, keyBits)
	}
	if len(ver) < 4+16+16+4+32 || le.Uint32(ver) != 16 {
		return nil, errors.New("standard EncryptionVerifier is truncated")
	}
	salt, encVerifier, encHash := ver[4:20], ver[20:36], ver[40:72]

	key := standardKey(salt, password, int(keyBits/8))
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	verifier := ecbDecrypt(block, encVerifier)
	verHash := ecbDecrypt(block, encHash)
	got := sha1.Sum(verifier)
	if subtle.ConstantTimeCompare(got[:], verHash[:sha1.Size]) != 1 {
		return nil, errWrongPassword
	}
	if len(pkg) < 8 {
		return nil, errors.New("EncryptedPackage stream is too short")
	}
	size := le.Uint64(pkg)
	data := pkg[8:]
	data = data[:len(data)-len(data)%aes.BlockSize]
	if size > uint64(len(data)) {
		return nil, fmt.Errorf("EncryptedPackage claims %d bytes but holds %d", size, len(data))
	}
	return ecbDecrypt(block, data)[:size], nil
}

// standardKey derives the Standard Encryption key ([MS-OFFCRYPTO] 2.3.4.7).
func standardKey(salt []byte, password string, keyBytes int) []byte {
	h := agilePasswordHash(sha1.New, salt, password, 50000)
	d := sha1.New()
	d.Write(h)
	d.Write([]byte{0, 0, 0, 0})
	hfinal := d.Sum(nil)
	derive := func(c byte) []byte {
		buf := bytes.Repeat([]byte{c}, 64)
		for i := range hfinal {
			buf[i] ^= hfinal[i]
		}
		s := sha1.Sum(buf)
		return s[:]
	}
	x := append(derive(0x36), derive(0x5c)...)
	return x[:keyBytes]
}

func ecbDecrypt(block cipher.Block, data []byte) []byte {
	out := make([]byte, len(data))
	for i := 0; i+aes.BlockSize <= len(data); i += aes.BlockSize {
		block.Decrypt(out[i:i+aes.BlockSize], data[i:i+aes.BlockSize])
	}
	return out
}
