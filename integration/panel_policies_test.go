package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The administrator's tasks on roles and policies, in the panel, at both
// sizes: make a user administrator by role; break the policy in the editor
// and see the line marked; see a rule naming nobody marked as a warning;
// deny one user deletion after a dry run lists what it turns, and see the
// deny in the user's effective permissions; restore an earlier version
// after its dry run and a confirmation.

// policyLine is the line (from 1) of the editor's text that is exactly
// rule, computed in the page.
func (p *page) policyLine(rule string) int {
	p.t.Helper()
	var n int
	p.eval(fmt.Sprintf(`document.querySelector("#policy-policy").value.split("\n").indexOf(%q) + 1`, rule), &n)
	if n == 0 {
		p.t.Fatalf("the editor has no line %q", rule)
	}
	return n
}

// appendRule adds a line to the policy editor as typing would.
func (p *page) appendRule(rule string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { const a = document.querySelector("#policy-policy"); a.value = a.value.replace(/\n*$/, "\n") + %q + "\n"; a.dispatchEvent(new Event("input")); return true; })()`, rule), nil)
}

func TestPanelPolicyEditor(t *testing.T) {
	eachViewport(t, func(t *testing.T, vp viewport) {
		url, admin := panelServer(t)
		createUser(t, url, admin, "bob", map[string][]string{"MEMORY": {"READ", "LIST", "DELETE"}, "CONVERSATION": {"WRITE"}})
		p := openPanel(t, url, vp)
		p.open("#/policies")
		p.login("admin", adminPassword)
		p.wait("the policy", `document.querySelector("#policy-policy") && document.querySelector("#policy-policy").value.includes("role:admin")`)
		if got := p.wait("the version in force", `document.querySelector("#policy-load").textContent`); !strings.Contains(got, "Version 1 is in force.") {
			t.Errorf("the load status reads %q", got)
		}
		n := p.wait("line numbers", `document.querySelectorAll("#policy-policy-gutter li").length === document.querySelector("#policy-policy").value.split("\n").length && document.querySelectorAll("#policy-policy-gutter li").length`)
		if n == "0" {
			t.Error("the editor has no line numbers")
		}

		// A broken rule: the refusal marks its line and says why.
		p.appendRule("p, role:auditor")
		broken := p.policyLine("p, role:auditor")
		p.click("#policy-validate")
		p.wait("the refusal", `document.querySelector("#policy-status.error")`)
		marked := p.wait("the marked line", `[...document.querySelectorAll("#policy-policy-gutter li.error")].map(li => li.dataset.line).join(",")`)
		if marked != fmt.Sprint(broken) {
			t.Errorf("lines marked as errors: %q, want %d", marked, broken)
		}
		problem := p.text(fmt.Sprintf(`#policy-problems li.error[data-line="%d"]`, broken))
		if !strings.Contains(problem, fmt.Sprintf("policy.csv, line %d", broken)) || strings.Contains(problem, "file://") {
			t.Errorf("the problem reads %q", problem)
		}
		p.shot("policy-broken")

		// A rule naming nobody loads, and its line is a warning.
		p.eval(`(() => { const a = document.querySelector("#policy-policy"); a.value = a.value.replace("p, role:auditor\n", "p, user:nobody-here, users, read\n"); return true; })()`, nil)
		warned := p.policyLine("p, user:nobody-here, users, read")
		p.click("#policy-validate")
		got := p.wait("the warning", `[...document.querySelectorAll("#policy-policy-gutter li.warning")].map(li => li.dataset.line).join(",")`)
		if got != fmt.Sprint(warned) || p.exists("#policy-policy-gutter li.error") {
			t.Errorf("warned lines %q, want %d and no error", got, warned)
		}
		if w := p.text(`#policy-problems li.warning`); !strings.Contains(w, "nobody-here") {
			t.Errorf("the warning reads %q", w)
		}

		// Deny bob deletion: Save shows the decisions it turns first, and
		// nothing is in force until they are confirmed.
		p.eval(`(() => { const a = document.querySelector("#policy-policy"); a.value = a.value.replace("p, user:nobody-here, users, read\n", "p, user:bob, *, delete, deny\n"); return true; })()`, nil)
		p.click("#policy-save")
		p.wait("the dry run's changes", `document.querySelector("#policy-changes tbody tr")`)
		var rows []string
		p.eval(`[...document.querySelectorAll("#policy-changes tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " "))`, &rows)
		found := false
		for _, r := range rows {
			if strings.Contains(r, "bob") && strings.Contains(r, "delete") && strings.Contains(r, "denied by a rule") {
				found = true
			}
		}
		if !found {
			t.Errorf("the dry run's changes do not show bob's deletions denied: %q", rows)
		}
		if status, b := call(t, url, admin, "GET", "/policies", nil); status != 200 || strings.Contains(string(b), "user:bob") {
			t.Fatalf("the dry run changed the policy: %d %s", status, b)
		}
		p.shot("policy-dry-run")
		p.click("#policy-confirm")
		p.wait("saved", `document.querySelector("#policy-status").textContent === "Saved; in force now."`)
		if got := p.text("#policy-load"); !strings.Contains(got, "Version 2 is in force.") {
			t.Errorf("after saving, the load status reads %q", got)
		}

		// bob's effective permissions show the deny with its rule.
		p.open("#/policies?panel=effective")
		p.wait("the form", `document.querySelector("#effective-subject")`)
		p.setValue("#effective-subject", "bob")
		p.click(`#effective-form button[type=submit]`)
		p.wait("bob's permissions", `location.hash.includes("subject=bob") && document.querySelector("#effective-table tbody tr")`)
		deny := p.text(`#effective-table tr.deny[data-object="memory"][data-action="delete"]`)
		if !strings.Contains(deny, "Denied") || !strings.Contains(deny, "p, user:bob, *, delete, deny") {
			t.Errorf("bob's memory deletion reads %q", deny)
		}
		if allow := p.text(`#effective-table tr.allow[data-object="memory"][data-action="read"]`); !strings.Contains(allow, "Allowed") {
			t.Errorf("bob's memory read reads %q", allow)
		}
		// Only the denies, on request.
		run(t, p.ctx, "show denies", chromedp.SetValue("#effective-show", "deny", chromedp.ByQuery))
		p.eval(`document.querySelector("#effective-show").dispatchEvent(new Event("change")); true`, nil)
		var shown []string
		p.eval(`[...document.querySelectorAll("#effective-table tbody tr")].filter(tr => !tr.hidden).map(tr => tr.className)`, &shown)
		if len(shown) == 0 || strings.Join(shown, "") != strings.Repeat("deny", len(shown)) {
			t.Errorf("showing only denies shows rows of %q", shown)
		}
		if !p.fitsWidth() {
			t.Errorf("effective permissions scroll sideways at %dpx", vp.width)
		}
		p.shot("effective")
	})
}

