package upload

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"k8s.io/utils/ptr"

	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// chromiumPath finds Debian's Chromium: $KUBEXPORT_CHROMIUM, else /usr/bin/chromium. Missing, the
// browser test fails: it is part of the suite, not optional.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KUBEXPORT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium not found: install chromium (see .ci/run: apt-get install --no-install-recommends chromium) or set KUBEXPORT_CHROMIUM")
	return ""
}

// artifactsDir is where the test saves screenshots: $KUBEXPORT_ARTIFACTS, else bin/artifacts.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KUBEXPORT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repo.Root(t), "bin", "artifacts")
	}
	must(t, os.MkdirAll(dir, 0o755))
	return dir
}

// TestBrowser drives the pages in headless Chromium: enter the token, upload a deck with options,
// land on the progress page, watch it follow the export live while the test plays the operator,
// download the PDF and find the export in the list. Screenshots go to the artifacts directory.
func TestBrowser(t *testing.T) {
	requireIntegration(t)
	chrome := chromiumPath(t)
	const token = "browser-test-token"
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	must(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	e := newTestEnv(t, func(c *Config) { c.TokenFile = tokenFile })
	artifacts := artifactsDir(t)
	deck := filepath.Join(t.TempDir(), "Quarterly review.pptx")
	must(t, os.WriteFile(deck, docs.PPTX(3), 0o644))
	downloads := t.TempDir()
	ctx, fail := startBrowser(t, chrome, artifacts)
	phaseIs := func(phase string) chromedp.Action[bool] {
		return chromedp.Poll[bool](fmt.Sprintf(`document.getElementById('phase').dataset.phase === %q`, phase),
			chromedp.WithPollingTimeout(20*time.Second))
	}

	// The upload page asks for the token once.
	fail("opening the upload page", chromedp.Do(ctx, chromedp.Navigate(e.base+"/")))
	var chosen string
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: ptr.To(true)})
	fail("allowing downloads", err)
	fail("entering the token", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("token-dialog")),
		chromedp.SendKeys(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitNotPresent(chromedp.ID("token-dialog")),
	))
	// A picture is refused with a clear message, and nothing is created.
	picture := filepath.Join(t.TempDir(), "holiday.png")
	must(t, os.WriteFile(picture, docs.PNG(), 0o644))
	fail("uploading a picture", chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{picture}),
		chromedp.WaitVisible(chromedp.ID("chosen")),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("error")),
	))
	refusal, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
	fail("reading the refusal", err)
	if !strings.Contains(refusal, "an image (image/png), not an office document") {
		t.Errorf("upload page error: %q", refusal)
	}
	shot(t, ctx, filepath.Join(artifacts, "uploader-refused.png"))
	if n := len(e.exportJobs(t)); n != 0 {
		t.Errorf("%d ExportJobs after a refused upload", n)
	}

	fail("choosing the deck and options", chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{deck}),
		chromedp.WaitVisible(chromedp.ID("chosen")),
		chromedp.SendKeys(chromedp.ID("pageRange"), "1-2"),
		chromedp.Click(chromedp.ID("exportNotes")),
	))
	chosen, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("chosen")))
	fail("reading the chosen file", err)
	limit, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("limit-text")))
	fail("reading the size limit", err)
	if !strings.Contains(chosen, "Quarterly review.pptx") || !strings.Contains(limit, "200 MiB") {
		t.Errorf("upload page shows %q and %q", chosen, limit)
	}
	shot(t, ctx, filepath.Join(artifacts, "uploader-upload.png"))

	// Upload: the page moves to the export's progress page.
	fail("submitting", chromedp.Do(ctx, chromedp.Click(chromedp.ID("submit"))))
	fail("landing on the progress page", pollAcrossNavigation(ctx, 20*time.Second,
		`/^\/exports\/ex-[a-z2-7]{16}$/.test(location.pathname) && document.getElementById('phase').dataset.phase !== ''`))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	fail("reading the address", err)
	id := loc[strings.LastIndex(loc, "/")+1:]
	ej := e.exportJob(t, id)
	if ej.Spec.Source.Filename != "Quarterly review.pptx" || ej.Spec.Options == nil || ej.Spec.Options.PageRange != "1-2" || !ej.Spec.Options.ExportNotes {
		t.Errorf("ExportJob spec from the page: %+v options %+v", ej.Spec.Source, ej.Spec.Options)
	}
	_, err = chromedp.Run(ctx, phaseIs(PhaseAccepted))
	fail("seeing the Accepted phase", err)

	// The page follows the export over the event stream while the test plays the operator.
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('live').textContent === 'Live updates on.'`,
		chromedp.WithPollingTimeout(10*time.Second)))
	fail("the event stream opening", err)
	e.running(t, id)
	_, err = chromedp.Run(ctx, phaseIs("Running"))
	fail("seeing the Running phase", err)
	shot(t, ctx, filepath.Join(artifacts, "uploader-running.png"))
	pdf := e.succeed(t, id, 2)
	_, err = chromedp.Run(ctx, phaseIs("Succeeded"))
	fail("seeing the Succeeded phase", err)
	fail("the download button appearing", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("download"))))
	facts, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("facts")))
	fail("reading the facts", err)
	if !strings.Contains(facts, "Quarterly review.pdf") || !strings.Contains(facts, "2 pages") || !strings.Contains(facts, "pages 1-2") {
		t.Errorf("progress page facts: %q", facts)
	}
	shot(t, ctx, filepath.Join(artifacts, "uploader-progress.png"))

	// Download: the file lands under the PDF's name with the stored bytes.
	fail("clicking download", chromedp.Do(ctx, chromedp.Click(chromedp.ID("download"))))
	want := filepath.Join(downloads, "Quarterly review.pdf")
	eventually(t, 20*time.Second, func() error {
		got, err := os.ReadFile(want)
		if err != nil {
			entries, _ := os.ReadDir(downloads)
			return fmt.Errorf("no download yet (%v); the folder has %v", err, entries)
		}
		if !bytes.Equal(got, pdf) {
			return fmt.Errorf("downloaded %d bytes, want the %d-byte PDF", len(got), len(pdf))
		}
		return nil
	})
	if pdfPages(t, pdf) != 2 {
		t.Error("the PDF has the wrong page count")
	}

	// The list shows it, done.
	fail("opening the list", chromedp.Do(ctx, chromedp.Navigate(e.base+"/exports")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`(() => { const r = document.querySelector('tr[data-id=%q]'); return !!r && r.textContent.includes('Done') && r.textContent.includes('Quarterly review.pptx'); })()`, id),
		chromedp.WithPollingTimeout(10*time.Second)))
	fail("finding the export in the list", err)
	shot(t, ctx, filepath.Join(artifacts, "uploader-list.png"))

	// A failed export explains itself in plain words.
	body, ct := multipartBody(t, "broken deck.pptx", docs.PPTX(1), nil, nil)
	h := bearer(token)
	h.Set("Content-Type", ct)
	failed := accepted(t, e.do(t, "POST", "/api/v1/exports", body, h))
	fail("opening the failing export", chromedp.Do(ctx, chromedp.Navigate(e.base+failed.Links["page"])))
	_, err = chromedp.Run(ctx, phaseIs(PhaseAccepted))
	fail("seeing the second export", err)
	e.fail(t, failed.ID, "Failed", "Corrupt", "LibreOffice could not read the document: it is damaged")
	_, err = chromedp.Run(ctx, phaseIs("Failed"))
	fail("seeing the failure", err)
	hint, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("failure")))
	fail("reading the failure", err)
	if !strings.Contains(hint, hints["Corrupt"]) || !strings.Contains(hint, "Reason: Corrupt") {
		t.Errorf("failure box: %q", hint)
	}
	shot(t, ctx, filepath.Join(artifacts, "uploader-failed.png"))

	// A reload of the progress page (a bookmark) shows the finished export again.
	fail("reopening the progress page", chromedp.Do(ctx, chromedp.Navigate(e.base+"/exports/"+id)))
	_, err = chromedp.Run(ctx, phaseIs("Succeeded"))
	fail("seeing the finished export after a reload", err)
}

// pollAcrossNavigation waits until expr is true in the page, also while the page navigates (a
// poll does not survive a navigation: it is started again in the new page).
func pollAcrossNavigation(ctx context.Context, timeout time.Duration, expr string) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shot saves a full-page PNG screenshot.
func shot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", path, err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("saving screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// startBrowser starts headless Chromium for one test (stopped when it ends) and returns its
// tab's context, bounded to two minutes, and a fail function that, on an error, saves a
// screenshot and Chromium's output and ends the test.
func startBrowser(t *testing.T, chrome, artifacts string) (context.Context, func(step string, err error)) {
	t.Helper()
	chromeLog := &testutil.SyncBuffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
		chromedp.CombinedOutput(chromeLog),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	fail := func(step string, err error) {
		t.Helper()
		if err != nil {
			shot(t, ctx, filepath.Join(artifacts, "uploader-failure.png"))
			t.Fatalf("%s: %v\nchromium output:\n%s", step, err, tail(chromeLog.String(), 2000))
		}
	}
	return ctx, fail
}

// TestBrowserSignedIn: with Kubernetes authentication the page takes a service-account token
// and shows who it belongs to.
func TestBrowserSignedIn(t *testing.T) {
	requireIntegration(t)
	chrome := chromiumPath(t)
	e := newTestEnv(t, func(c *Config) { c.Auth = AuthKubernetes })
	alice := e.serviceAccount(t, "alice", "create", "get")
	artifacts := artifactsDir(t)
	ctx, fail := startBrowser(t, chrome, artifacts)
	fail("entering the token", chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token-dialog")),
		chromedp.SendKeys(chromedp.ID("token-input"), alice),
		chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitVisible(chromedp.ID("signed-in")),
	))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("signed-in")))
	fail("reading who is signed in", err)
	if want := "Signed in as system:serviceaccount:" + e.ns + ":alice"; who != want {
		t.Errorf("the page says %q, want %q", who, want)
	}
	shot(t, ctx, filepath.Join(artifacts, "uploader-signed-in.png"))
}
