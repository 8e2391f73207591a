// grin's admin panel. Every action is a call of the public API with the
// logged-in user's token: the panel shows only the controls the token's
// permissions allow, and the API refuses the rest.
//
// Each view has its own URL (#/users?search=ann&page=2): a reload or a
// shared link opens the same view, after logging in if needed.

import { api, claims, getToken, setToken, on } from "./api.js";
import { $, el, notify, clearNotices } from "./ui.js";
import * as users from "./users.js";
import * as policies from "./policies.js";
import * as plugins from "./plugins.js";
import * as memory from "./memory.js";
import * as chat from "./chat.js";
import * as models from "./models.js";
import * as audit from "./audit.js";

// SECTIONS in the navigation's order. allowed decides from the token's
// permissions, or probe asks the server (sections grin decides by policy).
const SECTIONS = [
  { id: "users", title: "Users", view: users, allowed: (c) => c.can("USERS", "LIST") },
  { id: "policies", title: "Roles & policies", view: policies, probe: "/policies" },
  { id: "plugins", title: "Plugins", view: plugins, allowed: (c) => c.can("PLUGINS", "LIST") },
  { id: "memory", title: "Memory", view: memory, allowed: (c) => c.can("MEMORY", "READ") },
  { id: "chat", title: "Chat", view: chat, allowed: (c) => c.can("CONVERSATION", "WRITE") },
  { id: "models", title: "Models", view: models, allowed: (c) => c.can("LLM", "LIST") || c.can("EMBEDDER", "LIST") },
  // Shown once the server has an audit log (GET /audit answers).
  { id: "audit", title: "Audit", view: audit, probe: "/audit?limit=1" },
];

let visible = [];
let current = null; // the section on screen, and what it returned to stop it

// ctx is what views know of the caller.
const ctx = {
  me: {},
  can(resource, perm) {
    const p = (ctx.me.permissions || {})[resource] || [];
    return perm ? p.includes(perm) : p.length > 0;
  },
  // go changes the view's parameters in the URL (and so the view).
  go(section, params, replace) {
    const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== "" && v !== undefined && v !== null)).toString();
    const hash = "#/" + section + (q ? "?" + q : "");
    if (hash === location.hash) return;
    if (replace) { history.replaceState(null, "", hash); route(); } else location.hash = hash;
  },
};

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { section: path || "", params: Object.fromEntries(new URLSearchParams(query || "")) };
}

// ---- login and logout ----
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const button = f.querySelector("button");
  button.disabled = true;
  $("#login-error").textContent = "";
  const r = await api("POST", "/auth/token", { username: f.username.value, password: f.password.value });
  button.disabled = false;
  if (!r.ok) {
    $("#login-error").textContent = r.status === 403 || r.status === 401 ? "Wrong username or password." : r.message;
    return;
  }
  setToken(r.data.access_token);
  f.reset();
  start();
});

function logout(message) {
  // Only this browser forgets the token: POST /auth/logout would end the
  // user's sessions on every device too.
  setToken("");
  stopView();
  visible = [];
  document.body.classList.remove("signed-in");
  $("#nav").hidden = true;
  $("#nav-toggle").hidden = true;
  $("#account").hidden = true;
  clearNotices();
  $("#view").replaceChildren(loginSection);
  if (message) $("#login-error").textContent = message;
  $("#login-username").focus();
}
const loginSection = $("#login-section");
$("#logout").addEventListener("click", () => logout());
on("unauthorized", () => { if (getToken()) logout("Your session has ended; log in again."); });
on("unreachable", (m) => notify("error", m));

// ---- start: decide the sections, then show the one in the URL ----
async function start() {
  ctx.me = claims();
  if (!ctx.me.sub) { logout(); return; }
  // The token carries the permissions at login; the user's record has
  // today's, when the user may read it.
  if (ctx.can("USERS", "READ")) {
    const r = await api("GET", "/users/" + encodeURIComponent(ctx.me.sub));
    if (r.ok) ctx.me = { ...ctx.me, permissions: r.data.permissions };
  }
  $("#who").replaceChildren("Logged in as ", el("strong", {}, ctx.me.username || "?"));
  $("#account").hidden = false;
  document.body.classList.add("signed-in");
  const probes = await Promise.all(SECTIONS.map((s) => (s.probe ? api("GET", s.probe).then((r) => r.ok) : Promise.resolve(s.allowed(ctx)))));
  if (!getToken()) return; // logged out meanwhile
  visible = SECTIONS.filter((_, i) => probes[i]);
  const ul = $("#nav ul");
  ul.replaceChildren(...visible.map((s) => el("li", {}, el("a", { href: "#/" + s.id, "data-section": s.id }, s.title))));
  $("#nav").hidden = false;
  $("#nav-toggle").hidden = false;
  if (!visible.length) {
    $("#view").replaceChildren(el("section", { class: "card" }, el("h1", {}, "Nothing to administer"),
      el("p", {}, "Your account has no permission that this panel uses. Ask an administrator for one.")));
    return;
  }
  route();
}

function stopView() {
  if (current && typeof current.stop === "function") current.stop();
  current = null;
}

async function route() {
  if (!getToken()) return;
  const { section, params } = parseHash();
  const s = visible.find((x) => x.id === section);
  if (!s) {
    const wanted = SECTIONS.find((x) => x.id === section);
    if (wanted && section) notify("error", "You do not have the permission to open " + wanted.title + "; showing " + visible[0].title + " instead.");
    ctx.go(visible[0].id, {}, true);
    return;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.section === s.id) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = s.title + " · grin admin";
  closeMenu();
  const sameSection = current && current.section === s.id;
  if (sameSection && current.update) { current.update(params); return; }
  stopView();
  const root = el("section", { class: "view", id: s.id + "-view", "aria-labelledby": s.id + "-title" });
  $("#view").replaceChildren(root);
  const handle = (await s.view.render(root, params, ctx)) || {};
  current = Object.assign(handle, { section: s.id });
}
window.addEventListener("hashchange", route);

// ---- the menu on narrow screens ----
function closeMenu() {
  document.body.classList.remove("menu-open");
  $("#nav-toggle").setAttribute("aria-expanded", "false");
}
$("#nav-toggle").addEventListener("click", () => {
  const open = document.body.classList.toggle("menu-open");
  $("#nav-toggle").setAttribute("aria-expanded", String(open));
});

if (getToken()) start(); else logout();
