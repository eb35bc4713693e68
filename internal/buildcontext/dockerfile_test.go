package buildcontext

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// goBuild is one `go build` a Dockerfile runs.
type goBuild struct {
	// Env is the command's environment as the Dockerfile sets it, in order (a later
	// assignment wins): the stage's ARGs that have a value, its ENVs, then the command's own
	// NAME=value prefix. The base image's environment is not known, so it is not there.
	Env []string
	// Args are the words after `go build`, with quotes removed and variables expanded.
	Args []string
	// Packages are the package arguments among Args, relative to the build context's root.
	Packages []string
}

// parseDockerfile finds the `go build` commands in the RUN instructions of a Dockerfile.
// platform gives the automatic platform ARGs (TARGETOS, TARGETARCH...), which a stage sees
// when it declares them. It reads what our Dockerfiles use and fails on what it does not
// know (command substitution, redirections, `cd`, a build outside the directory the context
// was copied to), so that a new construct is noticed rather than misread.
func parseDockerfile(file string, platform map[string]string) ([]goBuild, error) {
	instructions, err := readInstructions(file)
	if err != nil {
		return nil, err
	}
	var builds []goBuild
	st := &stage{global: map[string]string{}, platform: platform}
	st.args = st.global
	for _, in := range instructions {
		where := fmt.Sprintf("%s:%d", file, in.line)
		switch in.keyword {
		case "FROM": // a new stage: nothing carries over from the previous one
			st.enter()
		case "ARG":
			if err := st.arg(in.rest); err != nil {
				return nil, fmt.Errorf("%s: ARG: %w", where, err)
			}
		case "ENV":
			if err := st.setEnv(in.rest); err != nil {
				return nil, fmt.Errorf("%s: ENV %s: %w", where, in.rest, err)
			}
		case "WORKDIR":
			words, err := shellWords(in.rest, st.vars())
			if err != nil || len(words) != 1 {
				return nil, fmt.Errorf("%s: WORKDIR %s: want one path (%v)", where, in.rest, err)
			}
			st.workdir = resolve(st.workdir, words[0])
		case "COPY", "ADD":
			if dest, ok := copiesContext(in.rest); ok {
				st.copied = resolve(st.workdir, dest)
			}
		case "RUN":
			found, err := runBuilds(in.rest, st.vars())
			if err != nil {
				return nil, fmt.Errorf("%s: RUN: %w", where, err)
			}
			if len(found) > 0 && st.copied != st.workdir {
				return nil, fmt.Errorf("%s: go build runs in %s, but the build context was copied to %q", where, st.workdir, st.copied)
			}
			for _, b := range found {
				b.Env = append(st.environ(), b.Env...)
				builds = append(builds, b)
			}
		}
	}
	return builds, nil
}

// stage is what parseDockerfile knows of the stage it is reading.
type stage struct {
	platform map[string]string
	global   map[string]string // the ARGs before the first FROM that have a value
	args     map[string]string // the stage's declared ARGs that have a value, by name
	argList  []string          // their names, in the order declared
	env      [][2]string
	inStage  bool
	workdir  string
	copied   string // where `COPY . <dest>` put the build context; "" if not (yet)
}

func (st *stage) enter() {
	st.inStage, st.args, st.argList, st.env, st.workdir, st.copied = true, map[string]string{}, nil, nil, "/", ""
}

// vars is what a shell in the stage would expand: its ARGs, then its ENVs.
func (st *stage) vars() map[string]string {
	m := make(map[string]string, len(st.args)+len(st.env))
	maps.Copy(m, st.args)
	for _, kv := range st.env {
		m[kv[0]] = kv[1]
	}
	return m
}

// arg declares the ARGs of one instruction; inside a stage, an ARG without a value takes
// the global ARG's value, or the platform's.
func (st *stage) arg(rest string) error {
	words, err := shellWords(rest, st.vars())
	if err != nil {
		return err
	}
	for _, w := range words {
		name, value, hasValue := strings.Cut(w, "=")
		if !hasValue && st.inStage {
			if value, hasValue = st.global[name]; !hasValue {
				value, hasValue = st.platform[name]
			}
		}
		if hasValue {
			if _, seen := st.args[name]; !seen {
				st.argList = append(st.argList, name)
			}
			st.args[name] = value
		}
	}
	return nil
}

