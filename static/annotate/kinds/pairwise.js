/* Pairwise: A or B (or a tie), an optional strength, rationale and per-aspect choices.
 *
 * Every kind module exports create(ctx) -> renderer, where ctx is
 *   { config: {allow_tie, aspects, span_labels}, changed(), need(msg) -> null, home: Element }
 * and the renderer has initial(task, draft), answer(), build(task) -> Node, sync(),
 * key(event) -> handled?, payload() -> object or null, hint() -> string, focus(), and
 * optionally home() (where Esc in a text field goes back to; ctx.home otherwise).
 *
 * Keys: 1 / 2 / 0 choose, q w e strength, r rationale; with aspects, `a` steps through them
 * and 1 / 2 / 0 answer the focused one (then the next), Esc leaves them. */

import { el, kbd, sanitizedMarkdown } from "../core/dom.js";
import { digit } from "../core/keyboard.js";
import { segmented, setSegmented } from "../core/widgets.js";

const STRENGTHS = [
  { value: 1, label: "Slightly", key: "q" },
  { value: 2, label: "Clearly", key: "w" },
  { value: 3, label: "Much", key: "e" },
];

export function create(ctx) {
  const { config } = ctx;
  const ui = {};
  let a = null;

  function initial(task, draft) {
    a = { choice: null, strength: null, rationale: "", aspects: {} };
    if (draft) {
      a.choice = draft.choice || null;
      a.strength = draft.strength || null;
      a.rationale = draft.rationale || "";
      a.aspects = draft.aspects || {};
    }
  }

  function choose(side) {
    if (side === "tie" && !config.allow_tie) return;
    a.choice = side;
    sync();
    ctx.changed();
  }

  function setStrength(v) {
    a.strength = a.strength === v ? null : v;
    sync();
    ctx.changed();
  }

  function build(task) {
    const r = task.item.responses;
    ui.cards = [0, 1].map((i) => {
      const letter = i ? "B" : "A";
      return el("article", { class: "card response", "data-side": letter.toLowerCase() },
        el("h2", { class: "label" }, "Response " + letter),
        sanitizedMarkdown(r[i].html, "md response-body"));
    });
    const grid = el("div", { class: "pair-grid" }, ui.cards[0], ui.cards[1]);
    ui.choiceA = el("button", { type: "button", class: "choice", "data-testid": "choice-a", onclick: () => choose("a") }, kbd("1"), " A is better");
    ui.choiceTie = config.allow_tie
      ? el("button", { type: "button", class: "choice", "data-testid": "choice-tie", onclick: () => choose("tie") }, kbd("0"), " Tie")
      : null;
    ui.choiceB = el("button", { type: "button", class: "choice", "data-testid": "choice-b", onclick: () => choose("b") }, kbd("2"), " B is better");
    ui.strength = segmented("Strength",
      STRENGTHS.map((s) => ({ value: s.value, label: el("span", null, kbd(s.key), " " + s.label) })),
      a.strength, setStrength, "strength");
    ui.strengthRow = el("div", { class: "field-row" },
      el("span", { class: "field-label", text: "How much better?" }), ui.strength,
      el("span", { class: "muted small", text: "optional" }));
    const panel = el("section", { class: "card answer" },
      el("div", { class: "choices", role: "group", "aria-label": "Which response is better?" }, ui.choiceA, ui.choiceTie, ui.choiceB),
      ui.strengthRow);
    ui.aspectGroups = [];
    if (config.aspects.length) {
      const table = el("div", { class: "aspects" },
        el("span", { class: "field-label" }, "Per aspect (optional) ", kbd("a")));
      for (const name of config.aspects) {
        const opts = [{ value: "a", label: "A" }];
        if (config.allow_tie) opts.push({ value: "tie", label: "Tie" });
        opts.push({ value: "b", label: "B" });
        const group = segmented(name, opts, a.aspects[name] || null, (v) => setAspect(name, a.aspects[name] === v ? null : v),
          "aspect-" + name.replace(/[^A-Za-z0-9_-]/g, "_"));
        group.tabIndex = -1;  // focused by `a`: then 1 / 2 / 0 answer this aspect
        group.dataset.aspect = name;
        ui.aspectGroups.push(group);
        table.appendChild(el("div", { class: "aspect-row" }, el("span", { class: "aspect-name", text: name }), group));
      }
      panel.appendChild(table);
    }
    ui.rationale = el("textarea", {
      rows: "2", class: "rationale", placeholder: "Why? (optional, r)", "aria-label": "Rationale", "data-testid": "rationale",
      oninput: () => { a.rationale = ui.rationale.value; ctx.changed(); },
    });
    ui.rationale.value = a.rationale;
    panel.appendChild(ui.rationale);
    return el("div", { class: "kind-body" }, grid, panel);
  }

  function setAspect(name, v) {
    if (v) a.aspects[name] = v; else delete a.aspects[name];
    setSegmented(ui.aspectGroups[config.aspects.indexOf(name)], v);
    ctx.changed();
  }

  // The index of the aspect group that has the focus, or -1.
  const focusedAspect = () => ui.aspectGroups.indexOf(document.activeElement);

  function focusAspect(i) {
    if (i >= 0 && i < ui.aspectGroups.length) ui.aspectGroups[i].focus();
    else ctx.home.focus({ preventScroll: true });
  }

  function aspectKey(e, i) {
    const n = digit(e);
    const side = n === 1 ? "a" : n === 2 ? "b" : n === 0 && config.allow_tie ? "tie" : null;
    const name = config.aspects[i];
    if (side) {
      setAspect(name, a.aspects[name] === side ? null : side);
      focusAspect(i + 1);  // on to the next aspect; after the last, back to the task
      return true;
    }
    if (e.key === "ArrowDown" || e.key === "a") { focusAspect(Math.min(i + 1, ui.aspectGroups.length - 1)); return true; }
    if (e.key === "ArrowUp" || e.key === "A") { focusAspect(Math.max(i - 1, 0)); return true; }
    if (e.key === "Escape") { focusAspect(-1); return true; }
    return false;
  }

  function sync() {
    const c = a.choice;
    ui.choiceA.setAttribute("aria-pressed", String(c === "a"));
    ui.choiceB.setAttribute("aria-pressed", String(c === "b"));
    if (ui.choiceTie) ui.choiceTie.setAttribute("aria-pressed", String(c === "tie"));
    ui.cards[0].classList.toggle("picked", c === "a");
    ui.cards[1].classList.toggle("picked", c === "b");
    ui.cards[0].classList.toggle("tied", c === "tie");
    ui.cards[1].classList.toggle("tied", c === "tie");
    setSegmented(ui.strength, a.strength);
    ui.strengthRow.classList.toggle("dim", !c || c === "tie");
  }

  function key(e) {
    const i = focusedAspect();
    if (i >= 0) return aspectKey(e, i);
    if (e.key === "a" && ui.aspectGroups.length) { focusAspect(0); return true; }
    if (e.key === "1") { choose("a"); return true; }
    if (e.key === "2") { choose("b"); return true; }
    if (e.key === "0" && config.allow_tie) { choose("tie"); return true; }
    const s = { q: 1, w: 2, e: 3 }[e.key];
    if (s) { setStrength(s); return true; }
    if (e.key === "r") { ui.rationale.focus(); return true; }
    return false;
  }

  function payload() {
    if (!a.choice) return ctx.need(config.allow_tie ? "Pick A, B or tie first (keys 1, 2, 0)." : "Pick A or B first (keys 1, 2).");
    const p = { choice: a.choice };
    if (a.strength && a.choice !== "tie") p.strength = a.strength;
    if (a.rationale && a.rationale.trim()) p.rationale = a.rationale.trim();
    const aspects = {};
    for (const n of config.aspects) if (a.aspects[n]) aspects[n] = a.aspects[n];
    if (Object.keys(aspects).length) p.aspects = aspects;
    return p;
  }

  function hint() {
    if (a.choice) return "Ready: press Enter to submit.";
    return config.allow_tie ? "Press 1, 2 or 0 to choose." : "Press 1 or 2 to choose.";
  }

  return {
    initial, build, sync, key, payload, hint,
    answer: () => a,
    focus: () => ctx.home.focus({ preventScroll: true }),
  };
}
