package converter

import (
	"bytes"
	"errors"
)

// reasonOf returns the contract reason of err, "" for nil.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var ce *Error
	if !errors.As(err, &ce) {
		return "unclassified: " + err.Error()
	}
	return ce.Reason
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }
