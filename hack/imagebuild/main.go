// Command imagebuild assembles a container image from layer tarballs without a registry or a
// container engine, and writes it as a docker-archive tarball (what `docker load`, `kind load
// image-archive` and `ctr images import` accept). Used by hack/images.sh.
//
//	imagebuild -o OUT.tar -tag kubexport/manager:dev [-tag ...] \
//	    [-dockerfile Dockerfile] [-entrypoint '["/manager"]'] [-cmd '[...]'] [-user 65532:65532] \
//	    [-workdir /] [-env K=V ...] [-label K=V ...] -layer base.tar.gz [-layer app.tar.gz ...]
//	imagebuild -dockerfile Dockerfile -find-binary manager   (prints /manager)
//
// With -dockerfile, the final stage's ENTRYPOINT, CMD, USER, WORKDIR, ENV and LABEL instructions
// give the image's configuration (so the offline image matches the Dockerfile); flags override.
// Layers are tar files, gzip-compressed or not; compressed ones are copied as they are.
// The image's creation time is SOURCE_DATE_EPOCH (default 0), so identical inputs give an
// identical image ID.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// imageConfig is what the Dockerfile and the flags set.
type imageConfig struct {
	Entrypoint []string
	Cmd        []string
	User       string
	WorkingDir string
	Env        []string
	Labels     map[string]string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	var (
		out, dockerfile, entrypoint, cmd, user, workdir string
		tags, layers, envs, labels                      multi
	)
	fs.StringVar(&out, "o", "", "output docker-archive tarball (required)")
	fs.Var(&tags, "tag", "image name, e.g. kubexport/manager:dev (repeatable, at least one)")
	fs.Var(&layers, "layer", "layer tarball, bottom first (repeatable, at least one)")
	fs.StringVar(&dockerfile, "dockerfile", "", "take ENTRYPOINT/CMD/USER/WORKDIR/ENV/LABEL from this Dockerfile's final stage")
	fs.StringVar(&entrypoint, "entrypoint", "", "entrypoint as a JSON array")
	fs.StringVar(&cmd, "cmd", "", "cmd as a JSON array")
	fs.StringVar(&user, "user", "", "user, e.g. 65532:65532")
	fs.StringVar(&workdir, "workdir", "", "working directory")
	fs.Var(&envs, "env", "environment variable K=V (repeatable; added after the Dockerfile's)")
	fs.Var(&labels, "label", "label K=V (repeatable)")
	findBinary := fs.String("find-binary", "", "only print the ENTRYPOINT element of -dockerfile whose base name is this, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *findBinary != "" {
		cfg, err := parseDockerfile(dockerfile)
		if err != nil {
			return err
		}
		for _, e := range cfg.Entrypoint {
			if filepath.Base(e) == *findBinary && filepath.IsAbs(e) {
				fmt.Println(e)
				return nil
			}
		}
		return fmt.Errorf("%s: no absolute path to %q in ENTRYPOINT %q", dockerfile, *findBinary, cfg.Entrypoint)
	}
	if out == "" || len(tags) == 0 || len(layers) == 0 {
		return errors.New("-o, -tag and -layer are required")
	}

	cfg := imageConfig{Labels: map[string]string{}}
	if dockerfile != "" {
		var err error
		if cfg, err = parseDockerfile(dockerfile); err != nil {
			return err
		}
	}
	if entrypoint != "" {
		if err := json.Unmarshal([]byte(entrypoint), &cfg.Entrypoint); err != nil {
			return fmt.Errorf("-entrypoint %q: want a JSON array: %w", entrypoint, err)
		}
	}
	if cmd != "" {
		if err := json.Unmarshal([]byte(cmd), &cfg.Cmd); err != nil {
			return fmt.Errorf("-cmd %q: want a JSON array: %w", cmd, err)
		}
	}
	if user != "" {
		cfg.User = user
	}
	if workdir != "" {
		cfg.WorkingDir = workdir
	}
	for _, e := range envs {
		cfg.Env = setEnv(cfg.Env, e)
	}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	if !hasEnv(cfg.Env, "PATH") {
		cfg.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cfg.Env...)
	}

	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(sec, 0).UTC()
	}

	img := empty.Image
	for _, path := range layers {
		layer, err := tarball.LayerFromFile(path)
		if err != nil {
			return fmt.Errorf("reading layer %s: %w", path, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: layer,
			History: v1.History{
				Created:   v1.Time{Time: created},
				CreatedBy: "hack/imagebuild: " + filepath.Base(path),
			},
		})
		if err != nil {
			return fmt.Errorf("appending layer %s: %w", path, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: created}
	cf.Config.Entrypoint = cfg.Entrypoint
	cf.Config.Cmd = cfg.Cmd
	cf.Config.User = cfg.User
	cf.Config.WorkingDir = cfg.WorkingDir
	cf.Config.Env = cfg.Env
	if len(cfg.Labels) > 0 {
		cf.Config.Labels = cfg.Labels
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}

	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return fmt.Errorf("-tag %q: %w", t, err)
		}
		refs[tag] = img
	}
	tmp := out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", out, strings.Join(tags, ","), id)
	return nil
}

// parseDockerfile reads the configuration instructions of a Dockerfile's final stage.
// Only the exec (JSON) form of ENTRYPOINT and CMD is accepted: the shell form would need a shell
// in the image.
func parseDockerfile(path string) (imageConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageConfig{}, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	var cur strings.Builder
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return imageConfig{}, err
	}
	cfg := imageConfig{Labels: map[string]string{}}
	args := map[string]string{}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM": // a new stage starts: only the last one's configuration counts
			cfg = imageConfig{Labels: map[string]string{}}
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = strings.Trim(v, `"`)
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return cfg, fmt.Errorf("%s: %s %s: only the JSON (exec) form is supported", path, instr, rest)
			}
			if strings.EqualFold(instr, "ENTRYPOINT") {
				cfg.Entrypoint, cfg.Cmd = v, nil // like docker: ENTRYPOINT resets CMD
			} else {
				cfg.Cmd = v
			}
		case "USER":
			cfg.User = expand(rest, args)
		case "WORKDIR":
			cfg.WorkingDir = expand(rest, args)
		case "ENV", "LABEL":
			kvs, err := splitKV(rest)
			if err != nil {
				return cfg, fmt.Errorf("%s: %s %s: %w", path, instr, rest, err)
			}
			for _, kv := range kvs {
				if strings.EqualFold(instr, "ENV") {
					cfg.Env = setEnv(cfg.Env, kv[0]+"="+expand(kv[1], args))
				} else {
					cfg.Labels[kv[0]] = kv[1]
				}
			}
		}
	}
	return cfg, nil
}

// splitKV splits `K=V K2="V 2"` (or the legacy `K V`) into pairs.
func splitKV(s string) ([][2]string, error) {
	if !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") { // legacy form: ENV K V
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("missing '=' in %q", s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func expand(s string, args map[string]string) string {
	return os.Expand(s, func(k string) string { return args[k] })
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}
