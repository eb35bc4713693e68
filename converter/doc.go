// Package converter turns office documents into PDF with LibreOffice.
//
// The pipeline is the same in both modes of the converter binary:
//
//  1. cap the input size,
//  2. detect the real document type from the content (never the file name; internal/docformat,
//     which also holds the upload service's first check),
//  3. guard ZIP-based inputs against bombs and reject broken archives,
//  4. refuse encrypted inputs that cannot open (and decrypt encrypted OOXML with the password),
//  5. convert in a LibreOfficeKit worker process (Engine) under a deadline, answering its
//     password request, checking the loaded document's type,
//  6. judge success only by a PDF that exists and parses, and read its page count from it.
//
// Job mode (RunJob) wraps this with object storage: it streams the source object to scratch
// space, converts it, uploads the PDF and writes a contract.Result to the termination log.
// Local mode (ConvertFile) converts a local file. Both report failures as *Error values that
// carry one of the contract reasons and whether a retry could help.
package converter
