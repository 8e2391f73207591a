// grin's admin panel. Every action is a call of the public API with the
// logged-in user's token: the panel shows what the token may do and the API
// refuses the rest.
"use strict";

const RESOURCES = ["STATUS", "MEMORY", "CONVERSATION", "SETTINGS", "LLM", "EMBEDDER", "AUTH_HANDLER", "USERS", "UPLOAD", "PLUGINS", "STATIC"];
const PERMISSIONS = ["WRITE", "EDIT", "LIST", "READ", "DELETE"];
const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("grin-token") || "";
let claims = {};
let socket = null;

function banner(msg) {
  const b = $("#banner");
  b.textContent = msg || "";
  b.hidden = !msg;
}

// api calls the server and returns {ok, status, data}; a server that cannot
// be reached shows a banner instead of failing silently.
async function api(method, path, body, isForm) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  let payload;
  if (body !== undefined) {
    if (isForm) payload = body;
    else { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload });
  } catch (e) {
    banner("The server cannot be reached. Check that grin is running, then try again.");
    return { ok: false, status: 0, data: { detail: "unreachable" } };
  }
  banner("");
  const text = await resp.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { detail: text }; }
  if (resp.status === 401 || (resp.status === 403 && data.detail === "Invalid Credentials")) {
    logout();
  }
  return { ok: resp.ok, status: resp.status, data };
}