func TestPanelRoles(t *testing.T) {
	eachViewport(t, func(t *testing.T, vp viewport) {
		url, admin := panelServer(t)
		createUser(t, url, admin, "alice", map[string][]string{"CONVERSATION": {"WRITE"}})
		p := openPanel(t, url, vp)
		p.open("#/policies?panel=roles")
		p.login("admin", adminPassword)
		p.wait("the roles", `document.querySelector('#roles-list li[data-role="role:admin"]')`)
		if got := p.text(`#roles-list li[data-role="role:admin"] li[data-member="user:admin"]`); !strings.Contains(got, "admin") {
			t.Errorf("role:admin's members read %q", got)
		}
		// alice is made administrator by name.
		p.setValue("#member-role", "role:admin")
		p.setValue("#member-subject", "alice")
		p.click("#member-add")
		p.wait("alice an administrator", `document.querySelector('#roles-list li[data-role="role:admin"] li[data-member="user:alice"]')`)
		alice := token(t, url, "alice", "pw-alice")
		if status, b := call(t, url, alice, "GET", "/policies", nil); status != 200 {
			t.Errorf("alice, administrator, reads the policy: %d %s", status, b)
		}
		if !p.fitsWidth() {
			t.Errorf("roles scroll sideways at %dpx", vp.width)
		}
		p.shot("roles")
		// And taken back, after a confirmation.
		p.click(`#roles-list li[data-role="role:admin"] li[data-member="user:alice"] button.remove`)
		p.wait("the confirmation", `document.querySelector("#confirm").open`)
		p.click("#confirm-ok")
		p.wait("alice no longer administrator", `!document.querySelector('#roles-list li[data-role="role:admin"] li[data-member="user:alice"]') && document.querySelector('#roles-list li[data-role="role:admin"]')`)
		if status, _ := call(t, url, alice, "GET", "/policies", nil); status != 403 {
			t.Errorf("alice, no longer administrator, reads the policy: %d", status)
		}
		// The last administrator stays, with the reason on screen.
		p.click(`#roles-list li[data-role="role:admin"] li[data-member="user:admin"] button.remove`)
		p.wait("the confirmation", `document.querySelector("#confirm").open`)
		p.click("#confirm-ok")
		why := p.wait("the refusal", `document.querySelector("#notices .notice.error") && document.querySelector("#notices .notice.error").innerText`)
		if !strings.Contains(why, "Could not remove admin from role:admin") {
			t.Errorf("removing the last administrator reads %q", why)
		}
	})
}

