// Models: the language model and the embedder, each provider by its human
// name with the one in use marked and first; saving a provider's settings
// selects it.

import { api } from "./api.js";
import { el, notify } from "./ui.js";
import { schemaForm } from "./schemaform.js";

const KINDS = [
  { id: "llm", resource: "LLM", path: "/llm/settings", title: "Language model" },
  { id: "embedder", resource: "EMBEDDER", path: "/embedder/settings", title: "Embedder" },
];

// humanName is what a person calls a configuration: the schema's
// humanReadableName (as the Cat's UI shows), else its name in words.
export function humanName(s) {
  const schema = s.schema || {};
  if (schema.humanReadableName) return schema.humanReadableName;
  return s.name.replace(/Config$/, "").replace(/^(LLM|Embedder)/, "").replace(/([a-z])([A-Z])/g, "$1 $2") || s.name;
}

export async function render(root, params, ctx) {
  root.append(el("h1", { id: "models-title" }, "Models"));
  for (const kind of KINDS) {
    if (!ctx.can(kind.resource, "LIST")) continue;
    const box = el("section", { class: "card", id: kind.id + "-providers", "aria-labelledby": kind.id + "-heading" });
    root.append(box);
    load(kind, box, ctx);
  }
}

async function load(kind, box, ctx) {
  const r = await api("GET", kind.path);
  if (!r.ok) { box.replaceChildren(el("h2", { id: kind.id + "-heading" }, kind.title), el("p", { class: "error" }, r.message)); return; }
  const active = r.data.selected_configuration;
  const list = [...r.data.settings].sort((a, b) => (b.name === active) - (a.name === active));
  const inUse = list.find((s) => s.name === active);
  box.replaceChildren(
    el("h2", { id: kind.id + "-heading" }, kind.title),
    el("p", { class: "in-use" }, "In use: ", el("strong", {}, inUse ? humanName(inUse) : active)),
    el("ul", { class: "providers" }, list.map((s) => {
      const on = s.name === active;
      const mayEdit = ctx.can(kind.resource, "EDIT");
      return el("li", { class: "provider" + (on ? " active" : ""), "data-provider": s.name },
        el("details", { open: on && Object.keys((s.schema || {}).properties || {}).length > 0 ? true : null },
          el("summary", {}, el("span", { class: "name" }, humanName(s)), on ? el("span", { class: "badge ok" }, "in use") : null),
          (s.schema || {}).description ? el("p", { class: "hint" }, s.schema.description) : null,
          schemaForm(s.schema || {}, s.value || {}, {
            id: kind.id + "-" + s.name, readOnly: !mayEdit, submit: on ? "Save" : "Save and use " + humanName(s),
            test: (value) => api("POST", kind.path + "/" + encodeURIComponent(s.name) + "/test", value),
            save: async (value) => {
              const put = await api("PUT", kind.path + "/" + encodeURIComponent(s.name), value);
              if (put.ok) { notify("ok", humanName(s) + " saved and in use."); setTimeout(() => load(kind, box, ctx), 0); }
              return put;
            },
          })));
    })));
}