// setEnv records the variables of one ENV instruction, in either of its two forms.
func (st *stage) setEnv(rest string) error {
	words, err := shellWords(rest, st.vars())
	if err != nil {
		return err
	}
	if len(words) > 0 && !strings.Contains(words[0], "=") { // legacy form: ENV NAME value
		words = []string{words[0] + "=" + strings.Join(words[1:], " ")}
	}
	for _, w := range words {
		name, value, ok := strings.Cut(w, "=")
		if !ok {
			return fmt.Errorf("%q has no '='", w)
		}
		st.env = append(st.env, [2]string{name, value})
	}
	return nil
}

// environ is the environment a RUN in the stage sees: its ARGs in declaration order, then
// its ENVs.
func (st *stage) environ() []string {
	out := make([]string, 0, len(st.argList)+len(st.env))
	for _, name := range st.argList {
		out = append(out, name+"="+st.args[name])
	}
	for _, kv := range st.env {
		out = append(out, kv[0]+"="+kv[1])
	}
	return out
}

// copiesContext reports whether COPY or ADD with these arguments copies the whole build
// context (`COPY . <dest>`, not from another stage), and where to.
func copiesContext(args string) (string, bool) {
	words := strings.Fields(args)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		if strings.HasPrefix(words[0], "--from") {
			return "", false
		}
		words = words[1:]
	}
	if len(words) != 2 || path.Clean(words[0]) != "." {
		return "", false
	}
	return words[1], true
}

// resolve is dir joined to p as WORKDIR and COPY destinations are: relative to the working
// directory unless absolute.
func resolve(dir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

type instruction struct {
	line    int // where it starts
	keyword string
	rest    string
}

// readInstructions splits a Dockerfile into instructions: comment lines dropped (inside a
// continuation too, as Docker does), lines ending in a backslash joined to the next.
func readInstructions(file string) ([]instruction, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out   []instruction
		cur   strings.Builder
		start int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(l)
		keyword, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, keyword: strings.ToUpper(keyword), rest: strings.TrimSpace(rest)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("%s:%d: the last instruction ends in a line continuation", file, start)
	}
	return out, nil
}

// runBuilds finds the `go build` commands in a RUN instruction's argument (its flags, such as
// --mount=..., skipped), in shell form or in exec (JSON) form.
func runBuilds(run string, vars map[string]string) ([]goBuild, error) {
	for strings.HasPrefix(run, "--") {
		_, run, _ = strings.Cut(run, " ")
		run = strings.TrimSpace(run)
	}
	var commands [][]string
	if !mentionsGoBuild.MatchString(run) {
		return nil, nil
	}
	if strings.HasPrefix(run, "[") {
		var words []string
		if err := json.Unmarshal([]byte(run), &words); err != nil {
			return nil, fmt.Errorf("exec form %s: %w", run, err)
		}
		commands = [][]string{words}
	} else {
		var err error
		if commands, err = shellCommands(run, vars); err != nil {
			return nil, err
		}
	}
	var builds []goBuild
	for _, words := range commands {
		var assign []string
		for len(words) > 0 && isAssignment(words[0]) {
			assign, words = append(assign, words[0]), words[1:]
		}
		if len(words) > 0 && words[0] == "cd" {
			return nil, errors.New("cd: the test runs go build where the Dockerfile copied the context, and knows no other directory")
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			continue
		}
		pkgs, err := buildPackages(words[2:])
		if err != nil {
			return nil, err
		}
		builds = append(builds, goBuild{Env: assign, Args: words[2:], Packages: pkgs})
	}
	return builds, nil
}

// mentionsGoBuild matches a RUN argument that may run `go build`: only those are parsed, so
// that the shell in other RUN instructions (globs in `rm -rf`, say) needs no reading.
var mentionsGoBuild = regexp.MustCompile(`\bgo["']?[\s,]+["']?build\b`)

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range name {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// valueFlags are the `go build` flags that take their value as the next argument when it is
// not given with '='.
var valueFlags = []string{
	"o", "p", "C", "asmflags", "buildmode", "compiler", "covermode", "coverpkg", "gccgoflags", "gcflags",
	"installsuffix", "ldflags", "mod", "modfile", "overlay", "pgo", "pkgdir", "tags", "toolexec",
}

// buildPackages returns the package arguments of `go build` args: what follows the flags.
func buildPackages(args []string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[i+1:], nil
		}
		if !strings.HasPrefix(a, "-") {
			return args[i:], nil
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && slices.Contains(valueFlags, name) {
			if i+1 == len(args) {
				return nil, fmt.Errorf("go build %s: %s has no value", strings.Join(args, " "), a)
			}
			i++
		}
	}
	return nil, nil
}

