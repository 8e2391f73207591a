// Audit: the audit log (GET /audit), newest first, filtered by who, what,
// target and time, a page at a time with the API's cursor; each entry's
// before and after compared field by field. The section shows only to
// those the policy lets read the log (app.js probes GET /audit).
//
// The URL holds the filters and the page (#/audit?action=user.*&before=42),
// so a shared link opens the same entries.

import { api } from "./api.js";
import { el, notify, when } from "./ui.js";

const ACTIONS = ["login", "tokens.revoke", "user.*", "user.create", "user.update", "user.delete",
  "policy.*", "policy.update", "policy.file", "policy.rule.add", "policy.rule.remove", "policy.restore",
  "role.member.*", "role.member.add", "role.member.remove",
  "plugin.*", "plugin.install", "plugin.toggle", "plugin.settings", "plugin.isolation", "plugin.delete",
  "setting.*", "setting.create", "setting.update", "setting.delete", "llm.update", "embedder.update", "auth_handler.update"];
const PAGE_SIZES = [25, 50, 100];
const FILTERS = ["actor", "action", "target", "since", "until"];
const KIND = { api_key: "the API key", ws_key: "the WebSocket key", anonymous: "anyone (authentication off)", handler: "the auth handler", plugin: "a plugin", file: "the policy files", unknown: "an unknown caller" };

