// Users: a table searched, sorted and paged by the API (GET /users with
// search, sort, skip, limit; X-Total-Count), create and edit in the
// drawer, bulk delete. Controls show only when the caller's permissions
// allow them; every refusal stays on screen until dismissed.

import { api, fieldName, humanize } from "./api.js";
import { $, $$, el, notify, chips, copyable, openDrawer, confirm, when, busy } from "./ui.js";

export const RESOURCES = ["STATUS", "MEMORY", "CONVERSATION", "SETTINGS", "LLM", "EMBEDDER", "AUTH_HANDLER", "USERS", "UPLOAD", "PLUGINS", "STATIC"];
export const PERMISSIONS = ["WRITE", "EDIT", "LIST", "READ", "DELETE"];
const PAGE_SIZES = [25, 50, 100];
const COLUMNS = [
  { key: "username", label: "Username", sort: "username" },
  { key: "id", label: "Id" },
  { key: "roles", label: "Roles" },
  { key: "permissions", label: "Permissions" },
  { key: "created_at", label: "Created", sort: "created_at" },
  { key: "last_login", label: "Last login", sort: "last_login" },
];

export async function render(root, params, ctx) {
  const mayCreate = ctx.can("USERS", "WRITE");
  const mayEdit = ctx.can("USERS", "EDIT");
  const mayDelete = ctx.can("USERS", "DELETE");
  let state = {};
  let rows = [];
  const selected = new Set();

  const search = el("input", { type: "search", id: "user-search", name: "search", placeholder: "Name or id", autocomplete: "off" });
  const pageSize = el("select", { id: "user-page-size", name: "limit" }, PAGE_SIZES.map((n) => el("option", { value: n }, n + " a page")));
  const bulk = el("button", { type: "button", id: "users-delete-selected", class: "danger", hidden: true, onclick: () => deleteMany([...selected].map((id) => rows.find((u) => u.id === id)).filter(Boolean)) });
  const table = el("table", { id: "users-table", class: "data" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages of users" });
  const summary = el("p", { id: "users-summary", class: "muted", role: "status" });

  root.append(
    el("div", { class: "view-head" },
      el("h1", { id: "users-title" }, "Users"),
      mayCreate ? el("button", { type: "button", id: "user-new", class: "primary", onclick: () => edit(null) }, "New user") : null),
    el("div", { class: "toolbar" },
      el("label", { for: "user-search", class: "sr-only" }, "Search users"), search,
      el("label", { for: "user-page-size", class: "sr-only" }, "Users per page"), pageSize,
      bulk),
    summary,
    el("div", { class: "table-wrap" }, table),
    pager);

  let typing;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => ctx.go("users", { ...state, search: search.value.trim(), page: "" }, true), 250);
  });
  pageSize.addEventListener("change", () => ctx.go("users", { ...state, limit: pageSize.value, page: "" }, true));

  async function load() {
    const limit = PAGE_SIZES.includes(Number(state.limit)) ? Number(state.limit) : PAGE_SIZES[0];
    const page = Math.max(1, parseInt(state.page, 10) || 1);
    const sort = state.sort || "created_at";
    if (document.activeElement !== search) search.value = state.search || "";
    pageSize.value = String(limit);
    const q = new URLSearchParams({ skip: String((page - 1) * limit), limit: String(limit), sort });
    if (state.search) q.set("search", state.search);
    table.setAttribute("aria-busy", "true");
    const r = await api("GET", "/users?" + q);
    table.removeAttribute("aria-busy");
    if (!r.ok) {
      notify("error", "The users could not be listed: " + r.message);
      return;
    }
    rows = r.data;
    const total = Number(r.headers.get("X-Total-Count") || rows.length);
    for (const id of [...selected]) if (!rows.some((u) => u.id === id)) selected.delete(id);
    drawTable(sort);
    const first = total ? (page - 1) * limit + 1 : 0;
    summary.textContent = total === 0
      ? (state.search ? "No user's name or id contains “" + state.search + "”." : "No users.")
      : `Users ${first}–${first + rows.length - 1} of ${total}` + (state.search ? ` matching “${state.search}”` : "") + ".";
    drawPager(page, Math.max(1, Math.ceil(total / limit)));
    drawBulk();
  }

  function drawTable(sort) {
    const head = el("tr", {},
      mayDelete ? el("th", { scope: "col", class: "check" }, el("input", {
        type: "checkbox", "aria-label": "Select every user on this page",
        onchange: (ev) => { for (const u of rows) ev.target.checked ? selected.add(u.id) : selected.delete(u.id); drawTable(sort); drawBulk(); },
        checked: rows.length > 0 && rows.every((u) => selected.has(u.id)),
      })) : null,
      COLUMNS.map((c) => {
        if (!c.sort) return el("th", { scope: "col" }, c.label);
        const dir = sort === c.sort ? "ascending" : sort === "-" + c.sort ? "descending" : "none";
        const next = dir === "ascending" ? "-" + c.sort : c.sort;
        return el("th", { scope: "col", "aria-sort": dir },
          el("button", { type: "button", class: "sort", "data-sort": c.sort, onclick: () => ctx.go("users", { ...state, sort: next, page: "" }, true) },
            c.label, el("span", { "aria-hidden": "true" }, dir === "ascending" ? " ▲" : dir === "descending" ? " ▼" : "")));
      }),
      mayEdit || mayDelete ? el("th", { scope: "col" }, "Actions") : null);
    const body = rows.map((u) => {
      const you = u.id === ctx.me.sub;
      return el("tr", { "data-user": u.username },
        mayDelete ? el("td", { class: "check" }, el("input", {
          type: "checkbox", "aria-label": "Select " + u.username, checked: selected.has(u.id),
          onchange: (ev) => { ev.target.checked ? selected.add(u.id) : selected.delete(u.id); drawBulk(); },
        })) : null,
        el("td", { "data-label": "Username" }, el("strong", {}, u.username), you ? el("span", { class: "badge" }, "you") : null),
        el("td", { "data-label": "Id" }, copyable(u.id, "the id of " + u.username)),
        el("td", { "data-label": "Roles" }, u.roles && u.roles.length ? el("ul", { class: "chips" }, u.roles.map((r) => el("li", { class: "chip role" }, r))) : el("span", { class: "muted" }, "none")),
        el("td", { "data-label": "Permissions" }, chips(u.permissions, RESOURCES, PERMISSIONS)),
        el("td", { "data-label": "Created" }, when(u.created_at)),
        el("td", { "data-label": "Last login" }, when(u.last_login)),
        mayEdit || mayDelete ? el("td", { class: "actions" },
          mayEdit ? el("button", { type: "button", class: "edit", "aria-label": "Edit " + u.username, onclick: () => edit(u) }, "Edit") : null,
          mayDelete ? el("button", { type: "button", class: "delete danger", "aria-label": "Delete " + u.username, onclick: () => deleteMany([u]) }, "Delete") : null) : null);
    });
    table.replaceChildren(el("caption", { class: "sr-only" }, "Users"), el("thead", {}, head), el("tbody", {}, body));
  }

  function drawPager(page, pages) {
    const link = (p, label, aria) => el("button", {
      type: "button", disabled: p < 1 || p > pages || p === page, "aria-label": aria, "aria-current": p === page && !aria ? "page" : null,
      onclick: () => ctx.go("users", { ...state, page: p > 1 ? String(p) : "" }, false),
    }, label);
    const nums = [];
    for (let p = Math.max(1, page - 2); p <= Math.min(pages, page + 2); p++) nums.push(link(p, String(p), "Page " + p));
    pager.replaceChildren(link(page - 1, "‹ Previous", "Previous page"), ...nums, link(page + 1, "Next ›", "Next page"));
    pager.hidden = pages <= 1;
  }

  function drawBulk() {
    bulk.hidden = selected.size === 0;
    bulk.textContent = "Delete " + selected.size + " selected";
  }

  // deleteMany deletes users after a confirmation; deleting yourself asks
  // you to type your name. Each refusal is reported with its reason.
  async function deleteMany(list) {
    if (!list.length) return;
    const self = list.find((u) => u.id === ctx.me.sub);
    const names = list.map((u) => u.username);
    const ok = await confirm({
      title: list.length === 1 ? "Delete " + names[0] + "?" : "Delete " + list.length + " users?",
      text: (list.length === 1 ? names[0] : names.join(", ")) + ": the account" + (list.length > 1 ? "s" : "") +
        " and everything it owns (memories, conversation history, sessions) go for good." +
        (self ? " This includes your own account: you will be logged out and cannot log in again." : ""),
      action: list.length === 1 ? "Delete " + names[0] : "Delete " + list.length + " users",
      typed: self ? self.username : undefined,
    });
    if (!ok) return;
    const done = [];
    for (const u of list) {
      const r = await api("DELETE", "/users/" + encodeURIComponent(u.id));
      if (r.ok) { done.push(u.username); selected.delete(u.id); } else notify("error", "Could not delete " + u.username + ": " + r.message);
    }
    if (done.length) notify("ok", "Deleted " + done.join(", ") + ".");
    if (self && done.includes(self.username)) {
      // Our own account is gone: the next call logs us out.
      await api("GET", "/users/" + encodeURIComponent(self.id));
      return;
    }
    load();
  }

  // edit opens the drawer on a user (null: a new one).
  function edit(u) {
    const form = el("form", { id: "user-form", novalidate: true });
    const field = (name, label, input, hint) => el("div", { class: "field" },
      el("label", { for: "user-" + name }, label), input,
      hint ? el("p", { class: "hint", id: "user-" + name + "-hint" }, hint) : null,
      el("p", { class: "error", "data-field": name, id: "user-" + name + "-error" }));
    const username = el("input", { id: "user-username", name: "username", autocomplete: "off", value: u ? u.username : "", "aria-describedby": "user-username-error" });
    const password = el("input", { id: "user-password", name: "password", type: "password", autocomplete: "new-password", "aria-describedby": "user-password-hint user-password-error" });
    form.append(...[
      u ? el("p", {}, "Id ", copyable(u.id, "the id of " + u.username)) : null,
      field("username", "Username", username),
      field("password", u ? "New password" : "Password", password, u ? "Leave empty to keep the current password. A new one logs the user out everywhere." : "At least 5 characters."),
      permissionGrid(u ? u.permissions : { STATUS: ["READ"], MEMORY: ["LIST", "READ"], CONVERSATION: ["WRITE", "EDIT", "LIST", "READ", "DELETE"], STATIC: ["READ"] }, ctx),
      el("p", { class: "error", "data-field": "permissions" }),
      el("p", { class: "error", "data-field": "form", role: "alert" }),
      el("div", { class: "actions" },
        el("button", { type: "button", "data-close": true }, "Cancel"),
        el("button", { type: "submit", class: "primary", id: "user-submit" }, u ? "Save" : "Create user"))].filter(Boolean));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const e of $$(".error", form)) e.textContent = "";
      const permissions = {};
      for (const cb of $$("input[name=perm]:checked", form)) {
        const [r, p] = cb.value.split(":");
        (permissions[r] = permissions[r] || []).push(p);
      }
      const body = { username: username.value.trim(), permissions };
      if (u && body.username === u.username) delete body.username;
      if (password.value || !u) body.password = password.value;
      const r = await busy($("#user-submit"), "Saving…", () => (u ? api("PUT", "/users/" + encodeURIComponent(u.id), body) : api("POST", "/users", body)));
      if (r.ok) {
        close();
        notify("ok", (u ? "Saved " : "Created ") + r.data.username + ".");
        load();
        return;
      }
      // Each problem beside its field; the rest at the bottom of the form.
      const rest = [];
      for (const e of r.data.errors || []) {
        const name = fieldName(e.location || "").split(" › ")[0];
        const slot = $(`.error[data-field="${name}"]`, form);
        const text = humanize(e.message || "");
        if (slot && text) slot.textContent = text[0].toUpperCase() + text.slice(1) + ".";
        else rest.push(e);
      }
      if (!(r.data.errors || []).length || rest.length) $('.error[data-field="form"]', form).textContent = r.message;
    });
    const close = openDrawer(u ? "Edit " + u.username : "New user", form);
  }

  const handle = {
    update(p) { state = { ...p }; load(); },
  };
  handle.update(params);
  return handle;
}

// permissionGrid is a resource × permission grid of checkboxes. The
// caller can give only what they hold: the rest are disabled and say so.
export function permissionGrid(perms, ctx) {
  const grid = el("table", { id: "perm-grid", class: "grid" },
    el("caption", {}, "Permissions"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Resource"),
      PERMISSIONS.map((p) => el("th", { scope: "col", title: p }, el("span", { class: "long" }, p), el("span", { class: "short", "aria-hidden": "true" }, p[0]))))),
    el("tbody", {}, RESOURCES.map((r) => el("tr", {},
      el("th", { scope: "row" }, r.replace("_", " ")),
      PERMISSIONS.map((p) => {
        const held = ctx.can(r, p);
        return el("td", {}, el("input", {
          type: "checkbox", name: "perm", value: r + ":" + p, "aria-label": r + " " + p,
          checked: ((perms || {})[r] || []).includes(p), disabled: !held,
          title: held ? null : "You cannot give " + r + " " + p + ": you do not hold it",
        }));
      })))));
  return el("fieldset", { class: "perm-fieldset" }, el("legend", { class: "sr-only" }, "Permissions"), el("div", { class: "grid-wrap" }, grid));
}