// shellWords is the words of s split as sh would, with quotes removed and variables expanded
// from vars; s must be a single command.
func shellWords(s string, vars map[string]string) ([]string, error) {
	commands, err := shellCommands(s, vars)
	if err != nil {
		return nil, err
	}
	switch len(commands) {
	case 0:
		return nil, nil
	case 1:
		return commands[0], nil
	}
	return nil, fmt.Errorf("%s: more than one command", s)
}

// shellCommands splits a shell command line into its simple commands (separated by ;, &, &&,
// | and ||), each a list of words with quotes removed and variables ($NAME, ${NAME},
// ${NAME:-default}, ${NAME-default}) expanded from vars. An unquoted expansion is not split
// further, and one that is empty, alone in its word, leaves no word. Command substitution,
// redirections, subshells and the rest of sh are an error.
func shellCommands(s string, vars map[string]string) ([][]string, error) {
	var (
		commands [][]string
		words    []string
		word     strings.Builder
		inWord   bool // a word has begun, if only with "" (an empty word)
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		if len(words) > 0 {
			commands = append(commands, words)
		}
		words = nil
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n':
			endWord()
		case ';':
			endCommand()
		case '&', '|':
			endCommand()
			if i+1 < len(s) && s[i+1] == c {
				i++
			}
		case '\\':
			if i+1 < len(s) {
				i++
				word.WriteByte(s[i])
				inWord = true
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%s: unterminated '", s)
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			n, err := doubleQuoted(s[i+1:], vars, &word)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s, err)
			}
			i += n
			inWord = true
		case '$':
			n, value, err := expand(s[i:], vars)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s, err)
			}
			word.WriteString(value)
			i += n - 1
			inWord = inWord || value != ""
		case '<', '>', '(', ')', '`', '*', '?', '[', '#', '~':
			if (c == '#' || c == '~') && inWord { // special only at the start of a word
				word.WriteByte(c)
				continue
			}
			return nil, fmt.Errorf("%s: %q at %d is more shell than this parser reads", s, c, i)
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCommand()
	return commands, nil
}

// doubleQuoted reads the inside of a double-quoted string from s (just after the opening
// quote) into word and returns how many bytes it took, the closing quote included.
func doubleQuoted(s string, vars map[string]string, word *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
				i++
			}
			word.WriteByte(s[i])
		case '$':
			n, value, err := expand(s[i:], vars)
			if err != nil {
				return 0, err
			}
			word.WriteString(value)
			i += n - 1
		case '`':
			return 0, errors.New("command substitution (`) is more shell than this parser reads")
		default:
			word.WriteByte(c)
		}
	}
	return 0, errors.New(`unterminated "`)
}

// expand reads the expansion at the start of s ('$' first) and returns how many bytes it took
// and its value. A '$' that starts no expansion is itself.
func expand(s string, vars map[string]string) (int, string, error) {
	if strings.HasPrefix(s, "$(") {
		return 0, "", errors.New("command substitution $(...) is more shell than this parser reads")
	}
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return 0, "", errors.New("unterminated ${")
		}
		inner := s[2:end]
		name, def, op := inner, "", ""
		if i := strings.IndexAny(inner, ":-+=?#%/^,@"); i >= 0 {
			name = inner[:i]
			for _, o := range []string{":-", "-"} {
				if rest, ok := strings.CutPrefix(inner[i:], o); ok {
					op, def = o, rest
					break
				}
			}
			if op == "" {
				return 0, "", fmt.Errorf("${%s}: only ${NAME}, ${NAME:-default} and ${NAME-default} are read", inner)
			}
		}
		value, set := vars[name]
		if op == ":-" && value == "" || op == "-" && !set {
			value = def
		}
		return end + 1, value, nil
	}
	n := 1
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || n > 1 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	if n == 1 {
		return 1, "$", nil
	}
	return n, vars[s[1:n]], nil
}

