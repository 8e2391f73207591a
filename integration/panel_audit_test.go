package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// An administrator reads the audit log in the panel: who did what to
// whom, a change's fields before and after, filtered by action, user and
// time, a page at a time; a user the policy does not let read the log
// does not see the section, and a link to it says why.
func TestPanelAudit(t *testing.T) {
	eachViewport(t, func(t *testing.T, vp viewport) {
		url, admin := panelServer(t)
		alice := createUser(t, url, admin, "alice", map[string][]string{"CONVERSATION": {"WRITE"}})
		createUser(t, url, admin, "bob", map[string][]string{"CONVERSATION": {"WRITE"}, "USERS": {"LIST", "READ"}})
		if status, b := call(t, url, admin, "PUT", "/users/"+alice, map[string]any{"permissions": map[string][]string{"CONVERSATION": {"WRITE"}, "MEMORY": {"READ"}}}); status != 200 {
			t.Fatalf("update alice: %d %s", status, b)
		}
		p := openPanel(t, url, vp)
		p.open("#/audit")
		p.login("admin", adminPassword)
		p.wait("entries", `document.querySelector("#audit-table tbody tr")`)
		var nav []string
		p.eval(`[...document.querySelectorAll("#nav a")].map(a => a.textContent)`, &nav)
		if !strings.Contains(strings.Join(nav, ","), "Audit") {
			t.Errorf("the administrator's navigation has no Audit: %q", nav)
		}

		// Filtered by action: alice's update, with her permissions before
		// and after.
		p.setValue("#audit-action", "user.update")
		p.click(`#audit-filters button[type=submit]`)
		p.wait("the filter in the URL", `location.hash.includes("action=user.update")`)
		p.wait("only updates", `[...document.querySelectorAll("#audit-table > tbody > tr")].length > 0 && [...document.querySelectorAll("#audit-table > tbody > tr")].every(tr => tr.dataset.action === "user.update")`)
		row := `#audit-table > tbody > tr[data-action="user.update"]`
		if got := p.text(row); !strings.Contains(got, "admin") || !strings.Contains(got, "success") {
			t.Errorf("alice's update reads %q", got)
		}
		// The target, a user's id, reads as her name.
		if got := p.wait("the target by name", `document.querySelector('`+row+` .target-user') && document.querySelector('`+row+` .target-user').innerText`); !strings.HasPrefix(got, "alice ") || !strings.Contains(got, alice[:8]) {
			t.Errorf("the target reads %q", got)
		}
		p.click(row + ` details summary`)
		var fields []string
		p.eval(`[...document.querySelectorAll('`+row+` table.fields tbody tr')].map(tr => [...tr.children].map(c => c.innerText.trim()).join(" | "))`, &fields)
		if !strings.Contains(strings.Join(fields, "\n"), `permissions.MEMORY | none | ["READ"]`) {
			t.Errorf("alice's update's fields read %q", fields)
		}
		p.shot("audit-filtered")

		// By user: bob's creation was done by admin; nothing was done by bob.
		none := `document.querySelector("#audit-summary").textContent === "No entry matches these filters." && !document.querySelector("#audit-table")`
		p.open("#/audit?actor=bob")
		p.wait("no entry by bob", `location.hash === "#/audit?actor=bob" && `+none)
		p.open("#/audit?actor=admin")
		p.wait("entries by admin", `location.hash === "#/audit?actor=admin" && document.querySelector("#audit-table > tbody > tr")`)
		var who []string
		p.eval(`[...document.querySelectorAll('#audit-table > tbody > tr > td[data-label="Who"] > span')].map(s => s.textContent)`, &who)
		for _, w := range who {
			if w != "admin" {
				t.Errorf("filtered by admin, an entry by %q", w)
			}
		}
		// By time: nothing before an hour ago.
		p.open("#/audit?until=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		p.wait("no entry an hour old", `location.hash.includes("until=") && `+none)
		var until string
		p.eval(`document.querySelector("#audit-until").value`, &until)
		if until == "" {
			t.Error("the until filter is not shown in its field")
		}

		// Pages of two, older and back.
		p.open("#/audit?limit=2")
		p.wait("the first page", `document.querySelectorAll("#audit-table > tbody > tr").length === 2`)
		ids := func() []int {
			var out []int
			p.eval(`[...document.querySelectorAll("#audit-table > tbody > tr")].map(tr => Number(tr.dataset.id))`, &out)
			return out
		}
		first := ids()
		if got := strings.TrimSpace(p.text("#audit-view .pager")); got != "Older ›" {
			t.Errorf("the first page's pager reads %q", got)
		}
		p.click("#audit-older")
		p.wait("the second page", fmt.Sprintf(`location.hash.includes("before=") && document.querySelector('#audit-table > tbody > tr') && !document.querySelector('#audit-table > tbody > tr[data-id="%d"]')`, first[0]))
		second := ids()
		if len(second) == 0 || len(first) != 2 || second[0] >= first[1] {
			t.Errorf("the older page %v after %v: want older entries, newest first", second, first)
		}
		p.click("#audit-newer")
		p.wait("the first page again", fmt.Sprintf(`!location.hash.includes("before=") && !!document.querySelector('#audit-table > tbody > tr[data-id="%d"]')`, first[0]))
		if !p.fitsWidth() {
			t.Errorf("the audit log scrolls sideways at %dpx", vp.width)
		}
		p.shot("audit")

		// bob may not read the log: no section, and a link says why.
		b := openPanel(t, url, vp)
		b.open("#/audit")
		b.login("bob", "pw-bob")
		got := b.wait("the refusal", `document.querySelector("#notices").innerText`)
		if !strings.Contains(got, "You do not have the permission to open Audit") {
			t.Errorf("bob's audit link: %q", got)
		}
		var bnav []string
		b.eval(`[...document.querySelectorAll("#nav a")].map(a => a.textContent)`, &bnav)
		if strings.Contains(strings.Join(bnav, ","), "Audit") || b.exists("#audit-view") {
			t.Errorf("bob sees the audit section: %q", bnav)
		}
	})
}
