// Roles & policies, in four panels with their own URLs
// (#/policies?panel=roles): the policy in force in an editor that marks
// the lines a refusal or a warning names, with a dry run listing every
// decision a change would turn before it is saved; roles and their
// members by name; what one user may do, rule by rule; and the versions,
// each with its diff, restored after a dry run and a confirmation.

import { api } from "./api.js";
import { $, el, notify, busy, confirm, when } from "./ui.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PANELS = [
  { id: "policy", title: "Policy" },
  { id: "roles", title: "Roles" },
  { id: "effective", title: "Effective permissions" },
  { id: "versions", title: "Versions" },
];

export async function render(root, params, ctx) {
  const panel = PANELS.find((p) => p.id === params.panel) || PANELS[0];
  root.append(el("h1", { id: "policies-title" }, "Roles & policies"),
    el("nav", { class: "subnav", "aria-label": "Parts of roles & policies" }, el("ul", {},
      PANELS.map((p) => el("li", {}, el("a", { href: "#/policies" + (p === PANELS[0] ? "" : "?panel=" + p.id), "aria-current": p === panel ? "page" : null }, p.title))))));
  // Whether the caller may change the policy: the policy says, not the
  // token's Cat permissions.
  const mayEdit = await canEdit(ctx);
  const body = el("div", { id: "policies-" + panel.id });
  root.append(body);
  await ({ policy: policyPanel, roles: rolesPanel, effective: effectivePanel, versions: versionsPanel })[panel.id](body, params, ctx, mayEdit);
}

async function canEdit(ctx) {
  if (!ctx.me.sub) return false;
  const r = await api("POST", "/policies/check", { subject: ctx.me.sub, object: "policies", action: "edit" });
  return r.ok && r.data.allowed;
}

// ---- the policy in force ----

// editor is a textarea with a gutter of line numbers; mark puts problems
// on their lines (kind "error" or "warning") in the gutter.
function editor(id, label, rows, readOnly) {
  const gutter = el("ol", { class: "gutter", id: id + "-gutter", "aria-hidden": "true" });
  const area = el("textarea", { id, name: id.replace(/^policy-/, ""), rows, spellcheck: "false", wrap: "off", autocapitalize: "off", readonly: readOnly });
  const wrap = el("div", { class: "editor" }, gutter, area);
  let marks = new Map();
  function draw() {
    const n = area.value.split("\n").length;
    const items = [];
    for (let i = 1; i <= n; i++) {
      const m = marks.get(i);
      items.push(el("li", { "data-line": i, class: m ? m.kind : null, title: m ? m.text : null }, String(i)));
    }
    gutter.replaceChildren(...items);
    gutter.scrollTop = area.scrollTop;
  }
  area.addEventListener("input", draw);
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  return {
    label: el("label", { for: id }, label), wrap, area,
    set(v) { area.value = v; draw(); },
    mark(problems) {
      marks = new Map();
      for (const p of problems) {
        if (!p.line) continue;
        const had = marks.get(p.line);
        // An error outranks a warning on the same line.
        if (!had || (had.kind === "warning" && p.kind === "error")) marks.set(p.line, { kind: p.kind, text: p.message });
        else had.text += "\n" + p.message;
      }
      draw();
    },
    // goTo selects a line and scrolls it into view.
    goTo(line) {
      const lines = area.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
      area.focus();
      area.setSelectionRange(start, start + (lines[line - 1] || "").length);
      const lh = parseFloat(getComputedStyle(area).lineHeight) || 20;
      area.scrollTop = Math.max(0, (line - 3) * lh);
    },
  };
}

// refusalProblems reads a refused change's errors[] (location
// body.policy[line 3]) into problems by file and line.
function refusalProblems(data) {
  return (data.errors || []).map((e) => {
    const m = /^body\.(model|policy)(?:\[line (\d+)\])?$/.exec(e.location || "");
    return { kind: "error", file: m ? (m[1] === "model" ? "model.conf" : "policy.csv") : "", line: m && m[2] ? Number(m[2]) : 0, message: e.message };
  });
}

