// Plugins: a card per plugin (what it is, the hooks it runs, the
// capabilities it asks for and whether the policy grants them, its health
// and logs), upload by drag and drop, settings forms from the plugin's
// JSON Schema.

import { api } from "./api.js";
import { $, el, notify, confirm, copyable, busy } from "./ui.js";
import { schemaForm } from "./schemaform.js";

export async function render(root, params, ctx) {
  const mayWrite = ctx.can("PLUGINS", "WRITE");
  const mayEdit = ctx.can("PLUGINS", "EDIT");
  const mayDelete = ctx.can("PLUGINS", "DELETE");
  const list = el("div", { id: "plugin-list", class: "cards" });
  const summary = el("p", { class: "muted", role: "status", id: "plugins-summary" });
  root.append(el("div", { class: "view-head" }, el("h1", { id: "plugins-title" }, "Plugins")));
  if (mayWrite) root.append(uploader(load));
  root.append(summary, list);

  // Whether the policy grants each capability, when the caller may ask.
  let mayCheck = null;
  async function granted(pluginID, capability) {
    if (mayCheck === false) return null;
    const r = await api("POST", "/policies/check", { subject: "plugin:" + pluginID, object: "capability:" + capability, action: "use" });
    mayCheck = r.ok;
    return r.ok ? r.data.allowed : null;
  }

  async function load() {
    const r = await api("GET", "/plugins");
    if (!r.ok) { notify("error", "The plugins could not be listed: " + r.message); return; }
    const installed = r.data.installed || [];
    summary.textContent = installed.length === 0 ? "No plugin is installed." : installed.length + " installed, " + installed.filter((p) => p.active).length + " active.";
    list.replaceChildren(...installed.map(card));
  }

  function card(p) {
    const stats = el("p", { class: "plugin-stats" }, "Reading its figures…");
    const logs = el("pre", { class: "plugin-logs", tabindex: "0", "aria-label": "Logs of " + p.name, hidden: true });
    const caps = Object.entries(p.capabilities || {});
    // Each capability, and for http.fetch each host, is granted apart
    // (p, plugin:<id>, capability:<name>[:<host>], use).
    const objects = caps.flatMap(([name, spec]) => ((spec && spec.hosts) || []).length ? spec.hosts.map((h) => name + ":" + h) : [name]);
    const capList = el("ul", { class: "caps" }, objects.map((name) => {
      const state = el("span", { class: "grant muted" }, "…");
      granted(p.id, name).then((g) => {
        state.textContent = g === null ? "grant not known" : g ? "granted" : "not granted";
        state.className = "grant " + (g === null ? "muted" : g ? "ok" : "warn");
      });
      return el("li", { "data-capability": name }, el("code", {}, name), " — ", state);
    }));
    const section = el("article", { class: "card plugin" + (p.active ? "" : " inactive"), "data-plugin": p.id, "aria-labelledby": "plugin-" + p.id + "-name" },
      el("header", {},
        el("h2", { id: "plugin-" + p.id + "-name" }, p.name || p.id, " ", el("span", { class: "version" }, p.version ? "v" + p.version : "")),
        el("span", { class: "state badge " + (p.active ? "ok" : "off") }, p.active ? "active" : "inactive")),
      el("p", { class: "description" }, p.description || "No description."),
      el("p", { class: "muted" }, "Id ", copyable(p.id, "the id of " + p.name), p.author_name ? " · by " + p.author_name : ""),
      p.disabled_reason ? el("p", { class: "disabled-reason notice error inline" }, "Turned off by grin: " + p.disabled_reason) : null,
      el("dl", { class: "facts" },
        el("dt", {}, "Hooks"), el("dd", {}, (p.hooks || []).length ? el("ul", { class: "chips" }, p.hooks.map((h) => el("li", { class: "chip" }, h.name, h.priority ? " (priority " + h.priority + ")" : ""))) : "none"),
        el("dt", {}, "Capabilities"), el("dd", {}, caps.length ? capList : "none asked for"),
        el("dt", {}, "Health"), el("dd", {}, stats)),
      el("div", { class: "actions" },
        mayEdit ? el("button", { type: "button", class: "toggle", onclick: (ev) => toggle(p, ev.target) }, p.active ? "Deactivate" : "Activate") : null,
        el("button", { type: "button", class: "show-logs", "aria-expanded": "false", onclick: (ev) => showLogs(p, logs, ev.target) }, "Show logs"),
        mayDelete ? el("button", { type: "button", class: "danger", onclick: () => remove(p) }, "Delete") : null),
      logs);
    figures(p, stats);
    const props = (p.settings_schema || {}).properties || {};
    if (Object.keys(props).length) {
      section.append(el("details", { class: "settings" }, el("summary", {}, "Settings"),
        schemaForm(p.settings_schema, p.settings || {}, {
          id: "plugin-" + p.id + "-settings", readOnly: !mayEdit, submit: "Save settings",
          save: async (value) => {
            const s = await api("PUT", "/plugins/settings/" + encodeURIComponent(p.id), value);
            if (s.ok) notify("ok", "Saved the settings of " + p.name + ".");
            return s;
          },
        })));
    }
    return section;
  }

  async function figures(p, box) {
    const st = await api("GET", "/plugins/stats/" + encodeURIComponent(p.id));
    box.textContent = st.ok
      ? `${st.data.calls} calls, ${st.data.errors} failed (${st.data.deadline_hits} past their deadline), ${st.data.skipped} skipped while it could not start, ` +
        `${st.data.time_spent_ms.toFixed(1)} ms spent, ${st.data.instances} instances alive`
      : "Its figures could not be read: " + st.message;
  }

  async function showLogs(p, box, button) {
    if (!box.hidden) { box.hidden = true; button.textContent = "Show logs"; button.setAttribute("aria-expanded", "false"); return; }
    box.hidden = false;
    button.textContent = "Hide logs";
    button.setAttribute("aria-expanded", "true");
    box.textContent = "Loading…";
    const r = await api("GET", "/plugins/logs/" + encodeURIComponent(p.id));
    if (!r.ok) { box.textContent = "The logs could not be read: " + r.message; return; }
    const entries = r.data.entries || [];
    box.textContent = entries.length === 0
      ? "No log lines or failures since grin started."
      : entries.map((e) => [new Date(e.time).toLocaleString(), e.level.toUpperCase(), e.hook || "", e.user_id ? "user " + e.user_id : "", e.message]
        .filter(Boolean).join("  ")).join("\n");
  }

  async function toggle(p, button) {
    const r = await busy(button, p.active ? "Deactivating…" : "Activating…", () => api("PUT", "/plugins/toggle/" + encodeURIComponent(p.id)));
    if (!r.ok) { notify("error", "Could not " + (p.active ? "deactivate " : "activate ") + p.name + ": " + r.message); return; }
    notify("ok", p.name + (p.active ? " is off." : " is on."));
    load();
  }

  async function remove(p) {
    if (!(await confirm({ title: "Delete " + p.name + "?", text: "The plugin, its settings and what it stored go for good.", action: "Delete " + p.name }))) return;
    const r = await api("DELETE", "/plugins/" + encodeURIComponent(p.id));
    if (!r.ok) { notify("error", "Could not delete " + p.name + ": " + r.message); return; }
    notify("ok", "Deleted " + p.name + ".");
    load();
  }

  load();
}