function decodeClaims(t) {
  try { return JSON.parse(atob(t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch { return {}; }
}

function can(resource, perm) {
  const p = (claims.permissions || {})[resource] || [];
  return perm ? p.includes(perm) : p.length > 0;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// ---- login ----
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const r = await api("POST", "/auth/token", { username: f.username.value, password: f.password.value });
  if (!r.ok) {
    $("#login-error").textContent = r.status === 429 ? r.data.detail : "Wrong username or password.";
    return;
  }
  token = r.data.access_token;
  sessionStorage.setItem("grin-token", token);
  f.reset();
  $("#login-error").textContent = "";
  start();
});

function logout() {
  token = "";
  claims = {};
  sessionStorage.removeItem("grin-token");
  if (socket) { socket.close(); socket = null; }
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "login-section";
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
}
$("#logout").addEventListener("click", logout);

// start shows the sections the user may use: Cat resources from the
// token, the policy section when the server lets us read the policy.
async function start() {
  claims = decodeClaims(token);
  $("#who").textContent = claims.username ? "Logged in as " + claims.username : "";
  $("#logout").hidden = false;
  $("#login-section").hidden = true;
  const nav = $("#nav");
  nav.replaceChildren();
  for (const s of document.querySelectorAll("main > section[data-resource], main > section[data-probe]")) {
    let visible = false;
    if (s.dataset.resource) visible = can(s.dataset.resource);
    if (s.dataset.probe) visible = (await api("GET", s.dataset.probe)).ok;
    s.hidden = !visible;
    if (visible) nav.append(el("a", { href: "#" + s.id }, s.querySelector("h2").textContent));
  }
  nav.hidden = false;
  if (can("USERS", "LIST")) loadUsers();
  if (!$("#policies-section").hidden) loadPolicies();
  if (can("PLUGINS", "LIST")) loadPlugins();
  if (can("MEMORY", "READ")) loadMemory("");
  if (can("CONVERSATION", "WRITE")) connectChat();
  if (can("LLM", "LIST")) loadSettings("/llm/settings", "#llm-forms", "Language model");
  if (can("EMBEDDER", "LIST")) loadSettings("/embedder/settings", "#embedder-forms", "Embedder");
}

// ---- users ----
function buildGrid() {
  const grid = $("#perm-grid");
  grid.replaceChildren(el("tr", {}, el("th", {}, "Resource"), ...PERMISSIONS.map((p) => el("th", {}, p))));
  for (const r of RESOURCES) {
    grid.append(el("tr", {}, el("th", { scope: "row" }, r), ...PERMISSIONS.map((p) =>
      el("td", {}, el("input", { type: "checkbox", name: "perm", value: r + ":" + p, "aria-label": r + " " + p })))));
  }
}

async function loadUsers() {
  const r = await api("GET", "/users?limit=1000");
  const body = $("#users-table tbody");
  body.replaceChildren();
  if (!r.ok) return;
  for (const u of r.data) {
    const perms = Object.entries(u.permissions).map(([k, v]) => k + ": " + v.join(", ")).join("; ");
    body.append(el("tr", {},
      el("td", {}, u.username),
      el("td", {}, perms || "none"),
      el("td", {},
        el("button", { type: "button", onclick: () => editUser(u) }, "Edit " + u.username),
        el("button", { type: "button", onclick: () => deleteUser(u) }, "Delete " + u.username))));
  }
}

function clearUserErrors() {
  for (const e of document.querySelectorAll("#user-form .error")) e.textContent = "";
}

function editUser(u) {
  const f = $("#user-form");
  clearUserErrors();
  f.id.value = u.id;
  f.username.value = u.username;
  f.password.value = "";
  for (const cb of f.querySelectorAll("input[name=perm]")) {
    const [r, p] = cb.value.split(":");
    cb.checked = (u.permissions[r] || []).includes(p);
  }
  $("#user-form-title").textContent = "Edit " + u.username;
  $("#user-submit").textContent = "Save";
  f.username.focus();
}

$("#user-cancel").addEventListener("click", () => {
  const f = $("#user-form");
  f.reset();
  f.id.value = "";
  clearUserErrors();
  $("#user-form-title").textContent = "Create a user";
  $("#user-submit").textContent = "Create";
});

async function deleteUser(u) {
  if (!confirm("Delete " + u.username + " and everything they own?")) return;
  const r = await api("DELETE", "/users/" + u.id);
  if (!r.ok) banner(r.data.detail || "Could not delete " + u.username);
  loadUsers();
}

$("#user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearUserErrors();
  const permissions = {};
  for (const cb of f.querySelectorAll("input[name=perm]:checked")) {
    const [r, p] = cb.value.split(":");
    (permissions[r] = permissions[r] || []).push(p);
  }
  const body = { username: f.username.value, permissions };
  if (f.password.value || !f.id.value) body.password = f.password.value;
  const r = f.id.value ? await api("PUT", "/users/" + f.id.value, body) : await api("POST", "/users", body);
  if (r.ok) {
    $("#user-cancel").click();
    loadUsers();
    return;
  }
  // Show each validation error beside its field.
  let placed = false;
  for (const e of r.data.errors || []) {
    const field = (e.location || "").replace(/^body\./, "").split(".")[0];
    const slot = f.querySelector('.error[data-field="' + field + '"]');
    if (slot) { slot.textContent = e.message; placed = true; }
  }
  if (!placed) f.querySelector('.error[data-field="form"]').textContent = r.data.detail || "Refused.";
});

// ---- policies ----
async function loadPolicies() {
  const r = await api("GET", "/policies");
  if (!r.ok) return;
  const f = $("#policy-form");
  f.model.value = r.data.model;
  f.policy.value = r.data.policy;
  // Files refused by grin: say so, and what to fix, beside the policy in force.
  const refused = r.data.file_status === "refused";
  $("#policy-status").textContent = (refused
    ? ["The files in the data directory were refused; this is the last policy that loaded."]
        .concat((r.data.file_errors || []).map((e) => e.file + (e.line ? " line " + e.line : "") + ": " + e.message))
    : []).concat(policyWarnings(r.data)).join("\n");
  $("#policy-status").className = refused ? "error" : "";
}

// policyWarnings lists the rules that load but name a subject matching nothing.
function policyWarnings(data) {
  return (data.warnings || []).map((w) => "Warning: " + w.file + (w.line ? " line " + w.line : "") + ": " + w.message);
}

async function savePolicy(dryRun) {
  const f = $("#policy-form");
  const r = await api("PUT", "/policies" + (dryRun ? "?dry_run=true" : ""), { model: f.model.value, policy: f.policy.value });
  // Every problem on its own line, as the API lists them.
  $("#policy-status").textContent = r.ok ? [dryRun ? "Valid." : "Saved; in force now."].concat(policyWarnings(r.data)).join("\n")
    : [r.data.detail || "Refused."].concat((r.data.errors || []).map((e) => (e.location || "") + ": " + e.message)).join("\n");
  $("#policy-status").className = r.ok ? "" : "error";
}
$("#policy-validate").addEventListener("click", () => savePolicy(true));
$("#policy-form").addEventListener("submit", (ev) => { ev.preventDefault(); savePolicy(false); });

$("#check-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const r = await api("POST", "/policies/check", { subject: f.subject.value, object: f.object.value, action: f.action.value });
  const out = $("#check-result");
  if (!r.ok) { out.textContent = r.data.detail || "Refused."; return; }
  // The reason names the rule that decided, allow or deny, and the roles.
  out.textContent = r.data.subject + ": " + (r.data.effect === "none" ? "denied: " : "") + r.data.reason;
});