// changesTable shows a dry run's decision_changes: who, what, before and
// after, and the sentence naming the rule that decides it after.
export function changesTable(changes, id) {
  if (!changes || !changes.length) return el("p", { id, class: "muted" }, "No decision changes: everyone may do exactly what they may do now.");
  const word = { allow: "allowed", deny: "denied by a rule", none: "not allowed" };
  return el("div", { class: "table-wrap" }, el("table", { class: "data changes", id },
    el("caption", {}, changes.length === 1 ? "1 decision changes" : changes.length + " decisions change"),
    el("thead", {}, el("tr", {}, ["Who", "Object", "Action", "Now", "After", "Why"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, changes.map((c) => el("tr", { class: "to-" + c.after },
      el("td", { "data-label": "Who" }, c.subject),
      el("td", { "data-label": "Object" }, el("code", {}, c.object)),
      el("td", { "data-label": "Action" }, c.action),
      el("td", { "data-label": "Now" }, el("span", { class: "effect " + c.before }, word[c.before] || c.before)),
      el("td", { "data-label": "After" }, el("span", { class: "effect " + c.after }, word[c.after] || c.after)),
      el("td", { "data-label": "Why" }, c.text))))));
}

function policyPanel(body, params, ctx, mayEdit) {
  const model = editor("policy-model", "Model (model.conf)", 10, !mayEdit);
  const policy = editor("policy-policy", "Policy (policy.csv)", 16, !mayEdit);
  const loadStatus = el("div", { id: "policy-load", role: "status" });
  const status = el("div", { id: "policy-status", role: "status" });
  const problems = el("ul", { id: "policy-problems", class: "problems" });
  const review = el("div", { id: "policy-review" });
  const form = el("form", { id: "policy-form", class: "card" },
    el("h2", {}, "Policy in force"), loadStatus,
    model.label, model.wrap, policy.label, policy.wrap,
    status, problems, review,
    mayEdit ? el("div", { class: "actions" },
      el("button", { type: "button", id: "policy-validate" }, "Check and preview changes"),
      el("button", { type: "submit", class: "primary", id: "policy-save" }, "Save")) :
      el("p", { class: "hint" }, "You may read the policy; changing it takes a policy administrator."));
  const result = el("p", { id: "check-result", role: "status" });
  const check = el("form", { id: "check-form", class: "card" },
    el("h2", {}, "Check a decision"),
    el("p", { class: "hint" }, "Who may do what: a username, a user's id, a role (role:admin) or a plugin (plugin:name)."),
    el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "check-subject" }, "Subject"), el("input", { id: "check-subject", name: "subject", required: true, autocomplete: "off", list: "policy-user-names" })),
      el("div", { class: "field" }, el("label", { for: "check-object" }, "Object"), el("input", { id: "check-object", name: "object", required: true, autocomplete: "off" })),
      el("div", { class: "field" }, el("label", { for: "check-action" }, "Action"),
        el("select", { id: "check-action", name: "action" }, ["read", "list", "write", "edit", "delete", "use"].map((a) => el("option", {}, a))))),
    el("button", { type: "submit", class: "primary" }, "Check"),
    result);
  body.append(form, check, userNames(ctx));

  // show lists problems under the editors, each a button to its line, and
  // marks them in the gutters.
  function show(list) {
    const byFile = (f) => list.filter((p) => p.file === f);
    model.mark(byFile("model.conf"));
    policy.mark(byFile("policy.csv"));
    problems.replaceChildren(...list.map((p) => {
      const ed = p.file === "model.conf" ? model : policy;
      const where = (p.file || "the policy") + (p.line ? ", line " + p.line : "");
      return el("li", { class: p.kind, "data-line": p.line || null, "data-file": p.file || null },
        el("strong", {}, p.kind === "error" ? "Error" : "Warning"), " ",
        p.line ? el("button", { type: "button", class: "link", onclick: () => ed.goTo(p.line) }, where) : where,
        ": " + p.message);
    }));
  }
  const warningsOf = (ws) => (ws || []).map((w) => ({ kind: "warning", file: w.file || "policy.csv", line: w.line, message: w.message }));

  async function load() {
    const r = await api("GET", "/policies");
    if (!r.ok) { notify("error", "The policy could not be read: " + r.message); return; }
    model.set(r.data.model);
    policy.set(r.data.policy);
    review.replaceChildren();
    status.replaceChildren();
    status.className = "";
    const refused = r.data.file_status === "refused";
    loadStatus.className = refused ? "error" : "ok";
    loadStatus.replaceChildren(
      el("p", {}, r.data.version ? "Version " + r.data.version + " is in force." : "The policy is in force.", " ",
        el("a", { href: "#/policies?panel=versions" }, "Versions")),
      ...(refused ? [el("p", {}, "An edit of the files in the data directory was refused; what you see is the last policy that loaded. Fix the files, or save or restore a version here:"),
        el("ul", { id: "policy-file-errors" }, (r.data.file_errors || []).map((e) => el("li", {}, e.file + (e.line ? ", line " + e.line : "") + ": " + e.message)))] : []));
    show(warningsOf(r.data.warnings));
  }

  async function dryRun(button) {
    return busy(button, "Checking…", () =>
      api("PUT", "/policies?dry_run=true", { model: model.area.value, policy: policy.area.value }));
  }

  function refused(r) {
    status.className = "error";
    status.replaceChildren(el("p", {}, r.status === 422 && (r.data.errors || []).length ? "Refused: " + (r.data.detail || "the policy does not load") + "." : r.message));
    show(refusalProblems(r.data));
  }

  // preview runs a dry run and shows its warnings and decision changes;
  // withSave adds the button that puts the change in force.
  async function preview(button, withSave) {
    review.replaceChildren();
    const r = await dryRun(button);
    if (!r.ok) { refused(r); return; }
    const ws = warningsOf(r.data.warnings);
    show(ws);
    const changes = r.data.decision_changes || [];
    status.className = "ok";
    status.replaceChildren(el("p", {}, "The policy is valid" + (ws.length ? ", with " + ws.length + (ws.length === 1 ? " warning" : " warnings") : "") + "; nothing was saved yet."));
    review.replaceChildren(el("h3", {}, "What this change would turn"), changesTable(changes, "policy-changes"),
      withSave ? el("div", { class: "actions" },
        el("button", { type: "button", id: "policy-cancel", onclick: () => { review.replaceChildren(); status.replaceChildren(); } }, "Keep editing"),
        el("button", { type: "button", id: "policy-confirm", class: "primary", onclick: (ev) => save(ev.target) }, "Put in force")) : null);
    if (withSave) $("#policy-confirm", review).focus();
  }

  async function save(button) {
    const r = await busy(button, "Saving…", () => api("PUT", "/policies", { model: model.area.value, policy: policy.area.value }));
    if (!r.ok) { review.replaceChildren(); refused(r); return; }
    notify("ok", "Policy saved; version " + r.data.version + " is in force now.");
    await load();
    status.className = "ok";
    status.replaceChildren(el("p", {}, "Saved; in force now."));
  }

  if (mayEdit) {
    $("#policy-validate", form).addEventListener("click", (ev) => preview(ev.target, false));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); preview($("#policy-save", form), true); });
  } else form.addEventListener("submit", (ev) => ev.preventDefault());

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
  return load();
}

