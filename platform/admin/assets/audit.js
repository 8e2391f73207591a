// Audit: shown in the navigation only once the server has an audit log
// (GET /audit answers); its view arrives with that API.

import { el } from "./ui.js";

export function render(root) {
  root.append(el("h1", { id: "audit-title" }, "Audit"),
    el("p", {}, "This server keeps an audit log; its view is not part of this panel yet. Read it with GET /audit."));
}
