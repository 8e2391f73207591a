// Roles & policies: the policy in force (model and policy files), checked
// and saved whole, and a decision checker that takes usernames. Later
// parts (effective permissions, versions, rule edits) slot in as panels
// of this view.

import { api } from "./api.js";
import { $, el, notify, busy } from "./ui.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function render(root, params, ctx) {
  const status = el("div", { id: "policy-status", role: "status" });
  const form = el("form", { id: "policy-form", class: "card" },
    el("h2", {}, "Policy in force"),
    el("label", { for: "policy-model" }, "Model (model.conf)"),
    el("textarea", { id: "policy-model", name: "model", rows: 10, spellcheck: "false" }),
    el("label", { for: "policy-policy" }, "Policy (policy.csv)"),
    el("textarea", { id: "policy-policy", name: "policy", rows: 14, spellcheck: "false" }),
    status,
    el("div", { class: "actions" },
      el("button", { type: "button", id: "policy-validate" }, "Check without saving"),
      el("button", { type: "submit", class: "primary", id: "policy-save" }, "Save")));
  const result = el("p", { id: "check-result", role: "status" });
  const check = el("form", { id: "check-form", class: "card" },
    el("h2", {}, "Check a decision"),
    el("p", { class: "hint" }, "Who may do what: a username, a user's id, a role (role:admin) or a plugin (plugin:name)."),
    el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "check-subject" }, "Subject"), el("input", { id: "check-subject", name: "subject", required: true, autocomplete: "off" })),
      el("div", { class: "field" }, el("label", { for: "check-object" }, "Object"), el("input", { id: "check-object", name: "object", required: true, autocomplete: "off" })),
      el("div", { class: "field" }, el("label", { for: "check-action" }, "Action"),
        el("select", { id: "check-action", name: "action" }, ["read", "list", "write", "edit", "delete", "use"].map((a) => el("option", {}, a))))),
    el("button", { type: "submit", class: "primary" }, "Check"),
    result);
  root.append(el("h1", { id: "policies-title" }, "Roles & policies"), form, check);

  async function load() {
    const r = await api("GET", "/policies");
    if (!r.ok) { notify("error", "The policy could not be read: " + r.message); return; }
    form.model.value = r.data.model;
    form.policy.value = r.data.policy;
    const refused = r.data.file_status === "refused";
    status.className = refused ? "error" : "";
    status.replaceChildren(...(refused ? [el("p", {}, "The files in the data directory were refused; this is the last policy that loaded."),
      el("ul", {}, (r.data.file_errors || []).map((e) => el("li", {}, e.file + (e.line ? " line " + e.line : "") + ": " + e.message)))] : []));
  }

  async function save(dryRun, button) {
    const r = await busy(button, dryRun ? "Checking…" : "Saving…", () =>
      api("PUT", "/policies" + (dryRun ? "?dry_run=true" : ""), { model: form.model.value, policy: form.policy.value }));
    status.className = r.ok ? "ok" : "error";
    if (r.ok) {
      status.replaceChildren(el("p", {}, dryRun ? "The policy is valid; nothing was saved." : "Saved; in force now."));
      if (!dryRun) notify("ok", "Policy saved; in force now.");
      return;
    }
    status.replaceChildren(el("p", {}, r.message));
  }
  $("#policy-validate", form).addEventListener("click", (ev) => save(true, ev.target));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(false, $("#policy-save", form)); });

  check.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.textContent = "Checking…";
    let subject = check.subject.value.trim();
    let shown = subject;
    // A username is looked up: the policy names internal users by id.
    if (!UUID.test(subject) && !subject.includes(":")) {
      const id = await userId(subject, ctx);
      if (id === null) { result.textContent = "There is no user named " + subject + "."; return; }
      if (id) { shown = subject + " (" + id + ")"; subject = id; }
    }
    const r = await api("POST", "/policies/check", { subject, object: check.object.value.trim(), action: check.action.value });
    if (!r.ok) { result.textContent = r.message; return; }
    // The reason names the rule that decided, allow or deny, and the roles.
    result.textContent = (r.data.allowed ? "Allowed" : "Denied") + " for " + shown + ": " + r.data.reason;
  });
  load();
}

// userId finds the id of the user with exactly this name: null when there
// is none, "" when the caller may not list users (the name is sent as is).
export async function userId(name, ctx) {
  if (!ctx.can("USERS", "LIST")) return "";
  const r = await api("GET", "/users?limit=100&search=" + encodeURIComponent(name));
  if (!r.ok) return "";
  const u = r.data.find((x) => x.username === name.normalize("NFC")) || r.data.find((x) => x.username.toLowerCase() === name.toLowerCase());
  return u ? u.id : null;
}