// userNames is a datalist of usernames for the fields that pick a user
// (empty when the caller may not list users: names are typed then).
function userNames(ctx) {
  const list = el("datalist", { id: "policy-user-names" });
  if (ctx.can("USERS", "LIST")) {
    api("GET", "/users?limit=100&sort=username").then((r) => {
      if (r.ok) list.replaceChildren(...r.data.map((u) => el("option", { value: u.username })));
    });
  }
  return list;
}

// memberName shows a policy subject for a person: user:alice as alice.
function memberName(m) {
  return m.startsWith("user:") ? m.slice(5) : m;
}

// ---- roles ----

async function rolesPanel(body, params, ctx, mayEdit) {
  const list = el("div", { id: "roles-list" });
  const add = el("form", { id: "role-member-form", class: "card" },
    el("h2", {}, "Give a role"),
    el("p", { class: "hint" }, "A user by username (or another role, plugin:name, credential:api_key). A new role name creates the role; what it allows is said by its rules in the policy."),
    el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "member-role" }, "Role"), el("input", { id: "member-role", name: "role", required: true, autocomplete: "off", list: "policy-role-names", value: "role:" })),
      el("div", { class: "field" }, el("label", { for: "member-subject" }, "User"), el("input", { id: "member-subject", name: "subject", required: true, autocomplete: "off", list: "policy-user-names" }))),
    el("button", { type: "submit", class: "primary", id: "member-add" }, "Add member"));
  const roleNames = el("datalist", { id: "policy-role-names" });
  body.append(...(mayEdit ? [add] : []), el("section", { class: "card", "aria-labelledby": "roles-heading" }, el("h2", { id: "roles-heading" }, "Roles and their members"), list), roleNames, userNames(ctx));

  async function load() {
    const r = await api("GET", "/roles");
    if (!r.ok) { list.replaceChildren(el("p", { class: "error" }, "The roles could not be read: " + r.message)); return; }
    roleNames.replaceChildren(...r.data.map((x) => el("option", { value: x.name })));
    if (!r.data.length) { list.replaceChildren(el("p", { class: "muted" }, "The policy names no role.")); return; }
    list.replaceChildren(el("ul", { class: "roles" }, r.data.map((role) => el("li", { "data-role": role.name },
      el("h3", {}, role.name, el("span", { class: "badge" }, role.members.length === 1 ? "1 member" : role.members.length + " members")),
      role.members.length ? el("ul", { class: "members" }, role.members.map((m) => el("li", { "data-member": m },
        el("span", { class: "chip" + (m.startsWith("user:") ? "" : " role") }, memberName(m)),
        m.startsWith("user:") ? null : el("span", { class: "muted" }, " (" + m.split(":")[0] + ")"),
        mayEdit ? el("button", { type: "button", class: "small remove", "aria-label": "Remove " + memberName(m) + " from " + role.name, onclick: (ev) => remove(role.name, m, ev.target) }, "Remove") : null)))
        : el("p", { class: "muted" }, "No members.")))));
  }

  async function remove(role, member, button) {
    const ok = await confirm({ title: "Remove " + memberName(member) + " from " + role + "?", text: memberName(member) + " loses what " + role + " allows, unless another rule gives it.", action: "Remove" });
    if (!ok) return;
    const r = await busy(button, "Removing…", () => api("DELETE", "/roles/" + encodeURIComponent(role) + "/members/" + encodeURIComponent(member)));
    if (!r.ok) { notify("error", "Could not remove " + memberName(member) + " from " + role + ": " + r.message); return; }
    notify("ok", memberName(member) + " no longer holds " + role + ".");
    load();
  }

  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let role = add.role.value.trim();
    if (!role.startsWith("role:")) role = "role:" + role;
    const subject = add.subject.value.trim();
    const r = await busy($("#member-add", add), "Adding…", () => api("PUT", "/roles/" + encodeURIComponent(role) + "/members/" + encodeURIComponent(subject)));
    if (!r.ok) { notify("error", "Could not give " + role + " to " + subject + ": " + r.message); return; }
    notify("ok", subject + " now holds " + role + ".");
    add.subject.value = "";
    load();
  });
  return load();
}

