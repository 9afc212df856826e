/* The annotate workspace: one task at a time, keyboard first, never loses work.
 *
 * Loads the caller's next task, renders it with the project kind's module, autosaves drafts,
 * submits through the outbox, skips with a reason, and keeps the counters, lease banner,
 * dialogs and keys of the page. Model output arrives as Markdown already sanitized by the
 * server (nh3) and is the only thing ever given to innerHTML (core/dom.js). */

import { api, detail, NetworkError } from "./core/api.js";
import { $, banner, el, sanitizedMarkdown, toast } from "./core/dom.js";
import { createDrafts } from "./core/drafts.js";
import { typing } from "./core/keyboard.js";
import { createOutbox, newSubmissionId } from "./core/outbox.js";
import { load, store } from "./core/storage.js";

const GUIDE_KEY = "tandem.guidelines.open";

// firstTask: the promise of the `annotate/next` answer main.js asked for early, or null.
export function startWorkspace(boot, createKind, firstTask) {
  const taskEl = $("task");
  const actions = $("actions");
  const outbox = createOutbox(boot.user_id);
  const drafts = createDrafts(boot.user_id, boot.kind);
  const state = {
    task: null,
    activeMs: 0,
    shownAt: 0,
    busy: false,
    dirty: false,
    waitingOnline: false,
    done: boot.done,
    remaining: boot.remaining,
    items: boot.items,
    skew: 0,
    leaseTimer: 0,
    draftTimer: 0,
    retryTimer: 0,
    retryDelay: 1000,
    sinceRefresh: 0,
  };

  const kind = createKind({
    config: boot,
    home: taskEl,
    changed: () => { state.dirty = true; changed(); },
    need,
  });

  const saveState = (msg) => { $("save-state").textContent = msg; };

  function sessionExpired() {
    banner("error-banner", "Your session has expired. Log in again; your work is kept on this device.");
    const b = $("error-banner");
    b.appendChild(document.createTextNode(" "));
    b.appendChild(el("a", { href: "/login?next=" + encodeURIComponent(location.pathname), text: "Log in" }));
  }

  /* ---------- time spent: only while the page is visible ---------- */

  function elapsed() {
    const running = state.shownAt && !document.hidden ? performance.now() - state.shownAt : 0;
    return Math.round(state.activeMs + running);
  }
  document.addEventListener("visibilitychange", () => {
    if (!state.task) return;
    if (document.hidden) {
      state.activeMs = elapsed();
      state.shownAt = 0;
      flushDraft(true);
    } else {
      state.shownAt = performance.now();
    }
  });
  window.addEventListener("pagehide", () => { if (state.task) flushDraft(true); });

  /* ---------- counters ---------- */

  function renderCounts() {
    $("done-n").textContent = String(state.done);
    $("left-n").textContent = String(Math.max(0, state.remaining));
  }

  async function refreshCounts() {
    try {
      const r = await api("GET", "/api/v1/projects/" + boot.project_id + "/progress");
      if (r.status === 200) {
        state.done = r.data.my_done;
        state.remaining = r.data.my_remaining;
        state.items = r.data.items;
        renderCounts();
        if (!state.task && !state.busy) showEndPanel();
      }
    } catch (e) { /* offline: the counters catch up later */ }
  }

  /* ---------- the outbox, retried with backoff ---------- */

  async function flushOutbox() {
    const res = await outbox.flush(boot.project_id);
    state.done += res.created;
    state.remaining -= res.created;
    if (res.auth) sessionExpired();
    return res;
  }

  function scheduleRetry() {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(retryNow, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 30000);
  }

  async function retryNow() {
    clearTimeout(state.retryTimer);
    const res = await flushOutbox();
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

  window.addEventListener("online", () => { state.retryDelay = 1000; retryNow(); });
  window.addEventListener("offline", () => {
    banner("offline-banner", "You appear to be offline. Keep working: your answers are kept on this device.");
  });

  /* ---------- drafts: localStorage at once, the server a moment later ---------- */

  const currentDraft = () => drafts.make(kind.answer(), elapsed());

  function changed() {
    if (!state.task) return;
    drafts.keep(state.task.assignment_id, currentDraft());
    saveState("Unsaved changes");
    clearTimeout(state.draftTimer);
    state.draftTimer = setTimeout(() => flushDraft(false), 700);
    updateHint();
  }

  async function flushDraft(keepalive) {
    clearTimeout(state.draftTimer);
    if (!state.task || !state.dirty) return;
    const task = state.task;
    const draft = currentDraft();
    drafts.keep(task.assignment_id, draft);
    state.dirty = false;
    let status;
    try {
      status = await drafts.send(task.assignment_id, draft, keepalive);
    } catch (e) {
      if (state.task === task) { state.dirty = true; saveState("Draft kept on this device"); }
      return;
    }
    if (state.task !== task) return;
    if (status === 200) saveState("Draft saved");
    else if (status === 401) sessionExpired();
    else saveState("Draft kept on this device");
  }

  /* ---------- loading tasks ---------- */

  async function loadNext(pending) {
    state.busy = true;
    taskEl.setAttribute("aria-busy", "true");
    let r = pending ? await pending : null;  // null: the early request got no answer
    try {
      if (!r) r = await api("POST", "/projects/" + boot.project_id + "/annotate/next");
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      state.busy = false;
      state.waitingOnline = true;
      showOffline(outbox.entries().length);
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
    showEndPanel();
    state.remaining = 0;
    renderCounts();
    refreshCounts();
    saveState("");
    document.dispatchEvent(new CustomEvent("tandem:task-rendered", { detail: { assignmentId: null } }));
  }

  // No task: either the project has no items at all, or the caller has done all theirs.
  function showEndPanel() {
    const empty = state.items === 0;
    $("empty-panel").hidden = !empty;
    $("done-panel").hidden = empty;
  }

  function renderTask(task) {
    state.task = task;
    state.dirty = false;
    const draft = drafts.restore(task);
    kind.initial(task, draft ? draft.answer : null);
    state.activeMs = draft ? draft.time_spent_ms || 0 : 0;
    state.shownAt = performance.now();
    $("done-panel").hidden = true;
    $("empty-panel").hidden = true;
    taskEl.hidden = false;
    actions.hidden = false;

    const frag = document.createDocumentFragment();
    frag.appendChild(
      el("article", { class: "card prompt" },
        el("h2", { class: "label", text: "Prompt" }),
        sanitizedMarkdown(task.item.prompt_html, "md prompt-body"))
    );
    frag.appendChild(kind.build(task));
    taskEl.replaceChildren(frag);
    taskEl.dataset.assignmentId = String(task.assignment_id);
    taskEl.setAttribute("aria-busy", "false");
    kind.sync();
    updateHint();
    saveState(draft ? "Draft restored" : "");
    armLease(task);
    state.busy = false;
    kind.focus();
    window.scrollTo(0, 0);
    if (++state.sinceRefresh >= 20) { state.sinceRefresh = 0; refreshCounts(); }
    document.dispatchEvent(new CustomEvent("tandem:task-rendered", { detail: { assignmentId: task.assignment_id } }));
  }

  function armLease(task) {
    clearTimeout(state.leaseTimer);
    banner("lease-banner", null);
    $("lease-banner").hidden = true;
    const left = Date.parse(task.expires_at) - (Date.now() + state.skew);
    const show = () => { if (state.task === task) $("lease-banner").hidden = false; };
    if (left <= 0) show();
    else state.leaseTimer = setTimeout(show, Math.min(left, 2147483000));
  }

  /* ---------- submit and skip ---------- */

  async function submit() {
    if (state.busy || !state.task) return;
    const payload = kind.payload();
    if (!payload) return;
    state.busy = true;
    clearTimeout(state.draftTimer);
    const task = state.task;
    const entry = {
      client_submission_id: newSubmissionId(),
      assignment_id: task.assignment_id,
      project_id: boot.project_id,
      payload,
      time_spent_ms: elapsed(),
      queued_at: Date.now(),
    };
    // Storage full or disabled: still send, just without the safety net.
    if (!outbox.put(entry)) saveState("");
    const res = await outbox.deliver(entry);
    if (res.outcome === "later") {
      if (res.auth) { state.busy = false; sessionExpired(); return; }
      state.waitingOnline = true;
      drafts.forget(task.assignment_id);
      if (res.network) showOffline(outbox.entries().length);
      else banner("offline-banner", "The server could not store your answer just now (" + detail(res.response) + "). It is kept on this device and will be sent again shortly.");
      actions.hidden = true;
      taskEl.setAttribute("aria-busy", "true");
      scheduleRetry();
      return;
    }
    if (res.outcome === "rejected") {
      state.busy = false;
      const r = res.response;
      if (r.status === 409) {
        toast(detail(r));
        drafts.forget(task.assignment_id);
        loadNext();
        return;
      }
      banner("error-banner", detail(r));
      return;
    }
    drafts.forget(task.assignment_id);
    banner("error-banner", null);
    if (res.response.status === 201) { state.done++; state.remaining--; }
    if (res.response.data && res.response.data.over_quota) toast("Submitted after the lease ran out: kept as an extra answer.");
    renderCounts();
    loadNext();
  }

  async function skip(reason) {
    if (state.busy || !state.task) return;
    state.busy = true;
    const task = state.task;
    let r;
    try {
      r = await api("POST", "/api/v1/assignments/" + task.assignment_id + "/skip", { reason });
    } catch (e) {
      state.busy = false;
      toast("You're offline: skipping needs the connection. Try again in a moment.");
      return;
    }
    state.busy = false;
    if (r.status === 200) {
      drafts.forget(task.assignment_id);
      state.remaining--;
      renderCounts();
      loadNext();
    } else if (r.status === 401) sessionExpired();
    else banner("error-banner", detail(r));
  }

  function need(msg) {
    toast(msg);
    const hint = $("action-hint");
    hint.textContent = msg;
    hint.classList.add("hint-alert");
    return null;
  }

  function updateHint() {
    const hint = $("action-hint");
    hint.classList.remove("hint-alert");
    hint.textContent = kind.hint();
  }

  /* ---------- dialogs, guidelines, keys ---------- */

  const skipDialog = $("skip-dialog");
  const helpDialog = $("help-dialog");

  function openSkip() {
    if (!state.task || state.busy) return;
    $("skip-note").value = "";
    skipDialog.showModal();
    const checked = skipDialog.querySelector("input[name=reason]:checked");
    if (checked) checked.focus();
  }
  $("skip-btn").addEventListener("click", openSkip);
  $("skip-cancel").addEventListener("click", () => skipDialog.close());
  $("skip-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const reason = skipDialog.querySelector("input[name=reason]:checked");
    const note = $("skip-note").value.trim();
    const text = (reason ? reason.parentNode.textContent.replace(/^\s*\d\s*/, "").trim() : "skipped") + (note ? ": " + note : "");
    skipDialog.close();
    skip(text.slice(0, 2000));
  });
  skipDialog.addEventListener("keydown", (e) => {
    if (/^[1-4]$/.test(e.key) && e.target.type !== "text") {
      const radios = skipDialog.querySelectorAll("input[name=reason]");
      radios[Number(e.key) - 1].checked = true;
      radios[Number(e.key) - 1].focus();
      e.preventDefault();
    } else if (e.key === "Enter" && e.target.tagName !== "BUTTON") {
      e.preventDefault();
      $("skip-form").requestSubmit();
    }
  });

  const toggleHelp = () => { if (helpDialog.open) helpDialog.close(); else helpDialog.showModal(); };
  $("open-help").addEventListener("click", toggleHelp);
  $("help-close").addEventListener("click", () => helpDialog.close());

  function setGuidelines(open) {
    $("guidelines").hidden = !open;
    $("toggle-guidelines").setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("with-guidelines", open);
    store(GUIDE_KEY, open);
  }
  $("toggle-guidelines").addEventListener("click", () => setGuidelines($("guidelines").hidden));
  $("close-guidelines").addEventListener("click", () => setGuidelines(false));
  // Open by default where there is room and something to read; after that, as last left.
  setGuidelines(load(GUIDE_KEY, boot.has_guidelines && window.innerWidth >= 1280) === true);

  $("submit-btn").addEventListener("click", submit);

  document.addEventListener("keydown", (e) => {
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
      if (e.key === "Escape") {
        // Back to where the kind's keys work (the span text, or the task).
        e.target.blur();
        if (kind.home) kind.home(); else taskEl.focus({ preventScroll: true });
      }
      return;
    }
    if (e.key === "?") { e.preventDefault(); toggleHelp(); return; }
    if ((e.ctrlKey || e.metaKey) && !(boot.kind === "span" && /Arrow/.test(e.key))) return;
    if (e.key === "g") { e.preventDefault(); setGuidelines($("guidelines").hidden); return; }
    if (!state.task) return;
    if (e.key === "s" && !e.altKey) { e.preventDefault(); openSkip(); return; }
    if (e.key === "Enter") {
      const tag = e.target.tagName;
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return;
      e.preventDefault();
      submit();
      return;
    }
    if (kind.key(e)) e.preventDefault();
  });

  /* ---------- start: send what the outbox holds, then the first task ---------- */

  renderCounts();
  (async () => {
    if (firstTask) { loadNext(firstTask); return; }
    if (outbox.entries().length) {
      const res = await flushOutbox();
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
}
