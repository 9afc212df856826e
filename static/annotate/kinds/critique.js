/* Critique: a written critique, an optional 1-7 rating and an optional rewrite shown as a
 * word diff against the response. Keys outside the text fields: c critique, r rewrite,
 * 1-7 rating. (Interface: see kinds/pairwise.js.) */

import { wordDiff } from "../core/diff.js";
import { el, kbd, sanitizedMarkdown } from "../core/dom.js";
import { digit } from "../core/keyboard.js";
import { ratingRow, RATING_MAX } from "../core/widgets.js";

export function create(ctx) {
  const ui = {};
  let a = null;
  let original = "";
  let diffTimer = 0;

  function initial(task, draft) {
    original = task.item.responses[0].text;
    a = { critique: "", rewrite: original, rating: null };
    if (draft) {
      a.critique = draft.critique || "";
      a.rewrite = typeof draft.rewrite === "string" ? draft.rewrite : original;
      a.rating = draft.rating || null;
    }
  }

  function build(task) {
    ui.critique = el("textarea", {
      rows: "5", class: "critique", placeholder: "What is wrong or missing? What is good?",
      "aria-label": "Critique", "data-testid": "critique", required: true,
      oninput: () => { a.critique = ui.critique.value; ctx.changed(); },
    });
    ui.critique.value = a.critique;
    ui.rewrite = el("textarea", {
      rows: "8", class: "rewrite mono", "aria-label": "Rewrite of the response", "data-testid": "rewrite",
      oninput: () => {
        a.rewrite = ui.rewrite.value;
        ctx.changed();
        clearTimeout(diffTimer);
        diffTimer = setTimeout(renderDiff, 150);
      },
    });
    ui.rewrite.value = a.rewrite;
    ui.diff = el("div", { class: "diff", "data-testid": "rewrite-diff", "aria-live": "off" });
    ui.reset = el("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => {
      ui.rewrite.value = original; a.rewrite = original; renderDiff(); ctx.changed();
    } }, "Reset to the response");
    ui.rating = ratingRow("Rating", a.rating, (v) => { a.rating = v; ctx.changed(); }, "rating");
    ui.rating.row.querySelector(".field-label").append(" ", kbd("1"), "…", kbd(String(RATING_MAX)));
    return el("div", { class: "kind-body" },
      el("article", { class: "card response" }, el("h2", { class: "label", text: "Response" }), sanitizedMarkdown(task.item.responses[0].html, "md response-body")),
      el("section", { class: "card answer stack" },
        el("label", null, el("span", { class: "field-label" }, "Critique ", kbd("c")), ui.critique),
        ui.rating.row,
        el("div", { class: "rewrite-head" }, el("span", { class: "field-label" }, "Rewrite (optional) ", kbd("r")), ui.reset),
        el("div", { class: "rewrite-grid" }, ui.rewrite,
          el("div", { class: "diff-wrap" }, el("span", { class: "muted small", text: "Changes against the response" }), ui.diff))));
  }

  function renderDiff() {
    if (a.rewrite === original) {
      ui.diff.replaceChildren(el("span", { class: "muted", text: "No changes yet: edit the text to propose a better response." }));
      return;
    }
    const frag = document.createDocumentFragment();
    for (const [op, text] of wordDiff(original, a.rewrite)) {
      frag.appendChild(el(op === "=" ? "span" : op === "-" ? "del" : "ins", { text }));
    }
    ui.diff.replaceChildren(frag);
  }

  function key(e) {
    const n = digit(e);
    if (n !== null && n >= 1 && n <= RATING_MAX) { ui.rating.set(a.rating === n ? null : n); return true; }
    if (e.key === "c") { ui.critique.focus(); return true; }
    if (e.key === "r") { ui.rewrite.focus(); return true; }
    return false;
  }

  function payload() {
    if (!a.critique.trim()) { ui.critique.focus(); return ctx.need("Write a critique first."); }
    const p = { critique: a.critique.trim() };
    if (a.rewrite !== original && a.rewrite.trim()) p.rewrite = a.rewrite;
    if (a.rating) p.rating = a.rating;
    return p;
  }

  return {
    initial, build, key, payload,
    sync: renderDiff,
    answer: () => a,
    hint: () => "Ctrl+Enter submits.",
    focus: () => ui.critique.focus({ preventScroll: true }),
  };
}