// ---- plugins ----
async function loadPlugins() {
  const r = await api("GET", "/plugins");
  const list = $("#plugin-list");
  list.replaceChildren();
  if (!r.ok) return;
  for (const p of r.data.installed) {
    const li = el("li", { "data-plugin": p.id },
      el("strong", {}, p.name + " " + p.version), " (" + p.id + ") — ",
      el("span", { class: "state" }, p.active ? "active" : "inactive"), " ",
      el("button", { type: "button", onclick: async () => { await api("PUT", "/plugins/toggle/" + p.id); loadPlugins(); } }, (p.active ? "Deactivate " : "Activate ") + p.id),
      el("button", { type: "button", onclick: async () => { if (confirm("Delete plugin " + p.id + "?")) { await api("DELETE", "/plugins/" + p.id); loadPlugins(); } } }, "Delete " + p.id),
      el("button", { type: "button", class: "show-logs", onclick: () => showPluginLogs(p.id, li) }, "Logs of " + p.id));
    if (p.disabled_reason) li.append(el("p", { class: "disabled-reason" }, "Turned off by grin: " + p.disabled_reason));
    li.append(schemaForm(p.settings_schema || {}, p.settings || {}, async (value, status) => {
      const s = await api("PUT", "/plugins/settings/" + p.id, value);
      status.textContent = s.ok ? "Saved." : (s.data.detail || "Refused.") + " " + (s.data.errors || []).map((e) => e.message).join("; ");
    }, "Save settings of " + p.id));
    list.append(li);
  }
}

// showPluginLogs shows a plugin's figures (calls, failures, time,
// instances) and its recent log lines and failures under its entry, newest
// last, each with its time, level, hook and user.
async function showPluginLogs(id, li) {
  let box = li.querySelector(".plugin-logs");
  if (!box) {
    box = el("pre", { class: "plugin-logs", "aria-label": "Logs of " + id });
    li.append(box);
  }
  let figures = li.querySelector(".plugin-stats");
  if (!figures) {
    figures = el("p", { class: "plugin-stats" });
    li.insertBefore(figures, box);
  }
  const st = await api("GET", "/plugins/stats/" + id);
  figures.textContent = st.ok
    ? `${st.data.calls} calls, ${st.data.errors} failed (${st.data.deadline_hits} past their deadline), ${st.data.skipped} skipped while it could not start, ` +
      `${st.data.time_spent_ms.toFixed(1)} ms spent, ${st.data.instances} instances alive`
    : (st.data.detail || "The plugin's figures could not be read.");
  box.textContent = "Loading…";
  const r = await api("GET", "/plugins/logs/" + id);
  if (!r.ok) {
    box.textContent = r.data.detail || "The logs could not be read.";
    return;
  }
  const entries = r.data.entries || [];
  box.textContent = entries.length === 0
    ? "No log lines or failures since grin started."
    : entries.map((e) => [new Date(e.time).toLocaleString(), e.level.toUpperCase(), e.hook || "", e.user_id ? "user " + e.user_id : "", e.message]
      .filter(Boolean).join("  ")).join("\n");
}

$("#plugin-upload").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const fd = new FormData(ev.target);
  const r = await api("POST", "/plugins/upload", fd, true);
  $("#plugin-status").textContent = r.ok ? r.data.info : (r.data.detail || "Refused.");
  ev.target.reset();
  loadPlugins();
});

// schemaForm renders a form for a flat JSON Schema object: a field per
// property (text, number or checkbox), saved with save(value, status).
function schemaForm(schema, value, save, label) {
  const form = el("form", { class: "schema-form" });
  const props = schema.properties || {};
  for (const [name, prop] of Object.entries(props)) {
    const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
    let input;
    if (type === "boolean") input = el("input", { type: "checkbox", name });
    else if (type === "integer" || type === "number") input = el("input", { type: "number", name, step: type === "integer" ? "1" : "any" });
    else input = el("input", { type: prop.writeOnly ? "password" : "text", name, autocomplete: "off" });
    const v = value[name] !== undefined ? value[name] : prop.default;
    if (type === "boolean") input.checked = !!v; else if (v !== undefined) input.value = v;
    input.dataset.type = type || "string";
    form.append(el("label", {}, name + (prop.description ? " — " + prop.description : "") + " ", input));
  }
  const status = el("p", { role: "status" });
  form.append(el("button", { type: "submit" }, label), status);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const out = {};
    for (const input of form.querySelectorAll("input")) {
      const t = input.dataset.type;
      if (t === "boolean") out[input.name] = input.checked;
      else if (input.value === "") continue;
      else if (t === "integer" || t === "number") out[input.name] = Number(input.value);
      else out[input.name] = input.value;
    }
    save(out, status);
  });
  return form;
}

