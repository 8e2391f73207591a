// Chat: the streamed conversation over the WebSocket, answers rendered as
// Markdown (safely: no HTML from the model reaches the page), "why" under
// each answer (the memories recalled and the prompt the model got), the
// conversation so far loaded on open, failures in words.

import { api, getToken, clean } from "./api.js";
import { el, notify } from "./ui.js";
import { markdown } from "./markdown.js";

// What each error frame means, for a person; the server's words follow.
const ERRORS = {
  ChatFailed: "The assistant could not answer.",
  InvalidMessage: "The message was not accepted.",
  TooManyMessages: "Wait for the answers to your earlier messages before sending more.",
  PermissionDenied: "You may no longer chat.",
};

export async function render(root, params, ctx) {
  const log = el("ol", { id: "chat-log", class: "chat-log", "aria-live": "polite", "aria-label": "Conversation" });
  const status = el("p", { id: "chat-status", class: "muted", role: "status" }, "Connecting…");
  const input = el("textarea", { id: "chat-text", name: "text", rows: 2, required: true, autocomplete: "off", placeholder: "Write a message; Enter sends, Shift+Enter starts a new line" });
  const send = el("button", { type: "submit", class: "primary", disabled: true }, "Send");
  const form = el("form", { id: "chat-form", class: "chat-form" }, el("label", { for: "chat-text", class: "sr-only" }, "Message"), input, send);
  root.append(el("div", { class: "view-head" }, el("h1", { id: "chat-title" }, "Chat"), status), log, form);

  let socket = null;
  let current = null;
  let stopped = false;

  function bubble(who, text, why) {
    const body = el("div", { class: "md" });
    body.append(who === "human" ? document.createTextNode(text) : markdown(text));
    const li = el("li", { class: who }, el("span", { class: "who" }, who === "human" ? ctx.me.username : "AI"), body);
    if (why) li.append(whyPanel(why));
    log.append(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  // History first, so a reload shows the conversation so far.
  const h = await api("GET", "/memory/conversation_history");
  if (h.ok) for (const t of h.data.history) bubble(t.who === "AI" ? "ai" : "human", t.text, t.who === "AI" ? t.why : null).classList.add("done");

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + "/ws?token=" + encodeURIComponent(getToken()));
    status.textContent = "Connecting…";
    socket.onopen = () => { status.textContent = "Connected"; send.disabled = false; };
    socket.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (f.type === "chat_token") {
        if (!current) { current = bubble("ai", ""); current.classList.add("streaming"); current.dataset.tokens = "0"; current.text = ""; }
        current.text += f.content;
        current.dataset.tokens = String(Number(current.dataset.tokens) + 1);
        current.querySelector(".md").replaceChildren(markdown(current.text));
      } else if (f.type === "chat") {
        if (!current) current = bubble("ai", "");
        current.querySelector(".md").replaceChildren(markdown(f.text || f.content || ""));
        if (f.why) current.append(whyPanel(f.why));
        current.classList.remove("streaming");
        current.classList.add("done");
        current = null;
        send.disabled = false;
      } else if (f.type === "notification") {
        log.append(el("li", { class: "notification" }, f.content));
      } else if (f.type === "error") {
        if (current) { current.classList.remove("streaming"); current = null; }
        send.disabled = false;
        const detail = clean(f.description || "");
        log.append(el("li", { class: "error", role: "alert" },
          el("p", {}, ERRORS[f.name] || "Something went wrong."),
          detail ? el("details", {}, el("summary", {}, "What the server said"), el("p", {}, detail)) : null));
      }
    };
    socket.onclose = (ev) => {
      send.disabled = true;
      if (stopped) return;
      status.replaceChildren(ev.code === 1008 ? "Your session ended; log in again." : "Disconnected. ",
        ev.code === 1008 ? "" : el("button", { type: "button", class: "small", onclick: connect }, "Reconnect"));
    };
  }
  connect();

  function submit() {
    const text = input.value.trim();
    if (!text) return;
    if (!socket || socket.readyState !== WebSocket.OPEN) { notify("error", "The chat is not connected; press Reconnect, then send again."); return; }
    bubble("human", text);
    socket.send(JSON.stringify({ text }));
    input.value = "";
    send.disabled = true;
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); submit(); } });
  input.focus();

  return { stop() { stopped = true; if (socket) socket.close(); } };
}

// whyPanel shows why an answer was given: what memory recalled (with
// scores) and the prompt the model got.
export function whyPanel(why) {
  const mem = why.memory || {};
  const recalled = ["episodic", "declarative", "procedural"].flatMap((c) => (mem[c] || []).map((d) => ({ c, d })));
  const prompts = (why.model_interactions || []).filter((m) => m.model_type === "llm");
  return el("details", { class: "why" }, el("summary", {}, "Why this answer"),
    el("h4", {}, "Memories recalled (" + recalled.length + ")"),
    recalled.length ? el("ul", { class: "recalled" }, recalled.map(({ c, d }) => el("li", {},
      el("span", { class: "badge" }, c), " ", el("span", { class: "score" }, typeof d.score === "number" ? d.score.toFixed(3) : ""), " ", d.page_content))) : el("p", { class: "muted" }, "None."),
    prompts.length ? [el("h4", {}, "Prompt"), ...prompts.map((m) => el("pre", { class: "prompt" }, m.prompt))] : el("p", { class: "muted" }, "No prompt recorded."));
}
