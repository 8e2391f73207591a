// markdown renders the Markdown a model writes into DOM nodes: headings,
// paragraphs, lists, block quotes, fenced code, inline code, bold, italic
// and links (http, https and mailto only). It builds elements and text
// nodes, never HTML strings, so text that looks like HTML (<script>,
// <img onerror>) shows as the characters it is.

import { el } from "./ui.js";

export function markdown(src) {
  const out = document.createDocumentFragment();
  const lines = String(src || "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (/^\s*$/.test(line)) { i++; continue; }
    if ((m = line.match(/^\s*(```|~~~)\s*([\w+-]*)\s*$/))) {
      const fence = m[1];
      const code = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(fence); i++) code.push(lines[i]);
      i++;
      out.append(el("pre", {}, el("code", m[2] ? { "data-lang": m[2] } : {}, code.join("\n"))));
      continue;
    }
    if ((m = line.match(/^(#{1,6})\s+(.*)$/))) {
      // Headings inside a message sit below the page's own.
      out.append(el("h" + Math.min(6, m[1].length + 2), { class: "md-h" }, inline(m[2])));
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { out.append(el("hr")); i++; continue; }
    if (/^\s*>/.test(line)) {
      const quote = [];
      for (; i < lines.length && /^\s*>/.test(lines[i]); i++) quote.push(lines[i].replace(/^\s*>\s?/, ""));
      out.append(el("blockquote", {}, markdown(quote.join("\n"))));
      continue;
    }
    if ((m = line.match(/^\s*([-*+]|\d+[.)])\s+/))) {
      const ordered = /\d/.test(m[1]);
      const list = el(ordered ? "ol" : "ul");
      for (; i < lines.length; i++) {
        const item = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
        if (item) { list.append(el("li", {}, inline(item[2]))); continue; }
        if (/^\s{2,}\S/.test(lines[i]) && list.lastChild) { list.lastChild.append(" ", ...inline(lines[i].trim())); continue; }
        break;
      }
      out.append(list);
      continue;
    }
    const para = [];
    for (; i < lines.length && !/^\s*$/.test(lines[i]) && !/^(#{1,6}\s|\s*(```|~~~)|\s*>|\s*([-*+]|\d+[.)])\s+)/.test(lines[i]); i++) para.push(lines[i]);
    const p = el("p");
    para.forEach((l, n) => { if (n) p.append(el("br")); p.append(...inline(l.trim())); });
    out.append(p);
  }
  return out;
}

// inline renders code spans, links, bold and italic, as nodes.
function inline(text) {
  const nodes = [];
  const re = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|_([^_\s][^_]*)_/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) nodes.push(el("code", {}, m[2]));
    else if (m[3]) {
      const href = m[4];
      nodes.push(/^(https?:|mailto:)/i.test(href) ? el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, ...inline(m[3])) : document.createTextNode(m[0]));
    } else if (m[5] || m[6]) nodes.push(el("strong", {}, ...inline(m[5] || m[6])));
    else nodes.push(el("em", {}, ...inline(m[7] || m[8])));
    last = re.lastIndex;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
