package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The admin panel's tests drive the built grin in headless Chromium, as
// an administrator would, at a desktop and a phone size. Screenshots go to
// the test's directory (GRIN_SCREENSHOTS names another).

// viewport is a screen size the panel is tested at.
type viewport struct {
	name          string
	width, height int64
}

var viewports = []viewport{{"desktop", 1280, 800}, {"phone", 390, 844}}

// browser starts headless Chromium (Debian's). Without it the test skips
// saying how to install it; CI sets GRIN_REQUIRE_BROWSER=1, which turns the
// skip into a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("GRIN_REQUIRE_BROWSER") == "1" {
			t.Fatal("chromium is not installed: apt-get install -y chromium")
		}
		t.Skip("the admin panel test needs Chromium: apt-get install -y chromium")
	}
	// Chromium sometimes fails to start on a loaded machine (it exits
	// before printing its DevTools address); a fresh profile and another
	// try get one, and a third failure is reported.
	var last error
	for try := 0; try < 3; try++ {
		ctx, err := startBrowser(t, path)
		if err == nil {
			return ctx
		}
		last = err
	}
	t.Fatalf("start chromium: %v", last)
	return nil
}

func startBrowser(t *testing.T, path string) (context.Context, error) {
	// Chromium's helpers may still write to its profile for a moment
	// after the browser exits, recreating what was just removed; so the
	// profile is removed until it stays gone, rather than by t.TempDir,
	// which would fail the test on the first race.
	profile, err := os.MkdirTemp("", "grin-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for try := 0; try < 25; try++ {
			err := os.RemoveAll(profile)
			time.Sleep(200 * time.Millisecond)
			if _, gone := os.Stat(profile); err == nil && errors.Is(gone, fs.ErrNotExist) {
				return
			}
		}
		t.Logf("chromium's profile %s could not be removed", profile)
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp logs DOM events it does not know (the top layer of
	// dialogs, newer than its protocol tables); they mean nothing here.
	quiet := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled node event") {
			log.Printf("chromedp: %s", msg) // not t.Logf: chromedp may log after the test ends
		}
	}
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(quiet))
	// The browser lives as long as the context of its first Run: start it
	// here, not under an action's deadline.
	if err := chromedp.Run(ctx); err != nil {
		cancel()
		cancelAlloc()
		return nil, err
	}
	t.Cleanup(cancel)
	t.Cleanup(cancelAlloc)
	return ctx, nil
}

// run performs actions with a deadline and fails the test with what it
// was doing.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// page is one browser on the panel at one screen size.
type page struct {
	t     *testing.T
	ctx   context.Context
	url   string
	shots string
	vp    viewport
	errs  *[]string // uncaught script errors seen in the page
}

// shotsDir is where a test's screenshots go.
func shotsDir(t *testing.T) string {
	dir := t.TempDir()
	if d := os.Getenv("GRIN_SCREENSHOTS"); d != "" {
		dir = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func openPanel(t *testing.T, url string, vp viewport) *page {
	ctx := browser(t)
	errs := &[]string{}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*cdpruntime.EventExceptionThrown); ok {
			*errs = append(*errs, e.ExceptionDetails.Error())
		}
	})
	p := &page{t: t, ctx: ctx, url: url, shots: shotsDir(t), vp: vp, errs: errs}
	run(t, ctx, "size "+vp.name, chromedp.EmulateViewport(vp.width, vp.height))
	t.Cleanup(func() {
		if len(*errs) > 0 {
			t.Errorf("script errors in the page: %v", *errs)
		}
	})
	return p
}

func (p *page) open(hash string) {
	p.t.Helper()
	run(p.t, p.ctx, "open "+hash, chromedp.Navigate(p.url+"/admin"+hash), chromedp.WaitReady("body", chromedp.ByQuery))
}

// login logs in through the form and waits for the navigation.
func (p *page) login(user, pw string) {
	p.t.Helper()
	run(p.t, p.ctx, "log in as "+user,
		chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SendKeys(`#login-username`, user, chromedp.ByQuery),
		chromedp.SendKeys(`#login-password`, pw, chromedp.ByQuery),
		chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#account", chromedp.ByQuery),
		chromedp.WaitReady("#view > section.view", chromedp.ByQuery))
}