// uploader is a drop zone (and a file picker) for plugin archives.
function uploader(done) {
  const input = el("input", { type: "file", id: "plugin-file", name: "file", accept: ".zip,.tar,.gz,.tgz", class: "sr-only" });
  const status = el("p", { id: "plugin-status", role: "status" });
  const zone = el("label", { for: "plugin-file", class: "dropzone", id: "plugin-drop" },
    el("strong", {}, "Drop a plugin archive here"), el("span", {}, " or choose a file (.zip or .tar.gz)"));
  async function send(file) {
    if (!file) return;
    const fd = new FormData();
    fd.append("file", file, file.name);
    zone.classList.add("busy");
    status.className = "";
    status.textContent = "Uploading " + file.name + "…";
    const r = await api("POST", "/plugins/upload", fd, true);
    zone.classList.remove("busy");
    input.value = "";
    status.className = r.ok ? "ok" : "error";
    status.textContent = r.ok ? "Installed " + file.name + "." : "Could not install " + file.name + ": " + r.message;
    if (r.ok) notify("ok", "Installed " + file.name + ".");
    done();
  }
  input.addEventListener("change", () => send(input.files[0]));
  for (const t of ["dragenter", "dragover"]) zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    send(ev.dataTransfer.files[0]);
  });
  return el("form", { id: "plugin-upload", class: "card", onsubmit: (ev) => ev.preventDefault() }, el("h2", {}, "Install a plugin"), input, zone, status);
}
