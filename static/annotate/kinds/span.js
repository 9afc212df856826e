/* Span: select passages of the response and label them; offsets are code points of the raw
 * text, which is shown only through textContent. Selection by keyboard (arrows, Shift, Ctrl for
 * words snapped to word boundaries), by mouse, or on a touch screen (touch and hold, drag the
 * handles, tap a label). (Interface: see kinds/pairwise.js.) */

import { el, kbd } from "../core/dom.js";
import { digit } from "../core/keyboard.js";
import { ratingRow, RATING_MAX } from "../core/widgets.js";

const WORD = /[\p{L}\p{N}_]/u;
// A touch screen as the main pointer: selection is native (handles), labels are tapped.
const touch = () => window.matchMedia("(pointer: coarse)").matches;

export function create(ctx) {
  const labels = ctx.config.span_labels;
  const ui = {};
  let a = null;
  let cps = [];          // the response as an array of code points
  let sel = null;        // {anchor, focus} in code points
  let caret = 0;
  let mouseDown = false;

  // Touch selection: the OS draws the handles; re-rendering would drop them, so the selection
  // is only recorded here and applied when a label is tapped.
  document.addEventListener("selectionchange", () => {
    if (mouseDown || !ui.text || !ui.text.isConnected) return;
    const s = window.getSelection();
    if (!s || !s.rangeCount || s.isCollapsed) return;
    if (!ui.text.contains(s.anchorNode) || !ui.text.contains(s.focusNode)) return;
    const from = offsetOf(s.anchorNode, s.anchorOffset);
    const to = offsetOf(s.focusNode, s.focusOffset);
    if (from === null || to === null || from === to) return;
    sel = { anchor: from, focus: to };
    caret = to;
  });

  function initial(task, draft) {
    cps = Array.from(task.item.responses[0].text);
    sel = null;
    caret = 0;
    a = { spans: [], overall: null };
    if (draft) {
      a.overall = draft.overall || null;
      a.spans = (draft.spans || []).filter((s) =>
        s && s.start >= 0 && s.end <= cps.length && s.start < s.end && labels.includes(s.label));
    }
  }

  const labelKey = (i) => (i === 9 ? "0" : String(i + 1));
  const labelIndex = (label) => labels.indexOf(label);

  function build() {
    ui.palette = el("div", { class: "palette", role: "toolbar", "aria-label": "Labels" });
    labels.forEach((label, i) => {
      ui.palette.appendChild(el("button", {
        type: "button", class: "label-btn lab-" + i, "data-testid": "span-label-" + (i + 1),
        onclick: () => applyLabel(i),
      }, kbd(labelKey(i)), " " + label));
    });
    ui.text = el("div", {
      class: "span-text", tabindex: "0", role: "textbox", "aria-readonly": "true", "aria-multiline": "true",
      "aria-label": "Response text: select a passage, then a label", "data-testid": "span-text",
    });
    ui.text.addEventListener("mousedown", () => { mouseDown = true; });
    ui.text.addEventListener("mouseup", () => { mouseDown = false; onMouseUp(); });
    // Re-rendering under a pressed mouse button would cut the selection being made.
    ui.text.addEventListener("focus", () => { if (!mouseDown) render(); });
    ui.text.addEventListener("blur", () => { if (!mouseDown) render(); });
    ui.list = el("ol", { class: "span-list", "data-testid": "span-list" });
    ui.empty = el("p", { class: "muted small", "data-testid": "span-empty", text: touch()
      ? "No spans yet. Touch and hold a word in the response, drag the handles over the passage, then tap a label."
      : "No spans yet. Select text in the response and press a label's key." });
    ui.rating = ratingRow("Overall", a.overall, (v) => { a.overall = v; ctx.changed(); }, "overall");
    ui.rating.group.tabIndex = -1;  // `o` focuses it, then 1-7 rate
    ui.rating.row.querySelector(".field-label").append(" ", kbd("o"));
    return el("div", { class: "kind-body" },
      el("section", { class: "card response" },
        el("div", { class: "span-head" }, el("h2", { class: "label", text: "Response" }), ui.palette),
        ui.text),
      el("section", { class: "card answer" },
        el("h2", { class: "label", text: "Labelled spans" }), ui.empty, ui.list, ui.rating.row));
  }

  function range() {
    if (!sel || sel.anchor === sel.focus) return null;
    return { start: Math.min(sel.anchor, sel.focus), end: Math.max(sel.anchor, sel.focus) };
  }

  function render() {
    const spans = a.spans;
    const r = range();
    const cuts = new Set([0, cps.length]);
    for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
    if (r) { cuts.add(r.start); cuts.add(r.end); }
    const showCaret = document.activeElement === ui.text && !r;
    if (showCaret) cuts.add(caret);
    const points = [...cuts].sort((x, y) => x - y);
    const frag = document.createDocumentFragment();
    for (let i = 0; i < points.length; i++) {
      const from = points[i];
      if (showCaret && from === caret) frag.appendChild(el("span", { class: "caret", "aria-hidden": "true" }));
      if (i === points.length - 1) break;
      const to = points[i + 1];
      const covering = spans.filter((s) => s.start <= from && s.end >= to);
      let cls = "seg";
      let title = null;
      if (covering.length) {
        const inner = covering.reduce((x, y) => (y.end - y.start < x.end - x.start ? y : x));
        cls += " hl lab-" + labelIndex(inner.label);
        if (covering.length > 1) cls += " overlap";
        title = covering.map((s) => s.label).join(", ");
      }
      if (r && from >= r.start && to <= r.end) cls += " sel";
      frag.appendChild(el("span", { class: cls, "data-s": String(from), title, text: cps.slice(from, to).join("") }));
    }
    ui.text.replaceChildren(frag);
  }

  function renderList() {
    const spans = a.spans;
    ui.empty.hidden = spans.length > 0;
    const frag = document.createDocumentFragment();
    spans.forEach((s, idx) => {
      const labelSel = el("select", { class: "span-label-select", "aria-label": "Label", onchange: () => { s.label = labelSel.value; refresh(); } });
      labels.forEach((l, i) => {
        const o = el("option", { value: l, text: labelKey(i) + " · " + l });
        if (l === s.label) o.selected = true;
        labelSel.appendChild(o);
      });
      let excerpt = cps.slice(s.start, s.end).join("");
      if (excerpt.length > 120) excerpt = Array.from(excerpt).slice(0, 117).join("") + "…";
      const comment = el("input", {
        type: "text", class: "span-comment", placeholder: "Comment (optional)", maxlength: "2000",
        "aria-label": "Comment on this span", "data-testid": "span-comment",
        oninput: () => { s.comment = comment.value; ctx.changed(); },
      });
      comment.value = s.comment || "";
      const lab = labelIndex(s.label);
      frag.appendChild(el("li", { class: "span-row lab-" + lab, "data-testid": "span-row" },
        el("span", { class: "chip lab-" + lab }),
        labelSel,
        el("q", { class: "excerpt", text: excerpt }),
        comment,
        el("button", { type: "button", class: "btn btn-ghost btn-sm", "aria-label": "Delete span", "data-testid": "span-delete", onclick: () => {
          a.spans.splice(idx, 1); refresh(); ui.text.focus();
        } }, "✕")));
    });
    ui.list.replaceChildren(frag);
  }

  function refresh() {
    a.spans.sort((x, y) => x.start - y.start || x.end - y.end);
    render();
    renderList();
    ctx.changed();
  }

  function sync() { render(); renderList(); }

  // The innermost span at pos (or ending at it).
  function spanAt(pos) {
    let hits = a.spans.filter((s) => s.start <= pos && pos < s.end);
    if (!hits.length) hits = a.spans.filter((s) => s.start < pos && pos <= s.end);
    return hits.length ? hits.reduce((x, y) => (y.end - y.start < x.end - x.start ? y : x)) : null;
  }

  function applyLabel(i) {
    const label = labels[i];
    if (label === undefined) return;
    const r = range();
    if (r) {
      const same = a.spans.find((s) => s.start === r.start && s.end === r.end);
      if (same) same.label = label;
      else a.spans.push({ start: r.start, end: r.end, label });
      caret = r.end;
      sel = null;
      const native = window.getSelection();
      if (native) native.removeAllRanges();
      refresh();
      ui.text.focus({ preventScroll: true });
      return;
    }
    const at = spanAt(caret);
    if (at) { at.label = label; refresh(); return; }
    ctx.need(touch()
      ? "Select some text first: touch and hold a word, then drag the handles."
      : "Select some text first: drag with the mouse, or Shift+arrows in the response.");
  }

  // A DOM position inside the text box, as a code point offset into the response.
  function offsetOf(node, off) {
    const elNode = node.nodeType === 3 ? node.parentNode : node;
    if (elNode === ui.text) {
      let child = ui.text.childNodes[off];
      while (child && !(child.classList && child.classList.contains("seg"))) child = child.nextSibling;
      return child ? Number(child.getAttribute("data-s")) : cps.length;
    }
    const seg = elNode.closest ? elNode.closest(".seg") : null;
    if (!seg || !ui.text.contains(seg)) return null;
    const base = Number(seg.getAttribute("data-s"));
    if (node.nodeType === 3) return base + Array.from(node.data.slice(0, off)).length;
    return base + (off > 0 ? Array.from(seg.textContent).length : 0);
  }

  function onMouseUp() {
    const s = window.getSelection();
    if (!s || !s.rangeCount) return;
    const from = offsetOf(s.anchorNode, s.anchorOffset);
    const to = offsetOf(s.focusNode, s.focusOffset);
    if (from === null || to === null) return;
    if (from !== to) {
      sel = { anchor: from, focus: to };
      caret = to;
    } else {
      sel = null;
      caret = from;
    }
    s.removeAllRanges();
    ui.text.focus({ preventScroll: true });
    render();
  }

  function wordStep(pos, dir) {
    const isW = (i) => WORD.test(cps[i] || "");
    if (dir > 0) {
      while (pos < cps.length && !isW(pos)) pos++;
      while (pos < cps.length && isW(pos)) pos++;
    } else {
      while (pos > 0 && !isW(pos - 1)) pos--;
      while (pos > 0 && isW(pos - 1)) pos--;
    }
    return pos;
  }

  // Move anchor towards `to` past any non-word characters (never beyond `to`).
  function snapToWord(anchor, to) {
    const isW = (i) => WORD.test(cps[i] || "");
    if (to > anchor) while (anchor < to && !isW(anchor)) anchor++;
    else while (anchor > to && !isW(anchor - 1)) anchor--;
    return anchor;
  }

  function key(e) {
    const inText = document.activeElement === ui.text;
    if (document.activeElement === ui.rating.group) {
      // The overall rating has the focus (`o`): digits rate, Esc or t go back to the text.
      const n = digit(e);
      if (n !== null && n >= 1 && n <= RATING_MAX) {
        ui.rating.set(a.overall === n ? null : n);
        ui.text.focus({ preventScroll: true });
        return true;
      }
      if (e.key === "Escape" || e.key === "t") { ui.text.focus({ preventScroll: true }); return true; }
    }
    if (e.key === "o") { ui.rating.group.focus(); return true; }
    if (/^[0-9]$/.test(e.key) && !e.altKey) {
      const i = e.key === "0" ? 9 : Number(e.key) - 1;
      if (i < labels.length) { applyLabel(i); return true; }
      return false;
    }
    if (e.key === "t") { ui.text.focus(); return true; }
    if (!inText) return false;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") {
      const dir = e.key === "ArrowLeft" || e.key === "Home" ? -1 : 1;
      const from = sel && e.shiftKey ? sel.focus : caret;
      let to;
      if (e.key === "Home") to = 0;
      else if (e.key === "End") to = cps.length;
      else if (e.ctrlKey || e.altKey || e.metaKey) to = wordStep(from, dir);
      else to = Math.max(0, Math.min(cps.length, from + dir));
      if (e.shiftKey) {
        let anchor = sel ? sel.anchor : caret;
        // A new selection by words starts on a word, not on the space or punctuation before it.
        if (!sel && (e.ctrlKey || e.altKey || e.metaKey)) anchor = snapToWord(anchor, to);
        sel = { anchor, focus: to };
      } else sel = null;
      caret = to;
      render();
      return true;
    }
    if (e.key === "Escape" && sel) { sel = null; render(); return true; }
    if (e.key === "Delete" || e.key === "Backspace") {
      const at = spanAt(caret);
      if (at) { a.spans.splice(a.spans.indexOf(at), 1); refresh(); }
      return true;
    }
    if (e.key === "c") {
      const hit = spanAt(caret);
      if (hit) {
        const input = ui.list.querySelectorAll(".span-comment")[a.spans.indexOf(hit)];
        if (input) input.focus();
      }
      return true;
    }
    return false;
  }

  function payload() {
    const p = {
      spans: a.spans.map((s) => {
        const o = { start: s.start, end: s.end, label: s.label };
        if (s.comment && s.comment.trim()) o.comment = s.comment.trim();
        return o;
      }),
    };
    if (a.overall) p.overall = a.overall;
    return p;
  }

  function hint() {
    const n = a.spans.length;
    if (n) return n + (n === 1 ? " span" : " spans") + " · Enter submits";
    if (touch()) return "Touch and hold a word, drag the handles over the passage, then tap a label.";
    return "Mark problems, or press Enter if there are none.";
  }

  const toText = () => ui.text.focus({ preventScroll: true });

  return {
    initial, build, sync, key, payload, hint,
    answer: () => a,
    focus: toText,
    home: toText,  // where Esc in a comment or label field returns, so the arrows work again
  };
}
