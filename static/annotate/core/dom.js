/* DOM helpers: elements built with textContent only, the one sanctioned HTML sink (Markdown
 * the server rendered and sanitized), and the page's toast and banners. */

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

// The only sink for HTML: Markdown the server rendered and passed through its allow-list.
export function sanitizedMarkdown(html, cls) {
  const div = el("div", { class: cls || "md" });
  div.innerHTML = html || "";
  return div;
}

export const kbd = (key) => el("kbd", { text: key });

let toastTimer = 0;
export function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
}

export function banner(id, msg) {
  const b = $(id);
  if (msg) { b.textContent = msg; b.hidden = false; } else { b.hidden = true; }
}
