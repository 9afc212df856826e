/* Choice widgets: a segmented radio group and the 1-7 rating row built on it. */

import { el } from "./dom.js";

export function segmented(name, options, current, onPick, testid) {
  const group = el("div", { class: "seg-group", role: "radiogroup", "aria-label": name });
  for (const o of options) {
    group.appendChild(el("button", {
      type: "button",
      class: "seg-btn",
      role: "radio",
      "aria-checked": String(current === o.value),
      "data-value": String(o.value),
      "data-testid": testid ? testid + "-" + o.value : null,
      title: o.title || null,
      onclick: () => onPick(o.value),
    }, o.label));
  }
  return group;
}

export function setSegmented(group, value) {
  for (const b of group.children) {
    b.setAttribute("aria-checked", String(b.getAttribute("data-value") === String(value)));
  }
}

export const RATING_MAX = 7;

// A 1-7 rating; clicking the chosen value again clears it. onChange(value or null).
export function ratingRow(label, current, onChange, testid) {
  const opts = [];
  for (let i = 1; i <= RATING_MAX; i++) opts.push({ value: i, label: String(i) });
  let value = current;
  const group = segmented(label, opts, current, (v) => set(value === v ? null : v), testid);
  function set(v) {
    value = v;
    setSegmented(group, v);
    onChange(v);
  }
  const row = el("div", { class: "field-row" },
    el("span", { class: "field-label", text: label }),
    group,
    el("span", { class: "muted small", text: "1 = poor · 7 = excellent" }));
  return { row, group, set, get: () => value };
}