// ---- memory ----
async function loadMemory(user) {
  const c = await api("GET", "/memory/collections");
  const ul = $("#collections");
  ul.replaceChildren();
  if (c.ok) for (const col of c.data.collections) ul.append(el("li", {}, col.name + ": " + col.vectors_count + " memories"));
  const sp = await api("GET", "/memory/spaces");
  const spaces = $("#spaces");
  spaces.replaceChildren();
  if (sp.ok) for (const x of sp.data.spaces) spaces.append(el("li", {}, x.name + ": " + x.vectors_count + " memories"));
  const q = user ? "?partition=" + encodeURIComponent(user) : "";
  const p = await api("GET", "/memory/collections/episodic/points" + q);
  const points = $("#points");
  points.replaceChildren();
  if (!p.ok) { points.append(el("li", { class: "error" }, p.data.detail || "Refused.")); }
  else for (const pt of p.data.points) {
    points.append(el("li", {}, pt.page_content + " ",
      el("button", { type: "button", onclick: async () => { await api("DELETE", "/memory/collections/episodic/points/" + pt.id + q); loadMemory(user); } }, "Delete memory")));
  }
  const hq = user ? "?user_id=" + encodeURIComponent(user) : "";
  const h = await api("GET", "/memory/conversation_history" + hq);
  const hist = $("#history");
  hist.replaceChildren();
  if (h.ok) for (const t of h.data.history) hist.append(el("li", {}, t.who + ": " + t.text));
  $("#history-delete").onclick = async () => {
    if (!confirm("Delete this conversation?")) return;
    await api("DELETE", "/memory/conversation_history" + hq);
    loadMemory(user);
  };
}
$("#browse-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadMemory(ev.target.user.value.trim()); });

// ---- chat ----
function connectChat() {
  if (socket) socket.close();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(proto + "//" + location.host + "/ws?token=" + encodeURIComponent(token));
  let current = null;
  socket.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    const log = $("#chat-log");
    if (f.type === "chat_token") {
      if (!current) { current = el("li", { class: "ai streaming", "data-tokens": "0" }, ""); log.append(current); }
      current.textContent += f.content;
      current.dataset.tokens = String(Number(current.dataset.tokens) + 1);
    } else if (f.type === "chat") {
      if (!current) { current = el("li", { class: "ai" }, ""); log.append(current); }
      current.textContent = f.content;
      current.classList.remove("streaming");
      current.classList.add("done");
      current = null;
    } else if (f.type === "notification") {
      log.append(el("li", { class: "notification" }, f.content));
    } else if (f.type === "error") {
      log.append(el("li", { class: "error" }, f.description));
    }
  };
  socket.onclose = () => { if (token) banner("The chat connection closed; reload to reconnect."); };
}

$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = ev.target.text.value;
  if (!socket || socket.readyState !== WebSocket.OPEN) { banner("The chat is not connected."); return; }
  $("#chat-log").append(el("li", { class: "human" }, text));
  socket.send(JSON.stringify({ text }));
  ev.target.reset();
});

// ---- LLM and embedder settings ----
async function loadSettings(path, target, title) {
  const r = await api("GET", path);
  const box = $(target);
  box.replaceChildren();
  if (!r.ok) return;
  box.append(el("h3", {}, title + " (in use: " + r.data.selected_configuration + ")"));
  for (const s of r.data.settings) {
    const details = el("details", {}, el("summary", {}, s.name));
    details.append(schemaForm(s.schema || {}, s.value || {}, async (value, status) => {
      const put = await api("PUT", path + "/" + s.name, value);
      status.textContent = put.ok ? "Saved and selected." : (put.data.detail || "Refused.");
      if (put.ok) loadSettings(path, target, title);
    }, "Use " + s.name));
    box.append(details);
  }
}

buildGrid();
if (token) start();