// eval evaluates JavaScript (awaiting a promise) into out.
func (p *page) eval(js string, out any) {
	p.t.Helper()
	run(p.t, p.ctx, "evaluate "+js, chromedp.Evaluate(js, out, func(e *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return e.WithAwaitPromise(true) }))
}

// wait polls a JavaScript expression until it is truthy and returns it as
// text; it fails the test with what it waited for.
func (p *page) wait(what, js string) string {
	p.t.Helper()
	var out any
	c, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(c, chromedp.Poll(js, &out, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		var page string
		chromedp.Run(p.ctx, chromedp.Evaluate(`document.querySelector("main").innerText + "\nNOTICES: " + document.querySelector("#notices").innerText`, &page))
		p.shot("failed-" + regexp.MustCompile(`\W+`).ReplaceAllString(what, "-"))
		p.t.Fatalf("waiting for %s: %v\nthe page reads:\n%s", what, err, page)
	}
	return fmt.Sprint(out)
}

func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel), &s)
	return s
}

func (p *page) exists(sel string) bool {
	p.t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.closest("[hidden]") && e.getClientRects().length > 0; })()`, sel), &ok)
	return ok
}

func (p *page) click(sel string) {
	p.t.Helper()
	// A view that re-renders (a table reloaded by a search) may replace
	// the node between chromedp finding it and clicking it: find it again,
	// as a person's next click would.
	for attempt := 1; ; attempt++ {
		c, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		err := chromedp.Run(c, chromedp.Click(sel, chromedp.ByQuery))
		cancel()
		if err == nil {
			return
		}
		if attempt < 4 && strings.Contains(err.Error(), "Could not find node") {
			continue
		}
		p.t.Fatalf("click %s: %v", sel, err)
	}
}

func (p *page) typeIn(sel, text string) {
	p.t.Helper()
	run(p.t, p.ctx, "type in "+sel, chromedp.SendKeys(sel, text, chromedp.ByQuery))
}

func (p *page) shot(name string) {
	p.t.Helper()
	var png []byte
	// From the top, so the header that stays on screen is drawn once.
	if err := chromedp.Run(p.ctx, chromedp.Evaluate(`window.scrollTo(0, 0)`, nil), chromedp.FullScreenshot(&png, 100)); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(p.shots, p.vp.name+"-"+name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// fitsWidth reports whether the page scrolls sideways (it should not, at
// any size).
func (p *page) fitsWidth() bool {
	p.t.Helper()
	var ok bool
	p.eval(`document.documentElement.scrollWidth <= window.innerWidth`, &ok)
	if !ok {
		var wide []string
		p.eval(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + "#" + e.id + "." + e.className)`, &wide)
		p.t.Logf("wider than the window: %v", wide)
	}
	return ok
}

// call is an API call from the test itself (setting up, checking).
func call(t *testing.T, url, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func token(t *testing.T, url, user, pw string) string {
	t.Helper()
	status, b := call(t, url, "", "POST", "/auth/token", map[string]string{"username": user, "password": pw})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if status != 200 || json.Unmarshal(b, &tok) != nil {
		t.Fatalf("log in %s: %d %s", user, status, b)
	}
	return tok.AccessToken
}

func createUser(t *testing.T, url, admin, name string, perms map[string][]string) string {
	t.Helper()
	status, b := call(t, url, admin, "POST", "/users", map[string]any{"username": name, "password": "pw-" + name, "permissions": perms})
	var u struct {
		ID string `json:"id"`
	}
	if status != 200 || json.Unmarshal(b, &u) != nil {
		t.Fatalf("create %s: %d %s", name, status, b)
	}
	return u.ID
}

const adminPassword = "panel-admin-password"

func panelServer(t *testing.T) (url, admin string) {
	url = server(t, "GRIN_AUTH=required", "GRIN_ADMIN_PASSWORD="+adminPassword)
	return url, token(t, url, "admin", adminPassword)
}

// eachViewport runs fn at the desktop and the phone size.
func eachViewport(t *testing.T, fn func(t *testing.T, vp viewport)) {
	for _, vp := range viewports {
		t.Run(vp.name, func(t *testing.T) { fn(t, vp) })
	}
}

// setValue replaces an input's value (as typing over it would, firing
// input) without typing it key by key.
func (p *page) setValue(sel, value string) {
	p.t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.value = %q; e.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`, sel, value), &ok)
	if !ok {
		p.t.Fatalf("no %s to set", sel)
	}
}
