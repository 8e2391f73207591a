package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

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
	// Chromium's helpers may still write to its profile as it exits, so
	// the profile is removed best-effort rather than by t.TempDir.
	profile, err := os.MkdirTemp("", "grin-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1200, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The browser lives as long as the context of its first Run: start it
	// here, not under an action's deadline.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
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

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAdminPanelInABrowser(t *testing.T) {
	ctx := browser(t)
	url := server(t, "GRIN_AUTH=required", "GRIN_ADMIN_PASSWORD=panel-admin-password")
	shots := t.TempDir()
	if d := os.Getenv("GRIN_SCREENSHOTS"); d != "" {
		shots = d
	}
	t.Logf("screenshots in %s", shots)

	login := func(ctx context.Context, user, pw string) {
		run(t, ctx, "log in as "+user,
			chromedp.Navigate(url+"/admin"),
			chromedp.WaitVisible("#login-form", chromedp.ByQuery),
			chromedp.SendKeys(`#login-form input[name=username]`, user, chromedp.ByQuery),
			chromedp.SendKeys(`#login-form input[name=password]`, pw, chromedp.ByQuery),
			chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
			// The navigation appears once every section has been decided.
			chromedp.WaitVisible("#nav", chromedp.ByQuery),
		)
	}
	visible := func(ctx context.Context, sel string) bool {
		var hidden bool
		run(t, ctx, "check "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).hidden`, sel), &hidden))
		return !hidden
	}

	// A wrong password is refused in words.
	run(t, ctx, "open", chromedp.Navigate(url+"/admin"), chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SendKeys(`#login-form input[name=username]`, "admin", chromedp.ByQuery),
		chromedp.SendKeys(`#login-form input[name=password]`, "nope", chromedp.ByQuery),
		chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery))
	var loginErr string
	run(t, ctx, "wrong password", chromedp.Poll(`document.querySelector("#login-error").textContent`, &loginErr, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(loginErr, "Wrong") {
		t.Errorf("login error %q", loginErr)
	}
	screenshot(t, ctx, shots, "login")

	login(ctx, "admin", "panel-admin-password")
	run(t, ctx, "users listed", chromedp.WaitVisible(`#users-table tbody tr`, chromedp.ByQuery))
	for _, s := range []string{"#users-section", "#policies-section", "#plugins-section", "#memory-section", "#chat-section", "#llm-section"} {
		if !visible(ctx, s) {
			t.Errorf("admin cannot see %s", s)
		}
	}
	screenshot(t, ctx, shots, "admin")

	// A validation error shows beside its field.
	run(t, ctx, "bad user",
		chromedp.SendKeys(`#user-form input[name=username]`, "x", chromedp.ByQuery),
		chromedp.SendKeys(`#user-form input[name=password]`, "secret1", chromedp.ByQuery),
		chromedp.Click(`#user-submit`, chromedp.ByQuery))
	var fieldErr string
	run(t, ctx, "field error", chromedp.Poll(`document.querySelector('#user-form .error[data-field="username"]').textContent`, &fieldErr, chromedp.WithPollingTimeout(10*time.Second)))
	if fieldErr == "" {
		t.Error("no error beside the username")
	}
	screenshot(t, ctx, shots, "user-error")

	// Create carol with chosen permissions.
	run(t, ctx, "create carol",
		chromedp.Click(`#user-cancel`, chromedp.ByQuery),
		chromedp.SendKeys(`#user-form input[name=username]`, "carol", chromedp.ByQuery),
		chromedp.SendKeys(`#user-form input[name=password]`, "carol-pw", chromedp.ByQuery),
		chromedp.Click(`input[value="CONVERSATION:WRITE"]`, chromedp.ByQuery),
		chromedp.Click(`input[value="CONVERSATION:READ"]`, chromedp.ByQuery),
		chromedp.Click(`input[value="MEMORY:READ"]`, chromedp.ByQuery),
		chromedp.Click(`#user-submit`, chromedp.ByQuery),
	)
	var usersText string
	run(t, ctx, "carol listed", chromedp.Poll(`document.querySelector("#users-table").textContent.includes("carol") && document.querySelector("#users-table").textContent`, &usersText, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(usersText, "CONVERSATION: WRITE, READ") {
		t.Errorf("carol's permissions in the table: %q", usersText)
	}

	// Carol, in a second browser, sees only her sections, and the
	// API refuses what the panel hides.
	// (A second browser: a background tab of the first would not render.)
	carol := browser(t)
	login(carol, "carol", "carol-pw")
	for s, want := range map[string]bool{"#users-section": false, "#policies-section": false, "#plugins-section": false, "#llm-section": false, "#chat-section": true, "#memory-section": true} {
		if got := visible(carol, s); got != want {
			t.Errorf("carol sees %s: %v, want %v", s, got, want)
		}
	}
	var status int
	run(t, carol, "forbidden call", chromedp.Evaluate(`fetch("/users", {headers: {Authorization: "Bearer " + sessionStorage.getItem("grin-token")}}).then(r => r.status)`, &status,
		func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if status != 403 {
		t.Errorf("carol's GET /users from the page: %d, want 403", status)
	}
	screenshot(t, carol, shots, "carol")

	// Chat with a streamed answer.
	run(t, carol, "chat",
		chromedp.SendKeys(`#chat-form input[name=text]`, "My hat is made of teacups", chromedp.ByQuery),
		chromedp.Click(`#chat-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#chat-log li.ai.done`, chromedp.ByQuery))
	var tokens string
	run(t, carol, "tokens", chromedp.AttributeValue(`#chat-log li.ai.done`, "data-tokens", &tokens, nil, chromedp.ByQuery))
	if tokens == "" || tokens == "0" || tokens == "1" {
		t.Errorf("the answer was not streamed: %q token frames", tokens)
	}
	screenshot(t, carol, shots, "chat")

	// Edit the policy and see the decision change.
	check := func(subject string) string {
		var out string
		run(t, ctx, "check",
			chromedp.SetValue(`#check-form input[name=subject]`, subject, chromedp.ByQuery),
			chromedp.SetValue(`#check-form input[name=object]`, "users", chromedp.ByQuery),
			chromedp.SetValue(`#check-form select[name=action]`, "list", chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelector("#check-result").textContent = ""`, nil),
			chromedp.Click(`#check-form button[type=submit]`, chromedp.ByQuery),
			chromedp.Poll(`document.querySelector("#check-result").textContent`, &out, chromedp.WithPollingTimeout(10*time.Second)))
		return out
	}
	screenshot(t, ctx, shots, "before-check")
	if got := check("role:auditor"); !strings.Contains(got, "denied") {
		t.Fatalf("before the edit: %q", got)
	}
	// A user is named by username, as the panel shows users.
	if got := check("admin"); !strings.Contains(got, "(user admin): allowed") {
		t.Errorf("check admin: %q", got)
	}
	var policyStatus string
	run(t, ctx, "edit policy",
		chromedp.Evaluate(`document.querySelector("#policy-form textarea[name=policy]").value += "\np, role:auditor, users, list\ng, user:nobody, role:auditor\n"`, nil),
		chromedp.Click(`#policy-form button[type=submit]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#policy-status").textContent`, &policyStatus, chromedp.WithPollingTimeout(10*time.Second)))
	if got := check("role:auditor"); !strings.Contains(got, "allowed") {
		t.Errorf("after the edit: %q (status %q)", got, policyStatus)
	}
	// The rule naming nobody is shown as a warning.
	if !strings.Contains(policyStatus, "Warning") || !strings.Contains(policyStatus, "user:nobody names no user") {
		t.Errorf("policy status after saving a rule naming nobody: %q", policyStatus)
	}
	screenshot(t, ctx, shots, "policies")

	// Upload and toggle the seed's example plugin.
	zipPath := filepath.Join(t.TempDir(), "author.zip")
	if out, err := exec.Command(binary, "plugin", "build", "-o", zipPath, "../wasmhooks/examples/author").CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	run(t, ctx, "upload plugin",
		chromedp.SetUploadFiles(`#plugin-upload input[type=file]`, []string{zipPath}, chromedp.ByQuery),
		chromedp.Click(`#plugin-upload button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`li[data-plugin="author"]`, chromedp.ByQuery))
	var state string
	run(t, ctx, "toggle plugin",
		chromedp.Click(`li[data-plugin="author"] button`, chromedp.ByQuery),
		chromedp.Poll(`(document.querySelector('li[data-plugin="author"] .state') || {}).textContent === "inactive" && "inactive"`, &state, chromedp.WithPollingTimeout(10*time.Second)))
	// Its logs, read through GET /plugins/logs/{id}: nothing has run yet.
	var logs string
	run(t, ctx, "plugin logs",
		chromedp.Click(`li[data-plugin="author"] button.show-logs`, chromedp.ByQuery),
		chromedp.Poll(`(() => { const b = document.querySelector('li[data-plugin="author"] .plugin-logs'); return b && b.textContent !== "Loading…" && b.textContent; })()`,
			&logs, chromedp.WithPollingTimeout(10*time.Second)))
	if logs != "No log lines or failures since grin started." {
		t.Errorf("the plugin's logs read %q", logs)
	}
	var figures string
	run(t, ctx, "plugin figures", chromedp.Text(`li[data-plugin="author"] .plugin-stats`, &figures, chromedp.ByQuery))
	if !strings.HasPrefix(figures, "0 calls, 0 failed") {
		t.Errorf("the plugin's figures read %q", figures)
	}
	screenshot(t, ctx, shots, "plugins")

	// The administrator browses carol's memory and history by her id.
	var carolID string
	run(t, carol, "carol's id", chromedp.Evaluate(`JSON.parse(atob(sessionStorage.getItem("grin-token").split(".")[1].replace(/-/g,"+").replace(/_/g,"/"))).sub`, &carolID))
	var points string
	run(t, ctx, "browse carol",
		chromedp.SetValue(`#browse-form input[name=user]`, carolID, chromedp.ByQuery),
		chromedp.Click(`#browse-form button[type=submit]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#points").textContent.includes("teacups") && document.querySelector("#history").textContent`, &points, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(points, "Human: My hat is made of teacups") {
		t.Errorf("carol's history as the admin sees it: %q", points)
	}
	var spaces string
	run(t, ctx, "spaces", chromedp.Text("#spaces", &spaces, chromedp.ByQuery))
	if !strings.Contains(spaces, "shared") {
		t.Errorf("declarative spaces shown: %q", spaces)
	}
	screenshot(t, ctx, shots, "memory")

	// When the server cannot be reached, the panel says so.
	var bannerText string
	run(t, ctx, "unreachable",
		chromedp.Evaluate(`window.fetch = () => Promise.reject(new TypeError("Failed to fetch")); true`, nil),
		chromedp.Click(`#browse-form button[type=submit]`, chromedp.ByQuery),
		chromedp.Poll(`!document.querySelector("#banner").hidden && document.querySelector("#banner").textContent`, &bannerText, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(bannerText, "cannot be reached") {
		t.Errorf("banner %q", bannerText)
	}
	screenshot(t, ctx, shots, "unreachable")
	run(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible("#nav", chromedp.ByQuery))

	// A narrow window still shows the sections, one under the other.
	run(t, ctx, "narrow", chromedp.EmulateViewport(360, 800))
	screenshot(t, ctx, shots, "narrow")

	// Log out: the sections go.
	run(t, ctx, "log out", chromedp.Click("#logout", chromedp.ByQuery), chromedp.WaitVisible("#login-form", chromedp.ByQuery))
	if visible(ctx, "#users-section") {
		t.Error("users still shown after logging out")
	}
}
