package controllers

import (
	"errors"
	"fmt"
	"strings"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// The converter image annotation is a security boundary: the converter receives the
// namespace's storage credentials, so whoever picks its image picks who gets them. The operator
// runs an annotated image only when its --allowed-converter-images lists it.
//
// An entry of the list is one of:
//   - "registry/repo:tag" or "repo@sha256:…": that exact reference, and nothing else;
//   - "registry/repo:" (ending in ':'): that repository with any tag or digest (or none);
//   - "registry/path/" (ending in '/'): any image under that path.
//
// References are compared as written: "kubexport/converter" and
// "docker.io/kubexport/converter" are different strings, so an entry matches only the spelling
// it uses.

// ImageNotAllowedError is returned for an ExportJob whose annotation names an image the
// operator's allowlist does not list.
type ImageNotAllowedError struct {
	// Image is the image the annotation asked for.
	Image string
}

func (e *ImageNotAllowedError) Error() string {
	return fmt.Sprintf("converter image %q is not in the operator's --allowed-converter-images", e.Image)
}

// ParseAllowedImages splits the --allowed-converter-images flag (comma-separated, blanks
// ignored) and rejects entries that could never match an image or that name a tag where a
// repository is meant.
func ParseAllowedImages(list string) ([]string, error) {
	var entries []string
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if err := validAllowEntry(entry); err != nil {
			return nil, fmt.Errorf("allowed converter image %q: %w", entry, err)
		}
		entries = append(entries, entry)
	}
	return entries, nil
}

func validAllowEntry(entry string) error {
	switch {
	case strings.ContainsAny(entry, " \t\n"):
		return errors.New("contains white space")
	case strings.HasPrefix(entry, "/") || strings.HasPrefix(entry, ":"):
		return errors.New("names no registry or repository")
	case strings.HasSuffix(entry, "/") && strings.Contains(entry, "@"):
		return errors.New("a path entry (ending in '/') must not carry a digest")
	case strings.HasSuffix(entry, ":"):
		if repo := strings.TrimSuffix(entry, ":"); strings.Contains(repo, "@") || repository(repo) != repo {
			return errors.New("a repository entry (ending in ':') must not carry a tag or digest")
		}
	}
	return nil
}

// imageAllowed reports whether image matches an entry of allowed.
func imageAllowed(image string, allowed []string) bool {
	for _, entry := range allowed {
		if imageMatches(image, entry) {
			return true
		}
	}
	return false
}

// imageMatches reports whether image matches one allowlist entry (see the syntax above).
func imageMatches(image, entry string) bool {
	switch {
	case entry == "" || image == "":
		return false
	case strings.HasSuffix(entry, "/"):
		return len(image) > len(entry) && strings.HasPrefix(image, entry)
	case strings.HasSuffix(entry, ":"):
		return repository(image) == strings.TrimSuffix(entry, ":")
	}
	return image == entry
}

// repository returns image without its tag and digest: "host:5000/a/b:1@sha256:…" gives
// "host:5000/a/b". A ':' before the last '/' belongs to the registry's port.
func repository(image string) string {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	return name
}

// converterImage returns the image ej's converter runs: the annotation's when the operator's
// allowlist permits it, the operator's --converter-image otherwise. With an allowlist, an
// annotation outside it is an *ImageNotAllowedError; without one, the annotation is ignored
// (see imageOverrideIgnored). The operator's own image is always allowed.
func converterImage(ej *v1alpha1.ExportJob, cfg Config) (string, error) {
	asked := ej.Annotations[v1alpha1.AnnotationConverterImage]
	switch {
	case asked == "" || asked == cfg.ConverterImage || len(cfg.AllowedConverterImages) == 0:
		return cfg.ConverterImage, nil
	case imageAllowed(asked, cfg.AllowedConverterImages):
		return asked, nil
	}
	return "", &ImageNotAllowedError{Image: asked}
}

// imageOverrideIgnored reports whether ej asks for a converter image other than the operator's
// and gets the operator's, because the operator allows no other images.
func imageOverrideIgnored(ej *v1alpha1.ExportJob, cfg Config) bool {
	asked := ej.Annotations[v1alpha1.AnnotationConverterImage]
	return asked != "" && asked != cfg.ConverterImage && len(cfg.AllowedConverterImages) == 0
}
