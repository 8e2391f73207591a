// Small building blocks of the panel's pages: elements, notices that stay
// until read, the drawer, confirmations, copyable ids. Nothing here ever
// puts text into the page as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// el builds an element: attributes (on* are listeners, true/false toggle
// boolean attributes) and children (strings become text nodes).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// notify shows a notice under the header. Errors stay until dismissed
// (a reload of a table never clears them); confirmations fade after a
// while. kind: "error", "ok" or "info".
export function notify(kind, text) {
  const box = $("#notices");
  const n = el("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" },
    el("span", { class: "text" }, text),
    el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss", onclick: () => n.remove() }, "×"));
  box.append(n);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== "error") setTimeout(() => n.remove(), 8000);
  return n;
}

export function clearNotices() { $("#notices").replaceChildren(); }

// copyable shows an id in monospace with a button that copies it.
export function copyable(value, label) {
  const b = el("button", { type: "button", class: "copy", "aria-label": "Copy " + (label || "id") + " " + value, title: "Copy " + value }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      b.textContent = "Copied";
    } catch {
      // Without clipboard access (plain http), select the text instead.
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  const code = el("code", { class: "id" }, value);
  return el("span", { class: "copyable" }, code, b);
}

// chips shows a Cat permission dictionary as one chip per resource; a
// resource with all five permissions reads "all", and a user with every
// permission on every resource gets one chip.
export function chips(perms, resources, words) {
  const entries = Object.entries(perms || {}).filter(([, v]) => v && v.length);
  if (!entries.length) return el("span", { class: "muted" }, "none");
  const full = (v) => words && words.every((w) => v.includes(w));
  if (resources && entries.length === resources.length && entries.every(([, v]) => full(v))) {
    return el("ul", { class: "chips" }, el("li", { class: "chip all" }, "every permission"));
  }
  return el("ul", { class: "chips" }, entries.map(([r, v]) =>
    el("li", { class: "chip", title: r + ": " + v.join(", ") }, el("b", {}, r), " ", full(v) ? "all" : v.join(" · "))));
}

// openDrawer shows content in the side drawer (a full-screen sheet on a
// phone); it returns a function that closes it.
export function openDrawer(title, content) {
  const d = $("#drawer");
  $("#drawer-title").textContent = title;
  $("#drawer-body").replaceChildren(content);
  if (!d.open) d.showModal();
  const first = content.querySelector("input:not([type=hidden]), select, textarea, button");
  if (first) first.focus();
  return () => d.close();
}
$("#drawer").addEventListener("click", (ev) => {
  if (ev.target.closest("[data-close]")) $("#drawer").close();
});

// confirm asks before something that cannot be undone; with typed, the
// person must type that text (their own name) first. Resolves true to go on.
export function confirm({ title, text, action, typed }) {
  const d = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = action;
  const input = $("#confirm-input");
  $("#confirm-typed").hidden = !typed;
  input.value = "";
  $("#confirm-ok").disabled = !!typed;
  if (typed) {
    $("#confirm-label").textContent = "Type " + typed + " to confirm";
    input.oninput = () => { $("#confirm-ok").disabled = input.value !== typed; };
  }
  d.returnValue = "";
  d.showModal();
  (typed ? input : $("#confirm-cancel")).focus();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok" && (!typed || input.value === typed)), { once: true });
  });
}

// when formats a time for a person, with the exact time as its title.
export function when(t) {
  if (!t) return el("span", { class: "muted" }, "never");
  const d = new Date(t);
  return el("time", { datetime: d.toISOString(), title: d.toLocaleString() },
    d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }));
}

// busy disables a button while work runs and says so on it.
export async function busy(button, label, work) {
  const old = button.textContent;
  button.disabled = true;
  button.textContent = label;
  button.setAttribute("aria-busy", "true");
  try { return await work(); } finally {
    button.disabled = false;
    button.textContent = old;
    button.removeAttribute("aria-busy");
  }
}

export function download(name, text, type) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: type || "application/json" })), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