func TestPanelPolicyVersions(t *testing.T) {
	eachViewport(t, func(t *testing.T, vp viewport) {
		url, admin := panelServer(t)
		createUser(t, url, admin, "bob", map[string][]string{"MEMORY": {"READ", "DELETE"}})
		// Yesterday's policy, then today's change denying bob deletion.
		if status, b := call(t, url, admin, "POST", "/policies/rules", map[string]string{"rule": "p, user:bob, *, delete, deny"}); status != 200 {
			t.Fatalf("deny bob: %d %s", status, b)
		}
		p := openPanel(t, url, vp)
		p.open("#/policies?panel=versions")
		p.login("admin", adminPassword)
		p.wait("the versions", `document.querySelector('#versions-table tr[data-version="2"]')`)
		if got := p.text(`#versions-table tr[data-version="2"]`); !strings.Contains(got, "in force") || !strings.Contains(got, "admin") {
			t.Errorf("version 2 reads %q", got)
		}
		// Version 2's diff shows the rule it added.
		p.click(`#versions-table tr[data-version="2"] a.show`)
		p.wait("the diff", `document.querySelector("#version-diff")`)
		if got := p.text("#version-diff span.add"); !strings.Contains(got, "p, user:bob, *, delete, deny") {
			t.Errorf("version 2's added lines read %q", got)
		}
		if p.exists("#version-restore") {
			t.Error("the version in force offers to be restored")
		}
		// Version 1 back: a dry run lists what it turns, then a confirmation.
		p.open("#/policies?panel=versions&version=1")
		p.wait("version 1", `document.querySelector("#version-restore")`)
		p.click("#version-restore")
		p.wait("the confirmation", `document.querySelector("#confirm").open`)
		if got := p.text("#restore-changes"); !strings.Contains(got, "bob") {
			t.Errorf("the restore's dry run reads %q", got)
		}
		p.shot("restore-dry-run")
		if status, b := call(t, url, admin, "GET", "/policies", nil); !strings.Contains(string(b), "user:bob") {
			t.Fatalf("the restore's dry run changed the policy: %d %s", status, b)
		}
		p.click("#confirm-ok")
		p.wait("version 3 shown", `location.hash.includes("version=3") && document.querySelector('#versions-table tr[data-version="3"]')`)
		if got := p.text(`#versions-table tr[data-version="3"]`); !strings.Contains(got, "in force") || !strings.Contains(got, "a restore") {
			t.Errorf("version 3 reads %q", got)
		}
		var pol struct{ Policy string }
		_, b := call(t, url, admin, "GET", "/policies", nil)
		json.Unmarshal(b, &pol)
		if strings.Contains(pol.Policy, "user:bob") {
			t.Errorf("after the restore the policy still denies bob:\n%s", pol.Policy)
		}
		if !p.fitsWidth() {
			t.Errorf("versions scroll sideways at %dpx", vp.width)
		}
		p.shot("versions")
	})
}

// A user the policy lets read the policy and the audit log, but not edit
// the policy, sees every part of it and no control that would change it.
func TestPanelPolicyReader(t *testing.T) {
	url, admin := panelServer(t)
	createUser(t, url, admin, "rita", map[string][]string{"CONVERSATION": {"WRITE"}})
	for _, rule := range []string{"p, role:auditor, policies, read", "p, role:auditor, audit, read", "g, user:rita, role:auditor"} {
		if status, b := call(t, url, admin, "POST", "/policies/rules", map[string]string{"rule": rule}); status != 200 {
			t.Fatalf("add %q: %d %s", rule, status, b)
		}
	}
	eachViewport(t, func(t *testing.T, vp viewport) {
		p := openPanel(t, url, vp)
		p.open("#/policies")
		p.login("rita", "pw-rita")
		p.wait("the policy", `document.querySelector("#policy-policy") && document.querySelector("#policy-policy").value.includes("role:auditor")`)
		var nav []string
		p.eval(`[...document.querySelectorAll("#nav a")].map(a => a.textContent)`, &nav)
		if got := strings.Join(nav, ", "); got != "Roles & policies, Chat, Audit" {
			t.Errorf("rita's navigation reads %q", got)
		}
		var readOnly bool
		p.eval(`document.querySelector("#policy-policy").readOnly`, &readOnly)
		if !readOnly || p.exists("#policy-save") || p.exists("#policy-validate") {
			t.Error("a reader of the policy is offered to change it")
		}
		p.open("#/policies?panel=roles")
		p.wait("the roles", `document.querySelector('#roles-list li[data-role="role:auditor"] li[data-member="user:rita"]')`)
		if p.exists("#role-member-form") || p.exists("#roles-list button.remove") {
			t.Error("a reader of the policy is offered to change roles")
		}
		p.open("#/policies?panel=versions&version=1")
		p.wait("version 1", `document.querySelector("#version-diff")`)
		if p.exists("#version-restore") {
			t.Error("a reader of the policy is offered to restore a version")
		}
		p.open("#/audit")
		p.wait("the audit log", `document.querySelector("#audit-table > tbody > tr")`)
		p.shot("reader")
	})
}