export function render(root, params, ctx) {
  // newer is the cursors of the pages seen before this one, to step back.
  const newer = [];
  const field = (id, label, input) => el("div", { class: "field" }, el("label", { for: id }, label), input);
  const form = el("form", { id: "audit-filters", class: "card toolbar wrap" },
    field("audit-actor", "User", el("input", { id: "audit-actor", name: "actor", autocomplete: "off", list: "audit-user-names", placeholder: "username" })),
    field("audit-action", "Action", el("input", { id: "audit-action", name: "action", autocomplete: "off", list: "audit-actions", placeholder: "user.* or login" })),
    field("audit-target", "Target", el("input", { id: "audit-target", name: "target", autocomplete: "off", placeholder: "username, plugin, policies" })),
    field("audit-since", "From", el("input", { id: "audit-since", name: "since", type: "datetime-local" })),
    field("audit-until", "Until", el("input", { id: "audit-until", name: "until", type: "datetime-local" })),
    field("audit-limit", "Per page", el("select", { id: "audit-limit", name: "limit" }, PAGE_SIZES.map((n) => el("option", { value: n }, String(n))))),
    el("div", { class: "actions" },
      el("button", { type: "button", id: "audit-clear", onclick: () => ctx.go("audit", {}) }, "Clear"),
      el("button", { type: "submit", class: "primary" }, "Filter")));
  const summary = el("p", { id: "audit-summary", class: "muted", role: "status" });
  const list = el("div", { class: "table-wrap" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages of the audit log" });
  const users = el("datalist", { id: "audit-user-names" });
  // names maps the ids of the users listed to their usernames.
  const names = new Map();
  const targetCell = (id) => names.has(id)
    ? el("span", { class: "target-user" }, names.get(id), " ", el("code", { class: "muted small", title: id }, id.slice(0, 8) + "…"))
    : el("code", { class: "target", "data-id": id }, id);
  root.append(el("h1", { id: "audit-title" }, "Audit"),
    el("p", { class: "hint" }, "Who changed users, permissions, policies, plugins and settings, and every login; newest first. Secrets read ********."),
    form, summary, list, pager, users,
    el("datalist", { id: "audit-actions" }, ACTIONS.map((a) => el("option", { value: a }))));
  if (ctx.can("USERS", "LIST")) {
    api("GET", "/users?limit=100&sort=username").then((r) => {
      if (!r.ok) return;
      users.replaceChildren(...r.data.map((u) => el("option", { value: u.username })));
      // Targets that are user ids read as their usernames.
      for (const u of r.data) names.set(u.id, u.username);
      for (const c of list.querySelectorAll("code.target")) if (names.has(c.dataset.id)) c.replaceWith(targetCell(c.dataset.id));
    });
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = { limit: form.limit.value };
    for (const f of FILTERS) {
      let v = form[f].value.trim();
      // The inputs hold local times; the API and the URL, RFC 3339.
      if (v && (f === "since" || f === "until")) v = new Date(v).toISOString();
      p[f] = v;
    }
    newer.length = 0;
    ctx.go("audit", p);
  });

  let state = {};
  async function load(params) {
    state = params;
    for (const f of FILTERS) {
      const v = params[f] || "";
      form[f].value = v && (f === "since" || f === "until") ? localInput(v) : v;
    }
    const limit = Math.min(1000, Math.max(1, parseInt(params.limit, 10) || PAGE_SIZES[0]));
    if (!PAGE_SIZES.includes(limit)) form.limit.append(el("option", { value: limit }, String(limit)));
    form.limit.value = String(limit);
    const q = new URLSearchParams({ limit: String(limit) });
    for (const f of [...FILTERS, "before"]) if (params[f]) q.set(f, params[f]);
    summary.textContent = "Reading…";
    list.setAttribute("aria-busy", "true");
    const r = await api("GET", "/audit?" + q);
    list.removeAttribute("aria-busy");
    if (!r.ok) {
      list.replaceChildren();
      pager.replaceChildren();
      summary.textContent = "";
      notify("error", "The audit log could not be read: " + r.message);
      return;
    }
    const entries = r.data.entries || [];
    const filtered = FILTERS.some((f) => params[f]);
    summary.textContent = entries.length
      ? (entries.length === 1 ? "1 entry" : entries.length + " entries") + (params.before ? ", older than entry " + params.before : ", the newest") + (filtered ? ", filtered" : "") + "."
      : filtered ? "No entry matches these filters." : "The audit log is empty.";
    list.replaceChildren(entries.length ? table(entries, targetCell) : "");
    const go = (before) => ctx.go("audit", { ...state, before });
    pager.replaceChildren(...[
      params.before ? el("button", { type: "button", id: "audit-newest", onclick: () => { newer.length = 0; go(""); } }, "« Newest") : null,
      params.before ? el("button", { type: "button", id: "audit-newer", onclick: () => go(newer.pop() || "") }, "‹ Newer") : null,
      r.data.next ? el("button", { type: "button", id: "audit-older", onclick: () => { newer.push(params.before || ""); go(String(r.data.next)); } }, "Older ›") : null].filter(Boolean));
  }

  load(params);
  return { update: load };
}

function table(entries, targetCell) {
  return el("table", { class: "data", id: "audit-table" },
    el("thead", {}, el("tr", {}, ["When", "Who", "Action", "Target", "Outcome", "Details"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, entries.map((e) => el("tr", { "data-id": e.id, "data-action": e.action, class: e.outcome },
      el("td", { "data-label": "When" }, when(e.time)),
      el("td", { "data-label": "Who" }, actor(e.actor), e.address ? el("div", { class: "muted small" }, "from " + e.address) : null),
      el("td", { "data-label": "Action" }, el("code", {}, e.action)),
      el("td", { "data-label": "Target" }, e.target ? targetCell(e.target) : el("span", { class: "muted" }, "—")),
      el("td", { "data-label": "Outcome" }, el("span", { class: "outcome " + e.outcome }, e.outcome), e.detail ? el("div", { class: "detail" }, e.detail) : null),
      el("td", { "data-label": "Details" }, changes(e))))));
}

function actor(a) {
  if (!a) return "?";
  if (a.kind === "user") return el("span", {}, a.name || a.id || "a user");
  return el("span", {}, KIND[a.kind] || a.kind, a.name ? " (" + a.name + ")" : "");
}

// changes compares before and after field by field: what was added,
// removed or changed, each value in words or compact JSON.
function changes(e) {
  if (e.before === undefined && e.after === undefined) return el("span", { class: "muted" }, "—");
  const b = flat(e.before), a = flat(e.after);
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  const rows = keys.filter((k) => b[k] !== a[k]);
  const same = keys.length - rows.length;
  return el("details", { class: "audit-change" },
    el("summary", {}, rows.length ? (rows.length === 1 ? "1 field changed" : rows.length + " fields changed") : "No field changed"),
    rows.length ? el("table", { class: "fields" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Field"), el("th", { scope: "col" }, "Before"), el("th", { scope: "col" }, "After"))),
      el("tbody", {}, rows.map((k) => el("tr", {},
        el("th", { scope: "row" }, k || "value"),
        el("td", { class: "before" }, k in b ? value(b[k]) : el("span", { class: "muted" }, "none")),
        el("td", { class: "after" }, k in a ? value(a[k]) : el("span", { class: "muted" }, "none")))))) : null,
    same ? el("p", { class: "muted small" }, same === 1 ? "1 field unchanged." : same + " fields unchanged.") : null);
}

// flat turns a value into field → text, nested objects as a.b; a text
// with lines (a policy) stays one field.
function flat(v, prefix, out) {
  out = out || {};
  prefix = prefix || "";
  if (v === undefined || v === null) return out;
  if (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
    for (const [k, x] of Object.entries(v)) flat(x, prefix ? prefix + "." + k : k, out);
    return out;
  }
  out[prefix] = typeof v === "string" ? v : JSON.stringify(v);
  return out;
}

function value(s) {
  return s.includes("\n") ? el("pre", {}, s) : el("span", { class: "value" }, s);
}

// localInput is an RFC 3339 time as a datetime-local input holds it.
function localInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
