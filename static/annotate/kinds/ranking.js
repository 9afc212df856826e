/* Ranking: order the responses best first, by keyboard or by dragging, then confirm the order
 * (`c` or the button): the shuffled order as shown is never submitted by a stray Enter, and
 * moving a response after confirming asks for confirmation again. (Interface: see
 * kinds/pairwise.js.) */

import { el, kbd, sanitizedMarkdown } from "../core/dom.js";

const LETTERS = "ABCDEFGHIJKLMNOP";

export function create(ctx) {
  const ui = {};
  let a = null;
  let dragging = null;

  function initial(task, draft) {
    const ids = task.item.responses.map((r) => r.id);
    let order = ids.slice();
    if (draft && Array.isArray(draft.order) && draft.order.length === ids.length &&
        draft.order.every((id) => ids.includes(id))) {
      order = draft.order.slice();
    }
    a = { order, touched: !!(draft && draft.touched), confirmed: !!(draft && draft.confirmed) };
  }

  function confirm() {
    a.confirmed = !a.confirmed;
    syncConfirm();
    ui.live.textContent = a.confirmed ? "Order confirmed: press Enter to submit." : "Confirmation withdrawn.";
    ctx.changed();
  }

  function syncConfirm() {
    ui.confirm.setAttribute("aria-pressed", String(a.confirmed));
    ui.confirm.classList.toggle("confirmed", a.confirmed);
  }

  function build(task) {
    ui.items = {};
    task.item.responses.forEach((r, i) => {
      const li = el("li", {
        class: "card rank-item", tabindex: "0", draggable: "true", "data-testid": "rank-item",
        "data-response-id": String(r.id), "aria-roledescription": "sortable response",
      },
        el("div", { class: "rank-side" },
          el("span", { class: "rank-n", "aria-hidden": "true" }),
          el("span", { class: "drag-handle", title: "Drag to reorder", "aria-hidden": "true", text: "⋮⋮" })),
        el("div", { class: "rank-content" },
          el("h2", { class: "label", text: "Response " + LETTERS[i] }),
          sanitizedMarkdown(r.html, "md response-body")));
      li.addEventListener("dragstart", onDragStart);
      li.addEventListener("dragend", onDragEnd);
      li.addEventListener("focus", () => { ui.focusId = r.id; });
      ui.items[r.id] = li;
    });
    ui.list = el("ol", { class: "rank-list", "aria-label": "Responses, best first" });
    ui.list.addEventListener("dragover", onDragOver);
    ui.list.addEventListener("drop", (e) => e.preventDefault());
    ui.live = el("p", { class: "sr-only", "aria-live": "assertive" });
    ui.focusId = a.order[0];
    ui.confirm = el("button", {
      type: "button", class: "choice confirm-order", "data-testid": "confirm-order", "aria-pressed": "false",
      onclick: confirm,
    }, kbd("c"), " This order is final");
    return el("div", { class: "kind-body" },
      el("p", { class: "muted instructions" }, "Order the responses from best (top) to worst. Drag them, or use ", kbd("Alt"), "+", kbd("↑"), kbd("↓"), " on the focused one. Then confirm the order with ", kbd("c"), "."),
      ui.list,
      el("div", { class: "card answer confirm-row" }, ui.confirm,
        el("span", { class: "muted small", text: "Moving a response afterwards asks you to confirm again." })),
      ui.live);
  }

  function sync() {
    syncConfirm();
    const frag = document.createDocumentFragment();
    a.order.forEach((id, i) => {
      const li = ui.items[id];
      li.querySelector(".rank-n").textContent = String(i + 1);
      li.setAttribute("aria-label", "Rank " + (i + 1));
      frag.appendChild(li);
    });
    ui.list.replaceChildren(frag);
  }

  function moved(id) {
    a.touched = true;
    a.confirmed = false;  // the order confirmed is not this one
    syncConfirm();
    ui.live.textContent = "Moved to rank " + (a.order.indexOf(id) + 1) + " of " + a.order.length + ".";
    ctx.changed();
  }

  function move(id, to) {
    const order = a.order;
    const from = order.indexOf(id);
    to = Math.max(0, Math.min(order.length - 1, to));
    if (from < 0 || from === to) return;
    order.splice(from, 1);
    order.splice(to, 0, id);
    sync();
    ui.items[id].focus();
    moved(id);
  }

  function onDragStart(e) {
    dragging = Number(e.currentTarget.getAttribute("data-response-id"));
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", String(dragging));
    e.currentTarget.classList.add("dragging");
  }

  function onDragOver(e) {
    if (dragging === null) return;
    e.preventDefault();
    const over = e.target.closest ? e.target.closest(".rank-item") : null;
    if (!over || Number(over.getAttribute("data-response-id")) === dragging) return;
    const box = over.getBoundingClientRect();
    const overIdx = a.order.indexOf(Number(over.getAttribute("data-response-id")));
    const from = a.order.indexOf(dragging);
    const after = e.clientY > box.top + box.height / 2;
    const to = after ? (overIdx > from ? overIdx : overIdx + 1) : (overIdx > from ? overIdx - 1 : overIdx);
    if (to !== from) {
      a.order.splice(from, 1);
      a.order.splice(to, 0, dragging);
      sync();
    }
  }

  function onDragEnd(e) {
    e.currentTarget.classList.remove("dragging");
    if (dragging !== null) {
      const id = dragging;
      dragging = null;
      moved(id);
    }
  }

  function focused() {
    const f = document.activeElement;
    return f && f.classList && f.classList.contains("rank-item") ? Number(f.getAttribute("data-response-id")) : null;
  }

  function key(e) {
    const order = a.order;
    const id = focused();
    const up = e.key === "ArrowUp" || e.key === "k" || e.key === "K";
    const down = e.key === "ArrowDown" || e.key === "j" || e.key === "J";
    if (up || down) {
      if (id === null) { ui.items[ui.focusId || order[0]].focus(); return true; }
      const idx = order.indexOf(id);
      if (e.altKey || e.shiftKey) move(id, idx + (up ? -1 : 1));
      else ui.items[order[Math.max(0, Math.min(order.length - 1, idx + (up ? -1 : 1)))]].focus();
      return true;
    }
    if (/^[1-9]$/.test(e.key) && id !== null && !e.altKey) { move(id, Number(e.key) - 1); return true; }
    if (e.key === "Home" && id !== null) { ui.items[order[0]].focus(); return true; }
    if (e.key === "End" && id !== null) { ui.items[order[order.length - 1]].focus(); return true; }
    if (e.key === "c" && !e.altKey) { confirm(); return true; }
    return false;
  }

  function payload() {
    if (!a.confirmed) {
      return ctx.need(a.touched
        ? "Confirm this order first: press c (or \u201cThis order is final\u201d), then Enter."
        : "Put the responses in order, then confirm it with c before submitting.");
    }
    return { order: a.order.slice() };
  }

  function hint() {
    if (a.confirmed) return "Order confirmed: press Enter to submit.";
    return a.touched ? "Press c to confirm this order, then Enter." : "Reorder, press c to confirm, then Enter.";
  }

  return {
    initial, build, sync, key,
    answer: () => a,
    payload, hint,
    focus: () => ui.items[a.order[0]].focus({ preventScroll: true }),
  };
}