// dockerfiles are the Dockerfiles in the repository (outside hidden directories, bin and
// testdata), relative to its root, slash-separated.
func dockerfiles(root string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if name == "Dockerfile" {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	return found, err
}

// linuxAMD64 are the automatic platform ARGs of a build for linux/amd64.
var linuxAMD64 = map[string]string{
	"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
	"BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
}

func TestParseDockerfile(t *testing.T) {
	root := repo.Root(t)
	for _, tc := range []struct {
		file string
		want []goBuild
	}{
		{"Dockerfile", []goBuild{{
			Env:      []string{"TARGETOS=linux", "TARGETARCH=amd64", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
			Args:     []string{"-trimpath", "-o", "manager", "./cmd/manager"},
			Packages: []string{"./cmd/manager"},
		}}},
		{"cmd/uploader/Dockerfile", []goBuild{{
			Env:      []string{"TARGETOS=linux", "TARGETARCH=amd64", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
			Args:     []string{"-trimpath", "-o", "uploader", "./cmd/uploader"},
			Packages: []string{"./cmd/uploader"},
		}}},
		{"converter/Dockerfile", []goBuild{{
			Env:      []string{"TARGETOS=linux", "TARGETARCH=amd64", "CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64"},
			Args:     []string{"-trimpath", "-ldflags=-s -w", "-o", "/out/converter", "./cmd/converter"},
			Packages: []string{"./cmd/converter"},
		}}},
	} {
		got, err := parseDockerfile(filepath.Join(root, filepath.FromSlash(tc.file)), linuxAMD64)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: go build commands (-want +got):\n%s", tc.file, diff)
		}
	}
}

// TestParseDockerfileForms covers what our Dockerfiles do not use yet: ARG defaults, ENV in
// both forms, chained commands, quoting, exec form, RUN flags and a second stage.
func TestParseDockerfileForms(t *testing.T) {
	dockerfile := `# syntax=docker/dockerfile:1
FROM golang:1.26 AS one
ARG TARGETARCH
ARG TAGS=netgo VERSION
ENV GOFLAGS=-mod=readonly \
    # a comment inside a continuation
    NAME="two words"
ENV LEGACY value with spaces
WORKDIR /src
COPY . .
RUN go mod download && CGO_ENABLED=0 go build -tags "$TAGS" -ldflags '-X main.v=${VERSION:-dev}' -o /bin/a ./cmd/a ./cmd/b; echo done
RUN --mount=type=cache,target=/root/.cache/go-build ["go", "build", "-o", "/bin/c", "./cmd/c"]

FROM golang:1.26
WORKDIR /w
COPY . /w
RUN go build -o=/d -- ./cmd/d
`
	file := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(file, []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parseDockerfile(file, linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	stageEnv := []string{"TARGETARCH=amd64", "TAGS=netgo", "GOFLAGS=-mod=readonly", "NAME=two words", "LEGACY=value with spaces"}
	want := []goBuild{
		{
			Env:      append(slices.Clone(stageEnv), "CGO_ENABLED=0"),
			Args:     []string{"-tags", "netgo", "-ldflags", "-X main.v=${VERSION:-dev}", "-o", "/bin/a", "./cmd/a", "./cmd/b"},
			Packages: []string{"./cmd/a", "./cmd/b"},
		},
		{
			Env:      stageEnv,
			Args:     []string{"-o", "/bin/c", "./cmd/c"},
			Packages: []string{"./cmd/c"},
		},
		{
			Env:      []string{},
			Args:     []string{"-o=/d", "--", "./cmd/d"},
			Packages: []string{"./cmd/d"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("go build commands (-want +got):\n%s", diff)
	}

	for _, bad := range []string{
		"FROM x\nWORKDIR /src\nCOPY . .\nRUN go build -o $(pwd)/a ./cmd/a\n",
		"FROM x\nWORKDIR /src\nCOPY . .\nRUN cd cmd && go build .\n",
		"FROM x\nWORKDIR /src\nCOPY . .\nRUN go build ./cmd/a > log\n",
		"FROM x\nWORKDIR /src\nCOPY . /elsewhere\nRUN go build ./cmd/a\n",
		"FROM x\nWORKDIR /src\nRUN go build ./cmd/a\n",
	} {
		if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := parseDockerfile(file, linuxAMD64); err == nil {
			t.Errorf("parseDockerfile(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestDockerfiles(t *testing.T) {
	got, err := dockerfiles(repo.Root(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Dockerfile", "cmd/uploader/Dockerfile", "converter/Dockerfile"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Dockerfiles (-want +got):\n%s", diff)
	}
}
