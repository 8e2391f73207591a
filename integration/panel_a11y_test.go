package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
)

// axeSource is axe-core from integration/panel's package-lock.json. Without
// it the check skips, saying how to install it; under
// GRIN_REQUIRE_BROWSER=1 (CI) it fails instead.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("panel/node_modules/axe-core/axe.min.js")
	if err != nil {
		if os.Getenv("GRIN_REQUIRE_BROWSER") == "1" {
			t.Fatalf("axe-core is not installed (%v): cd integration/panel && npm ci", err)
		}
		t.Skip("the accessibility check needs axe-core: cd integration/panel && npm ci")
	}
	return string(b)
}

// axeViolation is one rule axe found broken, with where.
type axeViolation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	Targets []string
}

// audit runs axe in the page and returns its serious and critical
// violations.
func (p *page) audit(axe string) []axeViolation {
	p.t.Helper()
	var loaded bool
	p.eval(`typeof axe !== "undefined"`, &loaded)
	if !loaded {
		p.eval(axe+"; true", &loaded)
	}
	var raw string
	p.eval(`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))))`, &raw)
	var all []struct {
		axeViolation
		Nodes []string `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		p.t.Fatalf("read axe's results: %v\n%s", err, raw)
	}
	var out []axeViolation
	for _, v := range all {
		if v.Impact == "serious" || v.Impact == "critical" {
			v.Targets = v.Nodes
			out = append(out, v.axeViolation)
		}
	}
	return out
}

func uploadPlugin(t *testing.T, url, admin string, archive []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	f, _ := w.CreateFormFile("file", "author.zip")
	f.Write(archive)
	w.Close()
	req, _ := http.NewRequest("POST", url+"/plugins/upload", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload the plugin: %v %v", err, resp)
	}
	resp.Body.Close()
}

// Every view of the panel, its drawer and its confirmation, at both
// sizes, has no serious or critical accessibility violation (axe-core).
func TestPanelAccessibility(t *testing.T) {
	axe := axeSource(t)
	archive := pluginZip(t)
	eachViewport(t, func(t *testing.T, vp viewport) {
		url, admin := panelServer(t)
		uploadPlugin(t, url, admin, archive)
		call(t, url, admin, "POST", "/message", map[string]string{"text": "My hat is made of **teacups**"})
		p := openPanel(t, url, vp)
		check := func(what string) {
			t.Helper()
			for _, v := range p.audit(axe) {
				t.Errorf("%s: %s (%s) %s at %s", what, v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
			}
		}
		p.open("")
		p.wait("the login form", `!!document.querySelector("#login-form")`)
		// The check finds what it is for: a button without a name.
		p.eval(`document.body.append(Object.assign(document.createElement("button"), {id: "nameless"})); true`, nil)
		if v := p.audit(axe); len(v) != 1 || v[0].ID != "button-name" {
			t.Errorf("axe on a nameless button found %+v, want button-name", v)
		}
		p.eval(`document.querySelector("#nameless").remove(); true`, nil)
		check("the login form")
		p.login("admin", adminPassword)
		for _, view := range []struct{ hash, ready string }{
			{"#/users", `document.querySelector("#users-table tbody tr")`},
			{"#/policies", `document.querySelector("#policy-policy") && document.querySelector("#policy-policy").value`},
			{"#/policies?panel=roles", `document.querySelector('#roles-list li[data-role="role:admin"]')`},
			{"#/policies?panel=effective&subject=admin", `document.querySelector("#effective-table tbody tr")`},
			{"#/policies?panel=versions&version=1", `document.querySelector("#version-diff")`},
			{"#/plugins", `document.querySelector('article[data-plugin="author"] .plugin-stats') && !document.querySelector('article[data-plugin="author"] .plugin-stats').textContent.startsWith("Reading")`},
			{"#/memory", `document.querySelector("#points li")`},
			{"#/chat", `document.querySelector("#chat-log li.ai")`},
			{"#/models", `document.querySelector("#llm-providers li.provider")`},
			{"#/audit", `document.querySelector("#audit-table tbody tr")`},
		} {
			p.eval(fmt.Sprintf(`location.hash = %q`, view.hash), nil)
			p.wait(view.hash, view.ready)
			check(view.hash)
			if vp.name == "phone" {
				p.click("#nav-toggle")
				p.wait("the menu", `document.body.classList.contains("menu-open")`)
				check(view.hash + " with the menu open")
				p.click("#nav-toggle")
			}
		}
		p.eval(`location.hash = "#/users"`, nil)
		p.wait("users", `document.querySelector("#user-new")`)
		p.click("#user-new")
		p.wait("the drawer", `document.querySelector("#drawer").open`)
		check("the user drawer")
		p.click(`#drawer [data-close]`)
		p.click(`tr[data-user="user"] button.delete`)
		p.wait("the confirmation", `document.querySelector("#confirm").open`)
		check("the delete confirmation")
		p.click("#confirm-cancel")
	})
}
