package docs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// EncryptOOXML encrypts an OOXML package with a password the way Office 2010 and later do
// ([MS-OFFCRYPTO] Agile Encryption: AES-256-CBC, SHA-512, 100000 spins) and wraps it in an OLE
// compound file with EncryptionInfo and EncryptedPackage streams.
func EncryptOOXML(pkg []byte, password string) []byte {
	const (
		spinCount = 100000
		keyBytes  = 32
		blockSize = 16
		saltSize  = 16
		segment   = 4096
	)
	keySalt, dataSalt := random(saltSize), random(saltSize)
	secret := random(keyBytes)

	// Password key encryptor.
	h := passwordHash(keySalt, password, spinCount)
	blockKey := func(bk []byte) []byte { return fit(sum512(h, bk), keyBytes) }
	verifierInput := random(saltSize)
	encVerifierInput := cbcEncrypt(blockKey([]byte{0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79}), keySalt, verifierInput)
	encVerifierValue := cbcEncrypt(blockKey([]byte{0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e}), keySalt, sum512(verifierInput))
	encKeyValue := cbcEncrypt(blockKey([]byte{0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6}), keySalt, secret)

	// Package: 8-byte size, then 4096-byte segments, each with IV = H(dataSalt || index).
	out := make([]byte, 8, 8+len(pkg)+blockSize)
	binary.LittleEndian.PutUint64(out, uint64(len(pkg)))
	for i := 0; i*segment < len(pkg); i++ {
		chunk := pkg[i*segment : min((i+1)*segment, len(pkg))]
		var idx [4]byte
		binary.LittleEndian.PutUint32(idx[:], uint32(i))
		out = append(out, cbcEncrypt(secret, fit(sum512(dataSalt, idx[:]), blockSize), chunk)...)
	}

	// Data integrity: an HMAC-SHA512 of the EncryptedPackage stream, key and value encrypted.
	hmacKey := random(64)
	mac := hmac.New(sha512.New, hmacKey)
	mac.Write(out)
	encHmacKey := cbcEncrypt(secret, fit(sum512(dataSalt, []byte{0x5f, 0xb2, 0xad, 0x01, 0x0c, 0xb9, 0xe1, 0xf6}), blockSize), hmacKey)
	encHmacValue := cbcEncrypt(secret, fit(sum512(dataSalt, []byte{0xa0, 0x67, 0x7f, 0x02, 0xb2, 0x2c, 0x84, 0x33}), blockSize), mac.Sum(nil))

	b64 := base64.StdEncoding.EncodeToString
	params := func(salt []byte) string {
		return fmt.Sprintf(`saltSize="%d" blockSize="%d" keyBits="%d" hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="%s"`,
			saltSize, blockSize, keyBytes*8, b64(salt))
	}
	xml := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\r\n" +
		`<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password" xmlns:c="http://schemas.microsoft.com/office/2006/keyEncryptor/certificate">` +
		`<keyData ` + params(dataSalt) + `/>` +
		`<dataIntegrity encryptedHmacKey="` + b64(encHmacKey) + `" encryptedHmacValue="` + b64(encHmacValue) + `"/>` +
		`<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">` +
		fmt.Sprintf(`<p:encryptedKey spinCount="%d" `, spinCount) + params(keySalt) +
		` encryptedVerifierHashInput="` + b64(encVerifierInput) + `" encryptedVerifierHashValue="` + b64(encVerifierValue) +
		`" encryptedKeyValue="` + b64(encKeyValue) + `"/></keyEncryptor></keyEncryptors></encryption>`
	info := make([]byte, 8, 8+len(xml))
	binary.LittleEndian.PutUint16(info[0:], 4)
	binary.LittleEndian.PutUint16(info[2:], 4)
	binary.LittleEndian.PutUint32(info[4:], 0x40) // fAgile
	info = append(info, xml...)

	return CFB([]Stream{
		{Name: "EncryptionInfo", Data: info},
		{Name: "EncryptedPackage", Data: out},
	})
}

func passwordHash(salt []byte, password string, spins int) []byte {
	u := utf16.Encode([]rune(password))
	pw := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(pw[2*i:], c)
	}
	h := sum512(salt, pw)
	var it [4]byte
	for i := range spins {
		binary.LittleEndian.PutUint32(it[:], uint32(i))
		h = sum512(it[:], h)
	}
	return h
}

func sum512(parts ...[]byte) []byte {
	d := sha512.New()
	for _, p := range parts {
		d.Write(p)
	}
	return d.Sum(nil)
}

// fit truncates b to n bytes or pads it with 0x36.
func fit(b []byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = 0x36
	}
	copy(out, b)
	return out
}

// cbcEncrypt zero-pads data to the block size and encrypts it with AES-CBC.
func cbcEncrypt(key, iv, data []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("docs: AES key: %v", err))
	}
	padded := make([]byte, (len(data)+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	copy(padded, data)
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, padded)
	return out
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("docs: random: %v", err))
	}
	return b
}
