/* Tandem annotate workspace: one task at a time, keyboard first, never loses work.
 *
 * Talks to the JSON API with the session cookie and the X-CSRF-Token header. Model output
 * arrives as Markdown already sanitized by the server (nh3) and is the only thing ever given
 * to innerHTML; everything else is set with textContent. Drafts autosave (server and
 * localStorage); a submission goes to a localStorage outbox keyed by its client submission id
 * first, and leaves it only once the server has stored it, so a network failure loses nothing
 * and a retry never duplicates (the server dedupes by assignment and client submission id).
 */
(function () {
  "use strict";

  var boot = JSON.parse(document.getElementById("boot").textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var KIND = boot.kind;
  var OUTBOX_KEY = "tandem.outbox.v1." + boot.user_id;
  var DRAFT_PREFIX = "tandem.draft.v1." + boot.user_id + ".";
  var GUIDE_KEY = "tandem.guidelines.open";

  var $ = function (id) { return document.getElementById(id); };
  var taskEl = $("task");
  var actions = $("actions");

  var state = {
    task: null,
    answer: null,
    activeMs: 0,
    shownAt: 0,
    busy: false,
    waitingOnline: false,
    done: boot.done,
    remaining: boot.remaining,
    skew: 0,
    leaseTimer: 0,
    draftTimer: 0,
    retryTimer: 0,
    retryDelay: 1000,
    sinceRefresh: 0,
  };

  /* ---------- small helpers ---------- */

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        var v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "text") node.textContent = v;
        else if (k === "class") node.className = v;
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : v);
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  // The only sink for HTML: Markdown the server rendered and passed through its allow-list.
  function sanitizedMarkdown(html, cls) {
    var div = el("div", { class: cls || "md" });
    div.innerHTML = html || "";
    return div;
  }

  function kbd(key) { return el("kbd", { text: key }); }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
      return true;
    } catch (e) { return false; }
  }
  function load(key, fallback) {
    try {
      var raw = localStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) { return fallback; }
  }

  var toastTimer = 0;
  function toast(msg) {
    var t = $("toast");
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 3500);
  }
  function banner(id, msg) {
    var b = $(id);
    if (msg) { b.textContent = msg; b.hidden = false; } else { b.hidden = true; }
  }
  function saveState(msg) { $("save-state").textContent = msg; }

  function NetworkError() { this.name = "NetworkError"; }

  function api(method, url, body, opts) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      keepalive: !!(opts && opts.keepalive),
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(
      function (r) {
        if (r.status === 204) return { status: 204, data: null };
        return r.json().then(
          function (data) { return { status: r.status, data: data }; },
          function () { return { status: r.status, data: null }; }
        );
      },
      function () { throw new NetworkError(); }
    );
  }

  function detail(r) {
    return (r.data && r.data.detail) || "The server answered " + r.status + ".";
  }

  function sessionExpired() {
    banner("error-banner", "Your session has expired. Log in again; your work is kept on this device.");
    var b = $("error-banner");
    b.appendChild(document.createTextNode(" "));
    b.appendChild(el("a", { href: "/login?next=" + encodeURIComponent(location.pathname), text: "Log in" }));
  }

  /* ---------- time spent: only while the page is visible ---------- */

  function elapsed() {
    var running = state.shownAt && !document.hidden ? performance.now() - state.shownAt : 0;
    return Math.round(state.activeMs + running);
  }
  document.addEventListener("visibilitychange", function () {
    if (!state.task) return;
    if (document.hidden) {
      state.activeMs = elapsed();
      state.shownAt = 0;
      flushDraft(true);
    } else {
      state.shownAt = performance.now();
    }
  });
  window.addEventListener("pagehide", function () { if (state.task) flushDraft(true); });

  /* ---------- counters ---------- */

  function renderCounts() {
    $("done-n").textContent = String(state.done);
    $("left-n").textContent = String(Math.max(0, state.remaining));
  }

  function refreshCounts() {
    api("GET", "/api/v1/projects/" + boot.project_id + "/progress").then(function (r) {
      if (r.status === 200) {
        state.done = r.data.my_done;
        state.remaining = r.data.my_remaining;
        renderCounts();
      }
    }, function () {});
  }

  /* ---------- outbox: submissions that the server has not confirmed yet ---------- */

  function outbox() { return load(OUTBOX_KEY, []); }
  function outboxPut(entry) {
    var all = outbox().filter(function (e) { return e.client_submission_id !== entry.client_submission_id; });
    all.push(entry);
    return store(OUTBOX_KEY, all);
  }
  function outboxRemove(csid) {
    store(OUTBOX_KEY, outbox().filter(function (e) { return e.client_submission_id !== csid; }));
  }

  function sendEntry(entry) {
    return api("POST", "/api/v1/assignments/" + entry.assignment_id + "/submit", {
      payload: entry.payload,
      time_spent_ms: entry.time_spent_ms,
      client_submission_id: entry.client_submission_id,
    });
  }

  // Result of sending one entry: "sent", "rejected" (a 4xx: dropping it is final), or "later".
  function deliver(entry) {
    return sendEntry(entry).then(function (r) {
      if (r.status === 200 || r.status === 201) {
        outboxRemove(entry.client_submission_id);
        return { outcome: "sent", response: r };
      }
      if (r.status === 401) return { outcome: "later", response: r, auth: true };
      if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
        outboxRemove(entry.client_submission_id);
        return { outcome: "rejected", response: r };
      }
      return { outcome: "later", response: r };
    }, function () { return { outcome: "later", network: true }; });
  }

  var flushing = null;
  function flushOutbox() {
    if (flushing) return flushing;
    flushing = (async function () {
      var result = { sent: 0, pending: 0, rejected: [] };
      var entries = outbox();
      for (var i = 0; i < entries.length; i++) {
        var res = await deliver(entries[i]);
        if (res.outcome === "sent") {
          result.sent++;
          var here = entries[i].project_id === boot.project_id;
          if (res.response.status === 201 && here) { state.done++; state.remaining--; }
        } else if (res.outcome === "rejected") {
          result.rejected.push(detail(res.response));
        } else {
          result.pending = outbox().length;
          if (res.auth) sessionExpired();
          break;
        }
      }
      if (!result.pending) result.pending = outbox().length;
      return result;
    })().finally(function () { flushing = null; });
    return flushing;
  }

  function scheduleRetry() {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(retryNow, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 30000);
  }

  async function retryNow() {
    clearTimeout(state.retryTimer);
    var res = await flushOutbox();
    renderCounts();
    if (res.rejected.length) banner("error-banner", "A saved answer was refused by the server: " + res.rejected[0]);
    if (res.pending) {
      showOffline(res.pending);
      scheduleRetry();
      return;
    }
    state.retryDelay = 1000;
    banner("offline-banner", null);
    if (res.sent) toast(res.sent === 1 ? "Your saved answer was sent." : res.sent + " saved answers were sent.");
    if (state.waitingOnline) {
      state.waitingOnline = false;
      state.busy = false;
      loadNext();
    }
  }

  function showOffline(pending) {
    banner(
      "offline-banner",
      "You appear to be offline. " + pending + (pending === 1 ? " answer is" : " answers are") +
        " saved on this device and will be sent as soon as the connection is back."
    );
  }

  window.addEventListener("online", function () { state.retryDelay = 1000; retryNow(); });
  window.addEventListener("offline", function () {
    banner("offline-banner", "You appear to be offline. Keep working: your answers are kept on this device.");
  });

  /* ---------- drafts: localStorage at once, the server a moment later ---------- */

  function draftKey() { return DRAFT_PREFIX + state.task.assignment_id; }

  function currentDraft() {
    return { v: 1, kind: KIND, t: Date.now(), time_spent_ms: elapsed(), answer: state.answer };
  }

  function changed() {
    if (!state.task) return;
    store(draftKey(), currentDraft());
    saveState("Unsaved changes");
    clearTimeout(state.draftTimer);
    state.draftTimer = setTimeout(function () { flushDraft(false); }, 700);
    updateHint();
  }

  function flushDraft(keepalive) {
    clearTimeout(state.draftTimer);
    if (!state.task || !state.dirty) return;
    var task = state.task;
    var draft = currentDraft();
    store(draftKey(), draft);
    state.dirty = false;
    api("PUT", "/api/v1/assignments/" + task.assignment_id + "/draft", { draft: draft }, { keepalive: keepalive })
      .then(function (r) {
        if (state.task !== task) return;
        if (r.status === 200) saveState("Draft saved");
        else if (r.status === 401) sessionExpired();
        else saveState("Draft kept on this device");
      }, function () {
        if (state.task === task) { state.dirty = true; saveState("Draft kept on this device"); }
      });
  }

  function markDirty() { state.dirty = true; changed(); }

  function restoreDraft(task) {
    var server = task.draft && task.draft.v === 1 && task.draft.kind === KIND ? task.draft : null;
    var local = load(DRAFT_PREFIX + task.assignment_id, null);
    if (local && (local.v !== 1 || local.kind !== KIND)) local = null;
    if (server && local) return server.t >= local.t ? server : local;
    return server || local;
  }

  function forgetDraft(aid) { store(DRAFT_PREFIX + aid, null); }

  /* ---------- loading tasks ---------- */

  async function loadNext() {
    state.busy = true;
    taskEl.setAttribute("aria-busy", "true");
    var r;
    try {
      r = await api("POST", "/projects/" + boot.project_id + "/annotate/next");
    } catch (e) {
      state.busy = false;
      state.waitingOnline = true;
      showOffline(outbox().length);
      scheduleRetry();
      return;
    }
    if (r.status === 401) { state.busy = false; sessionExpired(); return; }
    if (r.status !== 200) {
      state.busy = false;
      banner("error-banner", detail(r));
      return;
    }
    banner("error-banner", null);
    if (r.data.server_time) state.skew = Date.parse(r.data.server_time) - Date.now();
    if (!r.data.task) { showDone(); return; }
    renderTask(r.data.task);
  }

  function showDone() {
    state.task = null;
    state.busy = false;
    clearTimeout(state.leaseTimer);
    taskEl.hidden = true;
    actions.hidden = true;
    banner("lease-banner", null);
    $("done-panel").hidden = false;
    state.remaining = 0;
    renderCounts();
    refreshCounts();
    saveState("");
    document.dispatchEvent(new CustomEvent("tandem:task-rendered", { detail: { assignmentId: null } }));
  }

  function renderTask(task) {
    state.task = task;
    state.dirty = false;
    var draft = restoreDraft(task);
    state.answer = RENDERERS[KIND].initial(task, draft ? draft.answer : null);
    state.activeMs = draft ? draft.time_spent_ms || 0 : 0;
    state.shownAt = performance.now();
    $("done-panel").hidden = true;
    taskEl.hidden = false;
    actions.hidden = false;

    var frag = document.createDocumentFragment();
    frag.appendChild(
      el("article", { class: "card prompt" },
        el("h2", { class: "label", text: "Prompt" }),
        sanitizedMarkdown(task.item.prompt_html, "md prompt-body")
      )
    );
    frag.appendChild(RENDERERS[KIND].build(task));
    taskEl.replaceChildren(frag);
    taskEl.dataset.assignmentId = String(task.assignment_id);
    taskEl.setAttribute("aria-busy", "false");
    RENDERERS[KIND].sync();
    updateHint();
    saveState(draft ? "Draft restored" : "");
    armLease(task);
    state.busy = false;
    RENDERERS[KIND].focus();
    window.scrollTo(0, 0);
    if (++state.sinceRefresh >= 20) { state.sinceRefresh = 0; refreshCounts(); }
    document.dispatchEvent(new CustomEvent("tandem:task-rendered", { detail: { assignmentId: task.assignment_id } }));
  }

  function armLease(task) {
    clearTimeout(state.leaseTimer);
    banner("lease-banner", null);
    $("lease-banner").hidden = true;
    var left = Date.parse(task.expires_at) - (Date.now() + state.skew);
    var show = function () { if (state.task === task) $("lease-banner").hidden = false; };
    if (left <= 0) show();
    else state.leaseTimer = setTimeout(show, Math.min(left, 2147483000));
  }

  /* ---------- submit and skip ---------- */

  async function submit() {
    if (state.busy || !state.task) return;
    var payload = RENDERERS[KIND].payload();
    if (!payload) return;
    state.busy = true;
    clearTimeout(state.draftTimer);
    var task = state.task;
    var entry = {
      client_submission_id: uuid(),
      assignment_id: task.assignment_id,
      project_id: boot.project_id,
      payload: payload,
      time_spent_ms: elapsed(),
      queued_at: Date.now(),
    };
    if (!outboxPut(entry)) {
      // Storage full or disabled: still send, just without the safety net.
      saveState("");
    }
    var res = await deliver(entry);
    if (res.outcome === "later") {
      if (res.auth) { state.busy = false; sessionExpired(); return; }
      state.waitingOnline = true;
      forgetDraft(task.assignment_id);
      if (res.network) showOffline(outbox().length);
      else banner("offline-banner", "The server could not store your answer just now (" + detail(res.response) + "). It is kept on this device and will be sent again shortly.");
      actions.hidden = true;
      taskEl.setAttribute("aria-busy", "true");
      scheduleRetry();
      return;
    }
    if (res.outcome === "rejected") {
      state.busy = false;
      var r = res.response;
      if (r.status === 409) {
        toast(detail(r));
        forgetDraft(task.assignment_id);
        loadNext();
        return;
      }
      banner("error-banner", detail(r));
      return;
    }
    forgetDraft(task.assignment_id);
    banner("error-banner", null);
    if (res.response.status === 201) { state.done++; state.remaining--; }
    if (res.response.data && res.response.data.over_quota) toast("Submitted after the lease ran out: kept as an extra answer.");
    renderCounts();
    loadNext();
  }

  async function skip(reason) {
    if (state.busy || !state.task) return;
    state.busy = true;
    var task = state.task;
    var r;
    try {
      r = await api("POST", "/api/v1/assignments/" + task.assignment_id + "/skip", { reason: reason });
    } catch (e) {
      state.busy = false;
      toast("You're offline: skipping needs the connection. Try again in a moment.");
      return;
    }
    state.busy = false;
    if (r.status === 200) {
      forgetDraft(task.assignment_id);
      state.remaining--;
      renderCounts();
      loadNext();
    } else if (r.status === 401) sessionExpired();
    else banner("error-banner", detail(r));
  }

  function need(msg) {
    toast(msg);
    var hint = $("action-hint");
    hint.textContent = msg;
    hint.classList.add("hint-alert");
    return null;
  }

  function updateHint() {
    var hint = $("action-hint");
    hint.classList.remove("hint-alert");
    hint.textContent = RENDERERS[KIND].hint();
  }

  /* ---------- rating and choice widgets ---------- */

  function segmented(name, options, current, onPick, testid) {
    var group = el("div", { class: "seg-group", role: "radiogroup", "aria-label": name });
    options.forEach(function (o) {
      var b = el("button", {
        type: "button",
        class: "seg-btn",
        role: "radio",
        "aria-checked": String(current === o.value),
        "data-value": String(o.value),
        "data-testid": testid ? testid + "-" + o.value : null,
        title: o.title || null,
        onclick: function () { onPick(o.value); },
      }, o.label);
      group.appendChild(b);
    });
    return group;
  }
  function setSegmented(group, value) {
    Array.prototype.forEach.call(group.children, function (b) {
      b.setAttribute("aria-checked", String(b.getAttribute("data-value") === String(value)));
    });
  }

  function ratingRow(label, key, testid) {
    var opts = [];
    for (var i = 1; i <= 7; i++) opts.push({ value: i, label: String(i) });
    var group;
    group = segmented(label, opts, state.answer[key], function (v) {
      v = state.answer[key] === v ? null : v;
      state.answer[key] = v;
      setSegmented(group, v);
      markDirty();
    }, testid);
    return el("div", { class: "field-row" },
      el("span", { class: "field-label", text: label }),
      group,
      el("span", { class: "muted small", text: "1 = poor · 7 = excellent" }));
  }

  /* ---------- pairwise ---------- */

  var pairwise = (function () {
    var ui = {};
    var STRENGTHS = [
      { value: 1, label: "Slightly", key: "q" },
      { value: 2, label: "Clearly", key: "w" },
      { value: 3, label: "Much", key: "e" },
    ];
    function initial(task, draft) {
      var a = { choice: null, strength: null, rationale: "", aspects: {} };
      if (draft) {
        a.choice = draft.choice || null;
        a.strength = draft.strength || null;
        a.rationale = draft.rationale || "";
        a.aspects = draft.aspects || {};
      }
      return a;
    }
    function choose(side) {
      if (side === "tie" && !boot.allow_tie) return;
      state.answer.choice = side;
      sync();
      markDirty();
    }
    function build(task) {
      var r = task.item.responses;
      ui.cards = [0, 1].map(function (i) {
        var letter = i ? "B" : "A";
        return el("article", { class: "card response", "data-side": letter.toLowerCase() },
          el("h2", { class: "label" }, "Response " + letter),
          sanitizedMarkdown(r[i].html, "md response-body"));
      });
      var grid = el("div", { class: "pair-grid" }, ui.cards[0], ui.cards[1]);
      ui.choiceA = el("button", { type: "button", class: "choice", "data-testid": "choice-a", onclick: function () { choose("a"); } }, kbd("1"), " A is better");
      ui.choiceTie = boot.allow_tie
        ? el("button", { type: "button", class: "choice", "data-testid": "choice-tie", onclick: function () { choose("tie"); } }, kbd("0"), " Tie")
        : null;
      ui.choiceB = el("button", { type: "button", class: "choice", "data-testid": "choice-b", onclick: function () { choose("b"); } }, kbd("2"), " B is better");
      ui.strength = segmented("Strength", STRENGTHS.map(function (s) {
        return { value: s.value, label: el("span", null, kbd(s.key), " " + s.label) };
      }), state.answer.strength, function (v) {
        state.answer.strength = state.answer.strength === v ? null : v;
        sync();
        markDirty();
      }, "strength");
      ui.strengthRow = el("div", { class: "field-row" }, el("span", { class: "field-label", text: "How much better?" }), ui.strength, el("span", { class: "muted small", text: "optional" }));
      var panel = el("section", { class: "card answer" },
        el("div", { class: "choices", role: "group", "aria-label": "Which response is better?" }, ui.choiceA, ui.choiceTie, ui.choiceB),
        ui.strengthRow);
      if (boot.aspects.length) {
        var table = el("div", { class: "aspects" }, el("span", { class: "field-label", text: "Per aspect (optional)" }));
        ui.aspectGroups = {};
        boot.aspects.forEach(function (name) {
          var opts = [{ value: "a", label: "A" }];
          if (boot.allow_tie) opts.push({ value: "tie", label: "Tie" });
          opts.push({ value: "b", label: "B" });
          var group;
          group = segmented(name, opts, state.answer.aspects[name] || null, function (v) {
            if (state.answer.aspects[name] === v) v = null;
            if (v) state.answer.aspects[name] = v; else delete state.answer.aspects[name];
            setSegmented(group, v);
            markDirty();
          }, "aspect-" + name.replace(/[^A-Za-z0-9_-]/g, "_"));
          ui.aspectGroups[name] = group;
          table.appendChild(el("div", { class: "aspect-row" }, el("span", { class: "aspect-name", text: name }), group));
        });
        panel.appendChild(table);
      }
      ui.rationale = el("textarea", {
        rows: "2", class: "rationale", placeholder: "Why? (optional, r)", "aria-label": "Rationale", "data-testid": "rationale",
        oninput: function () { state.answer.rationale = ui.rationale.value; markDirty(); },
      });
      ui.rationale.value = state.answer.rationale;
      panel.appendChild(ui.rationale);
      return el("div", { class: "kind-body" }, grid, panel);
    }
    function sync() {
      var c = state.answer.choice;
      ui.choiceA.setAttribute("aria-pressed", String(c === "a"));
      ui.choiceB.setAttribute("aria-pressed", String(c === "b"));
      if (ui.choiceTie) ui.choiceTie.setAttribute("aria-pressed", String(c === "tie"));
      ui.cards[0].classList.toggle("picked", c === "a");
      ui.cards[1].classList.toggle("picked", c === "b");
      ui.cards[0].classList.toggle("tied", c === "tie");
      ui.cards[1].classList.toggle("tied", c === "tie");
      setSegmented(ui.strength, state.answer.strength);
      ui.strengthRow.classList.toggle("dim", !c || c === "tie");
    }
    function key(e) {
      if (e.key === "1") { choose("a"); return true; }
      if (e.key === "2") { choose("b"); return true; }
      if (e.key === "0" && boot.allow_tie) { choose("tie"); return true; }
      var s = { q: 1, w: 2, e: 3 }[e.key];
      if (s) { state.answer.strength = state.answer.strength === s ? null : s; sync(); markDirty(); return true; }
      if (e.key === "r") { ui.rationale.focus(); return true; }
      return false;
    }
    function payload() {
      var a = state.answer;
      if (!a.choice) return need(boot.allow_tie ? "Pick A, B or tie first (keys 1, 2, 0)." : "Pick A or B first (keys 1, 2).");
      var p = { choice: a.choice };
      if (a.strength && a.choice !== "tie") p.strength = a.strength;
      if (a.rationale && a.rationale.trim()) p.rationale = a.rationale.trim();
      var aspects = {};
      var any = false;
      boot.aspects.forEach(function (n) { if (a.aspects[n]) { aspects[n] = a.aspects[n]; any = true; } });
      if (any) p.aspects = aspects;
      return p;
    }
    function hint() {
      return state.answer.choice ? "Ready: press Enter to submit." : boot.allow_tie ? "Press 1, 2 or 0 to choose." : "Press 1 or 2 to choose.";
    }
    return { initial: initial, build: build, sync: sync, key: key, payload: payload, hint: hint, focus: function () { taskEl.focus({ preventScroll: true }); } };
  })();

  /* ---------- ranking ---------- */

  var ranking = (function () {
    var ui = {};
    var LETTERS = "ABCDEFGHIJKLMNOP";
    function initial(task, draft) {
      var ids = task.item.responses.map(function (r) { return r.id; });
      var order = ids.slice();
      if (draft && Array.isArray(draft.order) && draft.order.length === ids.length &&
          draft.order.every(function (id) { return ids.indexOf(id) >= 0; })) {
        order = draft.order.slice();
      }
      return { order: order, touched: !!(draft && draft.touched) };
    }
    function build(task) {
      ui.items = {};
      task.item.responses.forEach(function (r, i) {
        var li = el("li", {
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
        li.addEventListener("focus", function () { ui.focusId = r.id; });
        ui.items[r.id] = li;
      });
      ui.list = el("ol", { class: "rank-list", "aria-label": "Responses, best first" });
      ui.list.addEventListener("dragover", onDragOver);
      ui.list.addEventListener("drop", function (e) { e.preventDefault(); });
      ui.live = el("p", { class: "sr-only", "aria-live": "assertive" });
      ui.focusId = state.answer.order[0];
      return el("div", { class: "kind-body" },
        el("p", { class: "muted instructions" }, "Order the responses from best (top) to worst. Drag them, or use ", kbd("Alt"), "+", kbd("↑"), kbd("↓"), " on the focused one."),
        ui.list, ui.live);
    }
    function sync() {
      var frag = document.createDocumentFragment();
      state.answer.order.forEach(function (id, i) {
        var li = ui.items[id];
        li.querySelector(".rank-n").textContent = String(i + 1);
        li.setAttribute("aria-label", "Rank " + (i + 1));
        frag.appendChild(li);
      });
      ui.list.replaceChildren(frag);
    }
    function move(id, to) {
      var order = state.answer.order;
      var from = order.indexOf(id);
      to = Math.max(0, Math.min(order.length - 1, to));
      if (from < 0 || from === to) return;
      order.splice(from, 1);
      order.splice(to, 0, id);
      state.answer.touched = true;
      sync();
      ui.items[id].focus();
      ui.live.textContent = "Moved to rank " + (to + 1) + " of " + order.length + ".";
      markDirty();
    }
    var dragging = null;
    function onDragStart(e) {
      dragging = Number(e.currentTarget.getAttribute("data-response-id"));
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", String(dragging));
      e.currentTarget.classList.add("dragging");
    }
    function onDragOver(e) {
      if (dragging === null) return;
      e.preventDefault();
      var over = e.target.closest ? e.target.closest(".rank-item") : null;
      if (!over || Number(over.getAttribute("data-response-id")) === dragging) return;
      var box = over.getBoundingClientRect();
      var overIdx = state.answer.order.indexOf(Number(over.getAttribute("data-response-id")));
      var from = state.answer.order.indexOf(dragging);
      var after = e.clientY > box.top + box.height / 2;
      var to = after ? (overIdx > from ? overIdx : overIdx + 1) : (overIdx > from ? overIdx - 1 : overIdx);
      if (to !== from) {
        var order = state.answer.order;
        order.splice(from, 1);
        order.splice(to, 0, dragging);
        sync();
      }
    }
    function onDragEnd(e) {
      e.currentTarget.classList.remove("dragging");
      if (dragging !== null) {
        var id = dragging;
        dragging = null;
        state.answer.touched = true;
        ui.live.textContent = "Moved to rank " + (state.answer.order.indexOf(id) + 1) + ".";
        markDirty();
      }
    }
    function focused() {
      var a = document.activeElement;
      return a && a.classList && a.classList.contains("rank-item") ? Number(a.getAttribute("data-response-id")) : null;
    }
    function key(e) {
      var order = state.answer.order;
      var id = focused();
      var up = e.key === "ArrowUp" || e.key === "k" || e.key === "K";
      var down = e.key === "ArrowDown" || e.key === "j" || e.key === "J";
      if (up || down) {
        if (id === null) { ui.items[ui.focusId || order[0]].focus(); return true; }
        var idx = order.indexOf(id);
        if (e.altKey || e.shiftKey) move(id, idx + (up ? -1 : 1));
        else ui.items[order[Math.max(0, Math.min(order.length - 1, idx + (up ? -1 : 1)))]].focus();
        return true;
      }
      if (/^[1-9]$/.test(e.key) && id !== null && !e.altKey) { move(id, Number(e.key) - 1); return true; }
      if (e.key === "Home" && id !== null) { ui.items[order[0]].focus(); return true; }
      if (e.key === "End" && id !== null) { ui.items[order[order.length - 1]].focus(); return true; }
      return false;
    }
    function payload() { return { order: state.answer.order.slice() }; }
    function hint() { return state.answer.touched ? "Press Enter to submit this order." : "Reorder, then press Enter."; }
    function focusFirst() { ui.items[state.answer.order[0]].focus({ preventScroll: true }); }
    return { initial: initial, build: build, sync: sync, key: key, payload: payload, hint: hint, focus: focusFirst };
  })();

  /* ---------- span: offsets in code points, the text shown only through textContent ---------- */

  var span = (function () {
    var ui = {};
    var cps = [];          // the response as an array of code points
    var sel = null;        // {anchor, focus} in code points
    var caret = 0;
    var mouseDown = false;
    var WORD = /[\p{L}\p{N}_]/u;

    function initial(task, draft) {
      cps = Array.from(task.item.responses[0].text);
      sel = null;
      caret = 0;
      var a = { spans: [], overall: null };
      if (draft) {
        a.overall = draft.overall || null;
        a.spans = (draft.spans || []).filter(function (s) {
          return s && s.start >= 0 && s.end <= cps.length && s.start < s.end && boot.span_labels.indexOf(s.label) >= 0;
        });
      }
      return a;
    }
    function labelKey(i) { return i === 9 ? "0" : String(i + 1); }
    function build(task) {
      ui.palette = el("div", { class: "palette", role: "toolbar", "aria-label": "Labels" });
      boot.span_labels.forEach(function (label, i) {
        ui.palette.appendChild(el("button", {
          type: "button", class: "label-btn lab-" + i, "data-testid": "span-label-" + (i + 1),
          onclick: function () { applyLabel(i); },
        }, kbd(labelKey(i)), " " + label));
      });
      ui.text = el("div", {
        class: "span-text", tabindex: "0", role: "textbox", "aria-readonly": "true", "aria-multiline": "true",
        "aria-label": "Response text: select a passage, then a label", "data-testid": "span-text",
      });
      ui.text.addEventListener("mousedown", function () { mouseDown = true; });
      ui.text.addEventListener("mouseup", function () { mouseDown = false; onMouseUp(); });
      // Re-rendering under a pressed mouse button would cut the selection being made.
      ui.text.addEventListener("focus", function () { if (!mouseDown) render(); });
      ui.text.addEventListener("blur", function () { if (!mouseDown) render(); });
      ui.list = el("ol", { class: "span-list", "data-testid": "span-list" });
      ui.empty = el("p", { class: "muted small", text: "No spans yet. Select text in the response and press a label's key." });
      var rating = ratingRow("Overall", "overall", "overall");
      return el("div", { class: "kind-body" },
        el("section", { class: "card response" },
          el("div", { class: "span-head" }, el("h2", { class: "label", text: "Response" }), ui.palette),
          ui.text),
        el("section", { class: "card answer" },
          el("h2", { class: "label", text: "Labelled spans" }), ui.empty, ui.list, rating));
    }
    function range() {
      if (!sel || sel.anchor === sel.focus) return null;
      return { start: Math.min(sel.anchor, sel.focus), end: Math.max(sel.anchor, sel.focus) };
    }
    function render() {
      var spans = state.answer.spans;
      var r = range();
      var cuts = { 0: 1 };
      cuts[cps.length] = 1;
      spans.forEach(function (s) { cuts[s.start] = 1; cuts[s.end] = 1; });
      if (r) { cuts[r.start] = 1; cuts[r.end] = 1; }
      var showCaret = document.activeElement === ui.text && !r;
      if (showCaret) cuts[caret] = 1;
      var points = Object.keys(cuts).map(Number).sort(function (a, b) { return a - b; });
      var frag = document.createDocumentFragment();
      for (var i = 0; i < points.length; i++) {
        var a = points[i];
        if (showCaret && a === caret) frag.appendChild(el("span", { class: "caret", "aria-hidden": "true" }));
        if (i === points.length - 1) break;
        var b = points[i + 1];
        var covering = spans.filter(function (s) { return s.start <= a && s.end >= b; });
        var cls = "seg";
        var title = null;
        if (covering.length) {
          var inner = covering.reduce(function (x, y) { return y.end - y.start < x.end - x.start ? y : x; });
          cls += " hl lab-" + boot.span_labels.indexOf(inner.label);
          if (covering.length > 1) cls += " overlap";
          title = covering.map(function (s) { return s.label; }).join(", ");
        }
        if (r && a >= r.start && b <= r.end) cls += " sel";
        frag.appendChild(el("span", { class: cls, "data-s": String(a), title: title, text: cps.slice(a, b).join("") }));
      }
      ui.text.replaceChildren(frag);
    }
    function renderList() {
      var spans = state.answer.spans;
      ui.empty.hidden = spans.length > 0;
      var frag = document.createDocumentFragment();
      spans.forEach(function (s, idx) {
        var labelSel = el("select", { class: "span-label-select", "aria-label": "Label", onchange: function () { s.label = labelSel.value; refresh(); } });
        boot.span_labels.forEach(function (l, i) {
          var o = el("option", { value: l, text: labelKey(i) + " · " + l });
          if (l === s.label) o.selected = true;
          labelSel.appendChild(o);
        });
        var excerpt = cps.slice(s.start, s.end).join("");
        if (excerpt.length > 120) excerpt = Array.from(excerpt).slice(0, 117).join("") + "…";
        var comment = el("input", {
          type: "text", class: "span-comment", placeholder: "Comment (optional)", maxlength: "2000",
          "aria-label": "Comment on this span", "data-testid": "span-comment",
          oninput: function () { s.comment = comment.value; markDirty(); },
        });
        comment.value = s.comment || "";
        frag.appendChild(el("li", { class: "span-row lab-" + boot.span_labels.indexOf(s.label), "data-testid": "span-row" },
          el("span", { class: "chip lab-" + boot.span_labels.indexOf(s.label) }),
          labelSel,
          el("q", { class: "excerpt", text: excerpt }),
          comment,
          el("button", { type: "button", class: "btn btn-ghost btn-sm", "aria-label": "Delete span", "data-testid": "span-delete", onclick: function () {
            state.answer.spans.splice(idx, 1); refresh(); ui.text.focus();
          } }, "✕")));
      });
      ui.list.replaceChildren(frag);
    }
    function refresh() {
      state.answer.spans.sort(function (x, y) { return x.start - y.start || x.end - y.end; });
      render();
      renderList();
      markDirty();
    }
    function sync() { render(); renderList(); }
    function spanAt(pos) {
      var hits = state.answer.spans.filter(function (s) { return s.start <= pos && pos < s.end; });
      if (!hits.length) hits = state.answer.spans.filter(function (s) { return s.start < pos && pos <= s.end; });
      return hits.length ? hits.reduce(function (x, y) { return y.end - y.start < x.end - x.start ? y : x; }) : null;
    }
    function applyLabel(i) {
      var label = boot.span_labels[i];
      if (label === undefined) return;
      var r = range();
      if (r) {
        var same = state.answer.spans.filter(function (s) { return s.start === r.start && s.end === r.end; })[0];
        if (same) same.label = label;
        else state.answer.spans.push({ start: r.start, end: r.end, label: label });
        caret = r.end;
        sel = null;
        refresh();
        ui.text.focus();
        return;
      }
      var at = spanAt(caret);
      if (at) { at.label = label; refresh(); return; }
      need("Select some text first: drag with the mouse, or Shift+arrows in the response.");
    }
    // A DOM position inside the text box, as a code point offset into the response.
    function offsetOf(node, off) {
      var elNode = node.nodeType === 3 ? node.parentNode : node;
      if (elNode === ui.text) {
        var child = ui.text.childNodes[off];
        while (child && !(child.classList && child.classList.contains("seg"))) child = child.nextSibling;
        return child ? Number(child.getAttribute("data-s")) : cps.length;
      }
      var seg = elNode.closest ? elNode.closest(".seg") : null;
      if (!seg || !ui.text.contains(seg)) return null;
      var base = Number(seg.getAttribute("data-s"));
      if (node.nodeType === 3) return base + Array.from(node.data.slice(0, off)).length;
      return base + (off > 0 ? Array.from(seg.textContent).length : 0);
    }
    function onMouseUp() {
      var s = window.getSelection();
      if (!s || !s.rangeCount) return;
      var a = offsetOf(s.anchorNode, s.anchorOffset);
      var f = offsetOf(s.focusNode, s.focusOffset);
      if (a === null || f === null) return;
      if (a !== f) {
        sel = { anchor: a, focus: f };
        caret = f;
      } else {
        sel = null;
        caret = a;
      }
      s.removeAllRanges();
      ui.text.focus({ preventScroll: true });
      render();
    }
    function wordStep(pos, dir) {
      var isW = function (i) { return WORD.test(cps[i] || ""); };
      if (dir > 0) {
        while (pos < cps.length && !isW(pos)) pos++;
        while (pos < cps.length && isW(pos)) pos++;
      } else {
        while (pos > 0 && !isW(pos - 1)) pos--;
        while (pos > 0 && isW(pos - 1)) pos--;
      }
      return pos;
    }
    function key(e) {
      var inText = document.activeElement === ui.text;
      if (/^[0-9]$/.test(e.key) && !e.altKey) {
        var i = e.key === "0" ? 9 : Number(e.key) - 1;
        if (i < boot.span_labels.length) { applyLabel(i); return true; }
        return false;
      }
      if (e.key === "t") { ui.text.focus(); return true; }
      if (!inText) return false;
      if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") {
        var dir = e.key === "ArrowLeft" || e.key === "Home" ? -1 : 1;
        var from = sel && e.shiftKey ? sel.focus : caret;
        var to;
        if (e.key === "Home") to = 0;
        else if (e.key === "End") to = cps.length;
        else if (e.ctrlKey || e.altKey || e.metaKey) to = wordStep(from, dir);
        else to = Math.max(0, Math.min(cps.length, from + dir));
        if (e.shiftKey) sel = { anchor: sel ? sel.anchor : caret, focus: to };
        else sel = null;
        caret = to;
        render();
        return true;
      }
      if (e.key === "Escape" && sel) { sel = null; render(); return true; }
      if (e.key === "Delete" || e.key === "Backspace") {
        var at = spanAt(caret);
        if (at) { state.answer.spans.splice(state.answer.spans.indexOf(at), 1); refresh(); }
        return true;
      }
      if (e.key === "c") {
        var hit = spanAt(caret);
        if (hit) {
          var idx = state.answer.spans.indexOf(hit);
          var input = ui.list.querySelectorAll(".span-comment")[idx];
          if (input) input.focus();
        }
        return true;
      }
      return false;
    }
    function payload() {
      var p = {
        spans: state.answer.spans.map(function (s) {
          var o = { start: s.start, end: s.end, label: s.label };
          if (s.comment && s.comment.trim()) o.comment = s.comment.trim();
          return o;
        }),
      };
      if (state.answer.overall) p.overall = state.answer.overall;
      return p;
    }
    function hint() {
      var n = state.answer.spans.length;
      return n ? n + (n === 1 ? " span" : " spans") + " · Enter submits" : "Mark problems, or press Enter if there are none.";
    }
    return { initial: initial, build: build, sync: sync, key: key, payload: payload, hint: hint, focus: function () { ui.text.focus({ preventScroll: true }); } };
  })();

  /* ---------- critique with a word-level diff of the rewrite ---------- */

  function tokens(s) { return s.match(/\s+|[^\s]+/g) || []; }

  // [op, text] with op "=", "-" or "+": a longest-common-subsequence diff over words.
  function wordDiff(a, b) {
    var x = tokens(a), y = tokens(b);
    var pre = 0;
    while (pre < x.length && pre < y.length && x[pre] === y[pre]) pre++;
    var suf = 0;
    while (suf < x.length - pre && suf < y.length - pre && x[x.length - 1 - suf] === y[y.length - 1 - suf]) suf++;
    var xs = x.slice(pre, x.length - suf), ys = y.slice(pre, y.length - suf);
    var out = [];
    if (pre) out.push(["=", x.slice(0, pre).join("")]);
    var n = xs.length, m = ys.length;
    if (n * m > 4000000) {
      if (n) out.push(["-", xs.join("")]);
      if (m) out.push(["+", ys.join("")]);
    } else {
      var w = m + 1;
      var L = new Uint32Array((n + 1) * w);
      for (var i = n - 1; i >= 0; i--) {
        for (var j = m - 1; j >= 0; j--) {
          L[i * w + j] = xs[i] === ys[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
        }
      }
      i = 0; j = 0;
      var push = function (op, t) {
        var last = out[out.length - 1];
        if (last && last[0] === op) last[1] += t; else out.push([op, t]);
      };
      while (i < n && j < m) {
        if (xs[i] === ys[j]) { push("=", xs[i]); i++; j++; }
        else if (L[(i + 1) * w + j] >= L[i * w + j + 1]) { push("-", xs[i]); i++; }
        else { push("+", ys[j]); j++; }
      }
      while (i < n) { push("-", xs[i]); i++; }
      while (j < m) { push("+", ys[j]); j++; }
    }
    if (suf) {
      var tail = x.slice(x.length - suf).join("");
      var last = out[out.length - 1];
      if (last && last[0] === "=") last[1] += tail; else out.push(["=", tail]);
    }
    return out;
  }

  var critique = (function () {
    var ui = {};
    var original = "";
    var diffTimer = 0;
    function initial(task, draft) {
      original = task.item.responses[0].text;
      var a = { critique: "", rewrite: original, rating: null };
      if (draft) {
        a.critique = draft.critique || "";
        a.rewrite = typeof draft.rewrite === "string" ? draft.rewrite : original;
        a.rating = draft.rating || null;
      }
      return a;
    }
    function build(task) {
      ui.critique = el("textarea", {
        rows: "5", class: "critique", placeholder: "What is wrong or missing? What is good?",
        "aria-label": "Critique", "data-testid": "critique", required: true,
        oninput: function () { state.answer.critique = ui.critique.value; markDirty(); },
      });
      ui.critique.value = state.answer.critique;
      ui.rewrite = el("textarea", {
        rows: "8", class: "rewrite mono", "aria-label": "Rewrite of the response", "data-testid": "rewrite",
        oninput: function () {
          state.answer.rewrite = ui.rewrite.value;
          markDirty();
          clearTimeout(diffTimer);
          diffTimer = setTimeout(renderDiff, 150);
        },
      });
      ui.rewrite.value = state.answer.rewrite;
      ui.diff = el("div", { class: "diff", "data-testid": "rewrite-diff", "aria-live": "off" });
      ui.reset = el("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: function () {
        ui.rewrite.value = original; state.answer.rewrite = original; renderDiff(); markDirty();
      } }, "Reset to the response");
      return el("div", { class: "kind-body" },
        el("article", { class: "card response" }, el("h2", { class: "label", text: "Response" }), sanitizedMarkdown(task.item.responses[0].html, "md response-body")),
        el("section", { class: "card answer stack" },
          el("label", null, el("span", { class: "field-label" }, "Critique ", kbd("c")), ui.critique),
          ratingRow("Rating", "rating", "rating"),
          el("div", { class: "rewrite-head" }, el("span", { class: "field-label" }, "Rewrite (optional) ", kbd("r")), ui.reset),
          el("div", { class: "rewrite-grid" }, ui.rewrite,
            el("div", { class: "diff-wrap" }, el("span", { class: "muted small", text: "Changes against the response" }), ui.diff))));
    }
    function renderDiff() {
      var rewrite = state.answer.rewrite;
      if (rewrite === original) {
        ui.diff.replaceChildren(el("span", { class: "muted", text: "No changes yet: edit the text to propose a better response." }));
        return;
      }
      var frag = document.createDocumentFragment();
      wordDiff(original, rewrite).forEach(function (part) {
        var tag = part[0] === "=" ? "span" : part[0] === "-" ? "del" : "ins";
        frag.appendChild(el(tag, { text: part[1] }));
      });
      ui.diff.replaceChildren(frag);
    }
    function sync() { renderDiff(); }
    function key(e) {
      if (e.key === "c") { ui.critique.focus(); return true; }
      if (e.key === "r") { ui.rewrite.focus(); return true; }
      return false;
    }
    function payload() {
      var a = state.answer;
      if (!a.critique.trim()) { ui.critique.focus(); return need("Write a critique first."); }
      var p = { critique: a.critique.trim() };
      if (a.rewrite !== original && a.rewrite.trim()) p.rewrite = a.rewrite;
      if (a.rating) p.rating = a.rating;
      return p;
    }
    function hint() { return "Ctrl+Enter submits."; }
    return { initial: initial, build: build, sync: sync, key: key, payload: payload, hint: hint, focus: function () { ui.critique.focus({ preventScroll: true }); } };
  })();

  var RENDERERS = { pairwise: pairwise, ranking: ranking, span: span, critique: critique };

  /* ---------- dialogs, guidelines, keys ---------- */

  var skipDialog = $("skip-dialog");
  var helpDialog = $("help-dialog");

  function openSkip() {
    if (!state.task || state.busy) return;
    $("skip-note").value = "";
    skipDialog.showModal();
    var checked = skipDialog.querySelector("input[name=reason]:checked");
    if (checked) checked.focus();
  }
  $("skip-btn").addEventListener("click", openSkip);
  $("skip-cancel").addEventListener("click", function () { skipDialog.close(); });
  $("skip-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var reason = skipDialog.querySelector("input[name=reason]:checked");
    var note = $("skip-note").value.trim();
    var text = (reason ? reason.parentNode.textContent.replace(/^\s*\d\s*/, "").trim() : "skipped") + (note ? ": " + note : "");
    skipDialog.close();
    skip(text.slice(0, 2000));
  });
  skipDialog.addEventListener("keydown", function (e) {
    if (/^[1-4]$/.test(e.key) && e.target.type !== "text") {
      var radios = skipDialog.querySelectorAll("input[name=reason]");
      radios[Number(e.key) - 1].checked = true;
      radios[Number(e.key) - 1].focus();
      e.preventDefault();
    } else if (e.key === "Enter" && e.target.tagName !== "BUTTON") {
      e.preventDefault();
      $("skip-form").requestSubmit();
    }
  });

  function toggleHelp() { if (helpDialog.open) helpDialog.close(); else helpDialog.showModal(); }
  $("open-help").addEventListener("click", toggleHelp);
  $("help-close").addEventListener("click", function () { helpDialog.close(); });

  function setGuidelines(open) {
    $("guidelines").hidden = !open;
    $("toggle-guidelines").setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("with-guidelines", open);
    store(GUIDE_KEY, open);
  }
  $("toggle-guidelines").addEventListener("click", function () { setGuidelines($("guidelines").hidden); });
  $("close-guidelines").addEventListener("click", function () { setGuidelines(false); });
  // Open by default where there is room and something to read; after that, as last left.
  setGuidelines(load(GUIDE_KEY, boot.has_guidelines && window.innerWidth >= 1280) === true);

  $("submit-btn").addEventListener("click", submit);

  function typing(t) {
    if (!t || !t.tagName) return false;
    var tag = t.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(t.type)) || t.isContentEditable;
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      if (skipDialog.open || helpDialog.open) return;
      e.preventDefault();
      submit();
      return;
    }
    if (skipDialog.open || helpDialog.open) {
      if (e.key === "?" && helpDialog.open) { e.preventDefault(); helpDialog.close(); }
      return;
    }
    if (typing(e.target)) {
      if (e.key === "Escape") { e.target.blur(); taskEl.focus({ preventScroll: true }); }
      return;
    }
    if (e.key === "?") { e.preventDefault(); toggleHelp(); return; }
    if ((e.ctrlKey || e.metaKey) && !(KIND === "span" && /Arrow/.test(e.key))) return;
    if (e.key === "g") { e.preventDefault(); setGuidelines($("guidelines").hidden); return; }
    if (!state.task) return;
    if (e.key === "s" && !e.altKey) { e.preventDefault(); openSkip(); return; }
    if (e.key === "Enter") {
      var tag = e.target.tagName;
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return;
      e.preventDefault();
      submit();
      return;
    }
    if (RENDERERS[KIND].key(e)) e.preventDefault();
  });

  /* ---------- start: send what the outbox holds, then the first task ---------- */

  renderCounts();
  (async function start() {
    if (outbox().length) {
      var res = await flushOutbox();
      renderCounts();
      if (res.pending) {
        state.waitingOnline = true;
        showOffline(res.pending);
        scheduleRetry();
        return;
      }
      if (res.sent) toast(res.sent === 1 ? "Your saved answer was sent." : res.sent + " saved answers were sent.");
    }
    loadNext();
  })();
})();
