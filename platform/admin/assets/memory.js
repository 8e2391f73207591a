// Memory: one user's episodic memory (picked by username), a declarative
// space or procedural memory, paged; search by text with scores; each
// memory's metadata; delete with confirmation; export as JSON; the user's
// conversation history and counts.

import { api } from "./api.js";
import { el, notify, confirm, copyable, download, busy } from "./ui.js";
import { userId } from "./policies.js";

const PAGE = 20;

export async function render(root, params, ctx) {
  const mayDelete = ctx.can("MEMORY", "DELETE");
  const mayPick = ctx.can("USERS", "LIST");
  const who = el("input", { id: "memory-user", name: "user", autocomplete: "off", list: "memory-user-names", placeholder: ctx.me.username });
  const names = el("datalist", { id: "memory-user-names" });
  const collection = el("select", { id: "memory-collection", name: "collection" },
    el("option", { value: "episodic" }, "Episodic (the user's own)"), el("option", { value: "declarative" }, "Declarative (a space)"), el("option", { value: "procedural" }, "Procedural (plugins)"));
  const space = el("select", { id: "memory-space", name: "space" });
  const spaceField = el("div", { class: "field" }, el("label", { for: "memory-space" }, "Space"), space);
  const text = el("input", { id: "memory-search", name: "q", type: "search", autocomplete: "off", placeholder: "What to recall" });
  const picker = el("form", { id: "browse-form", class: "card toolbar wrap" },
    el("div", { class: "field" }, el("label", { for: "memory-user" }, "User"), who, names),
    el("div", { class: "field" }, el("label", { for: "memory-collection" }, "Collection"), collection),
    spaceField,
    el("div", { class: "field grow" }, el("label", { for: "memory-search" }, "Search by text"), text),
    el("button", { type: "submit", class: "primary" }, "Show"));
  const heading = el("h2", { id: "memory-heading" });
  const counts = el("p", { id: "memory-counts", class: "muted" });
  const points = el("ol", { id: "points", class: "points" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages of memories" });
  const tools = el("div", { class: "actions" },
    el("button", { type: "button", id: "memory-export", onclick: (ev) => exportAll(ev.target) }, "Export as JSON"),
    mayDelete ? el("button", { type: "button", id: "memory-wipe", class: "danger", onclick: (ev) => wipe(ev.target) }, "Delete all…") : null);
  const history = el("ol", { id: "history", class: "history" });
  const historyBox = el("section", { class: "card", "aria-labelledby": "history-title" },
    el("h2", { id: "history-title" }, "Conversation history"), history,
    ctx.can("CONVERSATION", "DELETE") || mayDelete ? el("button", { type: "button", id: "history-delete", class: "danger", onclick: () => forgetHistory() }, "Delete this conversation") : null);
  root.append(el("h1", { id: "memory-title" }, "Memory"), picker,
    el("section", { class: "card", "aria-labelledby": "memory-heading" }, heading, counts, tools, points, pager), historyBox);

  let state = {};
  let target = { id: ctx.me.sub, name: ctx.me.username };

  picker.addEventListener("submit", (ev) => {
    ev.preventDefault();
    ctx.go("memory", { user: who.value.trim(), collection: collection.value, space: collection.value === "declarative" ? space.value : "", q: text.value.trim() }, false);
  });
  collection.addEventListener("change", () => { spaceField.hidden = collection.value !== "declarative"; });
  if (mayPick) {
    let typing;
    who.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(async () => {
        const r = await api("GET", "/users?limit=10&sort=username&search=" + encodeURIComponent(who.value.trim()));
        if (r.ok) names.replaceChildren(...r.data.map((u) => el("option", { value: u.username })));
      }, 200);
    });
  } else {
    who.disabled = true;
    who.title = "You may browse only your own memory";
  }

  const sp = await api("GET", "/memory/spaces");
  const spaces = sp.ok ? sp.data.spaces : [];
  space.replaceChildren(...spaces.map((s) => el("option", { value: s.name }, s.name + " (" + s.vectors_count + ")")));

  // partition names what the API calls with ?partition=.
  const partition = () => (state.collection === "episodic" ? target.id : state.collection === "declarative" ? state.space || "shared" : "");
  const query = (extra) => {
    const q = new URLSearchParams(extra || {});
    if (partition()) q.set("partition", partition());
    return q.toString();
  };

  async function load() {
    state.collection = ["episodic", "declarative", "procedural"].includes(state.collection) ? state.collection : "episodic";
    who.value = state.user || "";
    collection.value = state.collection;
    spaceField.hidden = state.collection !== "declarative";
    if (state.space) space.value = state.space;
    text.value = state.q || "";
    // Usernames are what people know; the API wants the user's id.
    target = { id: ctx.me.sub, name: ctx.me.username };
    if (state.user && state.user !== ctx.me.username) {
      const id = await userId(state.user, ctx);
      if (id === null) {
        heading.textContent = "No user is named " + state.user;
        points.replaceChildren();
        history.replaceChildren();
        counts.textContent = "";
        notify("error", "There is no user named " + state.user + ". Pick a name from the list as you type.");
        return;
      }
      target = { id: id || state.user, name: state.user };
    }
    heading.replaceChildren(
      state.collection === "episodic" ? "Memories of " + target.name + " " : state.collection === "declarative" ? "Space " + (state.space || "shared") + " " : "Procedural memory ",
      state.collection === "episodic" ? copyable(target.id, "the id of " + target.name) : "");
    loadCounts();
    loadHistory();
    const wipeButton = document.getElementById("memory-wipe");
    if (wipeButton) {
      // Procedural memory is the plugins' tools: it is not wiped from here.
      wipeButton.hidden = state.collection === "procedural";
      wipeButton.textContent = state.collection === "episodic" ? "Delete all of " + target.name + "'s memories…" : "Delete all of space " + (state.space || "shared") + "…";
    }
    if (state.q) search(); else page(Math.max(0, parseInt(state.offset, 10) || 0));
  }

  // wipe deletes every memory of the collection shown, for this user or
  // space (DELETE /memory/collections/{c}?partition=, which the policy
  // decides as any deletion there), after the name is typed.
  async function wipe(button) {
    const episodic = state.collection === "episodic";
    const name = episodic ? target.name : state.space || "shared";
    const ok = await confirm({
      title: episodic ? "Delete every memory of " + name + "?" : "Delete everything in space " + name + "?",
      text: (episodic ? "All of " + name + "'s episodic memories" : "Every document and memory of space " + name) + " go for good. Export them first if you may need them.",
      action: "Delete all", typed: name,
    });
    if (!ok) return;
    const r = await busy(button, "Deleting…", () => api("DELETE", "/memory/collections/" + state.collection + "?" + query()));
    if (!r.ok) { notify("error", "Could not delete the memories of " + name + ": " + r.message); return; }
    const n = (r.data.deleted || {})[state.collection] || 0;
    notify("ok", (n === 1 ? "1 memory" : n + " memories") + " of " + name + " deleted.");
    load();
  }

  async function loadCounts() {
    const r = await api("GET", "/memory/collections" + (target.id !== ctx.me.sub ? "?user_id=" + encodeURIComponent(target.id) : ""));
    counts.textContent = r.ok
      ? r.data.collections.map((c) => (c.name === "episodic" ? target.name + "'s episodic" : c.name) + ": " + c.vectors_count).join(" · ")
      : "Counts unavailable: " + r.message;
  }

  async function page(offset) {
    points.setAttribute("aria-busy", "true");
    const r = await api("GET", "/memory/collections/" + state.collection + "/points?" + query({ offset, limit: PAGE }));
    points.removeAttribute("aria-busy");
    if (!r.ok) { points.replaceChildren(el("li", { class: "error" }, r.message)); pager.hidden = true; return; }
    drawPoints(r.data.points, false);
    const prev = offset > 0;
    const next = r.data.next_offset !== null && r.data.next_offset !== undefined;
    pager.hidden = !prev && !next;
    pager.replaceChildren(
      el("button", { type: "button", disabled: !prev, onclick: () => ctx.go("memory", { ...state, offset: Math.max(0, offset - PAGE) || "" }) }, "‹ Previous"),
      el("span", { class: "muted" }, r.data.points.length ? `Memories ${offset + 1}–${offset + r.data.points.length}` : ""),
      el("button", { type: "button", disabled: !next, onclick: () => ctx.go("memory", { ...state, offset: r.data.next_offset }) }, "Next ›"));
  }

  async function search() {
    pager.hidden = true;
    points.setAttribute("aria-busy", "true");
    const body = { text: state.q, k: 50, collection: state.collection };
    if (partition()) body.partition = partition();
    const r = await api("POST", "/memory/recall", body);
    points.removeAttribute("aria-busy");
    if (!r.ok) { points.replaceChildren(el("li", { class: "error" }, r.message)); return; }
    drawPoints(r.data.vectors.collections[state.collection] || [], true);
  }

  function drawPoints(list, scored) {
    if (!list.length) {
      points.replaceChildren(el("li", { class: "muted empty" }, scored ? "Nothing recalled for “" + state.q + "”." : "No memories here."));
      return;
    }
    points.replaceChildren(...list.map((p) => el("li", { class: "point", "data-point": p.id },
      el("p", { class: "content" }, p.page_content),
      el("div", { class: "meta" },
        scored && typeof p.score === "number" ? el("span", { class: "score badge", title: "Similarity to the search" }, "score " + p.score.toFixed(3)) : null,
        p.metadata && p.metadata.when ? el("span", { class: "muted" }, new Date(p.metadata.when * 1000).toLocaleString()) : null,
        copyable(p.id, "the memory's id"),
        el("details", {}, el("summary", {}, "Metadata"), el("pre", {}, JSON.stringify(p.metadata || {}, null, 2))),
        mayDelete && state.collection !== "procedural" ? el("button", { type: "button", class: "danger small", "aria-label": "Delete memory " + p.page_content.slice(0, 40), onclick: () => remove(p) }, "Delete") : null))));
  }

  async function remove(p) {
    if (!(await confirm({ title: "Delete this memory?", text: "“" + p.page_content.slice(0, 200) + "” goes for good.", action: "Delete memory" }))) return;
    const r = await api("DELETE", "/memory/collections/" + state.collection + "/points/" + encodeURIComponent(p.id) + "?" + query());
    if (!r.ok) { notify("error", "Could not delete the memory: " + r.message); return; }
    notify("ok", "Memory deleted.");
    load();
  }

  // exportAll pages through the collection and downloads it.
  async function exportAll(button) {
    await busy(button, "Exporting…", async () => {
      const all = [];
      let offset = 0;
      while (offset !== null && offset !== undefined) {
        const r = await api("GET", "/memory/collections/" + state.collection + "/points?" + query({ offset, limit: 1000 }));
        if (!r.ok) { notify("error", "The export stopped: " + r.message); return; }
        all.push(...r.data.points.map(({ vector, ...rest }) => rest));
        offset = r.data.next_offset;
      }
      const name = state.collection === "episodic" ? target.name : state.collection === "declarative" ? state.space || "shared" : "procedural";
      download("grin-memory-" + state.collection + "-" + name + ".json", JSON.stringify({ collection: state.collection, partition: partition(), points: all }, null, 2));
      notify("ok", "Exported " + all.length + " memories.");
    });
  }

  async function loadHistory() {
    const q = target.id !== ctx.me.sub ? "?user_id=" + encodeURIComponent(target.id) : "";
    const h = await api("GET", "/memory/conversation_history" + q);
    document.getElementById("history-title").textContent = "Conversation history of " + target.name;
    if (!h.ok) { history.replaceChildren(el("li", { class: "error" }, h.message)); return; }
    history.replaceChildren(...(h.data.history.length ? h.data.history.map((t) => el("li", { class: t.who === "AI" ? "ai" : "human" },
      el("b", {}, t.who === "AI" ? "AI" : target.name), ": ", t.text)) : [el("li", { class: "muted" }, "No conversation.")]));
  }

  async function forgetHistory() {
    if (!(await confirm({ title: "Delete the conversation of " + target.name + "?", text: "Every turn goes for good.", action: "Delete conversation" }))) return;
    const q = target.id !== ctx.me.sub ? "?user_id=" + encodeURIComponent(target.id) : "";
    const r = await api("DELETE", "/memory/conversation_history" + q);
    if (!r.ok) { notify("error", "Could not delete the conversation: " + r.message); return; }
    notify("ok", "Conversation of " + target.name + " deleted.");
    loadHistory();
  }

  const handle = { update(p) { state = { ...p }; load(); } };
  handle.update(params);
  return handle;
}