// ---- effective permissions ----

async function effectivePanel(body, params, ctx) {
  const form = el("form", { id: "effective-form", class: "card" },
    el("h2", {}, "What someone may do"),
    el("p", { class: "hint" }, "Every object and action the policy decides for them, with the rule that decides it; a deny rule wins over every allow."),
    el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "effective-subject" }, "User (or role:…, plugin:…)"),
        el("input", { id: "effective-subject", name: "subject", required: true, autocomplete: "off", list: "policy-user-names", value: params.subject || "" }))),
    el("button", { type: "submit", class: "primary" }, "Show"));
  const out = el("section", { id: "effective-result", "aria-live": "polite" });
  body.append(form, out, userNames(ctx));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    ctx.go("policies", { panel: "effective", subject: form.subject.value.trim() });
  });
  if (!params.subject) return;
  out.replaceChildren(el("p", { class: "muted" }, "Reading…"));
  const r = await api("GET", "/policies/effective?subject=" + encodeURIComponent(params.subject));
  if (!r.ok) { out.replaceChildren(el("p", { class: "error" }, r.message)); return; }
  const d = r.data;
  const denied = d.permissions.filter((p) => p.effect === "deny");
  out.replaceChildren(el("div", { class: "card" },
    el("h2", {}, params.subject),
    el("p", { class: "muted" }, d.subject),
    el("p", {}, "Roles: ", d.roles.length ? el("ul", { class: "chips inline" }, d.roles.map((x) => el("li", { class: "chip role" }, x))) : el("span", { class: "muted" }, "none")),
    el("p", { id: "effective-summary" }, d.permissions.length - denied.length + " allowed, " + denied.length + " denied by a rule."),
    el("div", { class: "toolbar" }, el("label", { for: "effective-show" }, "Show"),
      el("select", { id: "effective-show", onchange: (ev) => {
        for (const tr of out.querySelectorAll("#effective-table tbody tr")) tr.hidden = ev.target.value !== "all" && !tr.classList.contains(ev.target.value);
      } }, el("option", { value: "all" }, "everything"), el("option", { value: "deny" }, "only what a rule denies"), el("option", { value: "allow" }, "only what is allowed"))),
    el("div", { class: "table-wrap" }, el("table", { class: "data", id: "effective-table" },
      el("thead", {}, el("tr", {}, ["Object", "Action", "Decision", "Rule", "Through"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, d.permissions.map((p) => el("tr", { class: p.effect, "data-object": p.object, "data-action": p.action },
        el("td", { "data-label": "Object" }, el("code", {}, p.object)),
        el("td", { "data-label": "Action" }, p.action),
        el("td", { "data-label": "Decision" }, el("span", { class: "effect " + p.effect }, p.effect === "deny" ? "Denied" : p.effect === "allow" ? "Allowed" : "Not allowed")),
        el("td", { "data-label": "Rule" }, p.text ? el("code", {}, p.text) : "—", p.line ? el("span", { class: "muted" }, " (line " + p.line + ")") : null),
        el("td", { "data-label": "Through" }, p.via.length ? p.via.join(" → ") : el("span", { class: "muted" }, "directly")))))))),
    d.rules.length ? el("div", { class: "card" }, el("h3", {}, "Rules that name them"),
      el("ul", { id: "effective-rules" }, d.rules.map((x) => el("li", {}, el("span", { class: "muted" }, "line " + x.line + ": "), el("code", {}, x.text))))) : null);
}

// ---- versions ----

async function versionsPanel(body, params, ctx, mayEdit) {
  const list = el("div", { class: "table-wrap" });
  const detail = el("section", { id: "version-detail", "aria-live": "polite" });
  body.append(el("section", { class: "card", "aria-labelledby": "versions-heading" }, el("h2", { id: "versions-heading" }, "Versions"),
    el("p", { class: "hint" }, "Every policy put in force, newest first. A restore is itself a new version."), list), detail);

  const r = await api("GET", "/policies/versions?limit=100");
  if (!r.ok) { list.replaceChildren(el("p", { class: "error" }, "The versions could not be read: " + r.message)); return; }
  const source = { file: "the files", api: "the API or panel", restore: "a restore", rename: "a user renamed", delete: "a user deleted" };
  list.replaceChildren(el("table", { class: "data", id: "versions-table" },
    el("thead", {}, el("tr", {}, ["Version", "When", "By", "How", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, r.data.map((v) => el("tr", { "data-version": v.version, class: String(v.version) === params.version ? "selected" : null },
      el("td", { "data-label": "Version" }, String(v.version), v.in_force ? el("span", { class: "badge ok" }, "in force") : null),
      el("td", { "data-label": "When" }, when(v.created_at)),
      el("td", { "data-label": "By" }, v.author || el("span", { class: "muted" }, "not recorded")),
      el("td", { "data-label": "How" }, source[v.source] || v.source),
      el("td", { class: "actions" }, el("a", { href: "#/policies?panel=versions&version=" + v.version, class: "show", "aria-label": "Show version " + v.version }, "Show")))))));
  if (!params.version) return;

  detail.replaceChildren(el("p", { class: "muted" }, "Reading…"));
  const v = await api("GET", "/policies/versions/" + encodeURIComponent(params.version));
  if (!v.ok) { detail.replaceChildren(el("p", { class: "error" }, v.message)); return; }
  const preview = el("div", { id: "restore-preview" });
  detail.replaceChildren(el("div", { class: "card" },
    el("h2", {}, "Version " + v.data.version, v.data.in_force ? el("span", { class: "badge ok" }, "in force") : null),
    el("p", { class: "muted" }, "By ", v.data.author || "someone not recorded", ", ", when(v.data.created_at)),
    el("h3", {}, "Changes from the version before"), diffView(v.data.diff),
    mayEdit && !v.data.in_force ? el("div", { class: "actions" }, el("button", { type: "button", id: "version-restore", class: "primary", onclick: (ev) => restore(ev.target) }, "Restore this version…")) : null,
    preview));

  async function restore(button) {
    const n = v.data.version;
    const path = "/policies/versions/" + n + "/restore";
    const dry = await busy(button, "Checking…", () => api("POST", path + "?dry_run=true"));
    if (!dry.ok) { preview.replaceChildren(el("p", { class: "error" }, "Version " + n + " cannot be restored: " + dry.message)); return; }
    const changes = dry.data.decision_changes || [];
    preview.replaceChildren(el("h3", {}, "What restoring version " + n + " would turn"), changesTable(changes, "restore-changes"));
    const ok = await confirm({ title: "Restore version " + n + "?",
      text: (changes.length ? changes.length + (changes.length === 1 ? " decision changes" : " decisions change") + " (listed under the version)." : "No decision changes.") + " The restore is a new version; the one in force now stays in the list.",
      action: "Restore" });
    if (!ok) return;
    const done = await busy(button, "Restoring…", () => api("POST", path));
    if (!done.ok) { notify("error", "Version " + n + " was not restored: " + done.message); return; }
    notify("ok", "Version " + n + " restored as version " + done.data.version + "; in force now.");
    ctx.go("policies", { panel: "versions", version: String(done.data.version) });
  }
}

// diffView shows a unified diff, added and removed lines marked in words
// as well as colour.
function diffView(diff) {
  if (!diff) return el("p", { class: "muted" }, "No differences.");
  return el("pre", { class: "diff", id: "version-diff", tabindex: "0" }, diff.split("\n").map((line) => {
    const kind = line.startsWith("+++") || line.startsWith("---") ? "file" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "";
    return el("span", { class: kind || null }, kind === "add" ? el("span", { class: "sr-only" }, "added: ") : kind === "del" ? el("span", { class: "sr-only" }, "removed: ") : null, line || " ");
  }));
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
