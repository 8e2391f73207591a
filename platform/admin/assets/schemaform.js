// schemaForm renders a settings form from a JSON Schema object: a field
// per property, enums as selects, booleans as checkboxes, numbers with
// their bounds, secrets (writeOnly) as password fields that keep the saved
// value when left empty, nested values as JSON. Defaults are shown beside
// each field; refusals are shown beside the field they are about.

import { el, busy } from "./ui.js";
import { humanize, fieldName, schemaProblems, clean } from "./api.js";

export function schemaForm(schema, value, { id, save, submit, readOnly, test }) {
  const form = el("form", { class: "schema-form", id, novalidate: true });
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  const inputs = [];
  for (const [name, prop] of Object.entries(props)) {
    const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
    const fid = id + "-" + name;
    const current = value[name];
    const hasDefault = prop.default !== undefined;
    let input;
    if (Array.isArray(prop.enum)) {
      input = el("select", { id: fid, name },
        required.has(name) ? null : el("option", { value: "" }, hasDefault ? "Default (" + prop.default + ")" : "Not set"),
        prop.enum.map((v) => el("option", { value: String(v) }, String(v))));
      input.value = current !== undefined ? String(current) : required.has(name) && hasDefault ? String(prop.default) : "";
    } else if (type === "boolean") {
      input = el("input", { type: "checkbox", id: fid, name });
      input.checked = current !== undefined ? !!current : !!prop.default;
    } else if (type === "integer" || type === "number") {
      input = el("input", { type: "number", id: fid, name, step: type === "integer" ? "1" : "any", min: prop.minimum, max: prop.maximum, placeholder: hasDefault ? String(prop.default) : "" });
      if (current !== undefined && current !== null) input.value = current;
    } else if (type === "object" || type === "array") {
      input = el("textarea", { id: fid, name, rows: 3, spellcheck: "false", placeholder: hasDefault ? JSON.stringify(prop.default) : "" });
      if (current !== undefined) input.value = JSON.stringify(current, null, 2);
    } else {
      const secret = prop.writeOnly || /key|secret|password|token/i.test(name);
      input = el("input", { type: secret ? "password" : "text", id: fid, name, autocomplete: "off", placeholder: secret && current ? "Saved; leave empty to keep it" : hasDefault ? String(prop.default) : "" });
      if (current !== undefined && current !== null && !(secret && /^\*+$/.test(String(current)))) input.value = current;
    }
    input.dataset.type = Array.isArray(prop.enum) ? "enum" : type || "string";
    input.dataset.enumType = Array.isArray(prop.enum) ? typeof prop.enum[0] : "";
    if (readOnly) input.disabled = true;
    const hintID = fid + "-hint";
    input.setAttribute("aria-describedby", hintID + " " + fid + "-error");
    inputs.push(input);
    const label = prop.title || name.replace(/_/g, " ");
    const hint = [prop.description, hasDefault && type !== "boolean" ? "Default: " + JSON.stringify(prop.default) + "." : "", required.has(name) ? "Required." : ""].filter(Boolean).join(" ");
    form.append(el("div", { class: "field" + (type === "boolean" ? " check" : "") },
      type === "boolean" ? el("label", { for: fid }, input, " ", label) : [el("label", { for: fid }, label), input],
      hint ? el("p", { class: "hint", id: hintID }, hint) : null,
      el("p", { class: "error", id: fid + "-error", "data-field": name })));
  }
  const status = el("p", { class: "form-status", role: "status" });
  const button = el("button", { type: "submit", class: "primary" }, submit);
  const tester = el("button", { type: "button", class: "test" }, "Test connection");
  if (!readOnly) form.append(el("div", { class: "actions" }, test ? tester : null, button));
  form.append(status);
  // values reads the form; null when a field is not valid JSON.
  const values = () => {
    for (const e of form.querySelectorAll(".error")) e.textContent = "";
    status.textContent = "";
    const out = {};
    for (const input of inputs) {
      const t = input.dataset.type;
      if (t === "boolean") { out[input.name] = input.checked; continue; }
      if (input.value === "") continue;
      if (t === "integer" || t === "number") out[input.name] = Number(input.value);
      else if (t === "enum" && input.dataset.enumType === "number") out[input.name] = Number(input.value);
      else if (t === "object" || t === "array") {
        try { out[input.name] = JSON.parse(input.value); } catch {
          form.querySelector(`.error[data-field="${input.name}"]`).textContent = "This is not valid JSON.";
          return null;
        }
      } else out[input.name] = input.value;
    }
    return out;
  };
  tester.addEventListener("click", async () => {
    const out = values();
    if (!out) return;
    status.className = "form-status";
    const r = await busy(tester, "Testing…", () => test(out));
    if (!r.ok) { status.className = "form-status error"; status.textContent = "The test could not run: " + r.message; return; }
    status.className = "form-status " + (r.data.ok ? "ok" : "error");
    status.replaceChildren(r.data.ok ? r.data.detail : "It does not work yet. ", r.data.ok ? "" : el("span", { class: "why" }, clean(r.data.detail)));
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = values();
    if (!out) return;
    const r = await busy(button, "Saving…", () => save(out));
    if (r.ok) { status.className = "form-status ok"; status.textContent = "Saved."; return; }
    status.className = "form-status error";
    let placed = 0;
    const problems = (r.data.errors || []).map((e) => ({ field: fieldName(e.location || "").split(" › ")[0], message: humanize(e.message || "") }))
      .concat(schemaProblems(r.data.detail));
    for (const { field, message } of problems) {
      const slot = form.querySelector(`.error[data-field="${field}"]`);
      if (slot && message) { slot.textContent = message[0].toUpperCase() + message.slice(1) + "."; placed++; }
    }
    status.textContent = placed ? "Not saved: see the fields marked above." : "Not saved: " + r.message;
  });
  return form;
}
