/* The outbox: submissions the server has not confirmed yet, kept in localStorage under their
 * client submission id. An entry leaves it only once the server stored it (or refused it for
 * good), so a network failure loses nothing and a retry never duplicates: the server dedupes
 * by assignment and client submission id. */

import { api, detail } from "./api.js";
import { load, store } from "./storage.js";

export function newSubmissionId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function createOutbox(userId) {
  const key = "tandem.outbox.v1." + userId;
  const entries = () => load(key, []);
  const others = (csid) => entries().filter((e) => e.client_submission_id !== csid);

  function put(entry) {
    return store(key, [...others(entry.client_submission_id), entry]);
  }
  function remove(csid) { store(key, others(csid)); }

  // One entry: "sent", "rejected" (a 4xx: dropping it is final), or "later".
  async function deliver(entry) {
    let r;
    try {
      r = await api("POST", "/api/v1/assignments/" + entry.assignment_id + "/submit", {
        payload: entry.payload,
        time_spent_ms: entry.time_spent_ms,
        client_submission_id: entry.client_submission_id,
      });
    } catch (e) {
      return { outcome: "later", network: true };
    }
    if (r.status === 200 || r.status === 201) {
      remove(entry.client_submission_id);
      return { outcome: "sent", response: r };
    }
    if (r.status === 401) return { outcome: "later", response: r, auth: true };
    if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
      remove(entry.client_submission_id);
      return { outcome: "rejected", response: r };
    }
    return { outcome: "later", response: r };
  }

  // Send every entry in order, stopping at the first that must wait. `created` counts the new
  // annotations stored for projectId (a 201, not a replayed 200).
  let flushing = null;
  function flush(projectId) {
    if (flushing) return flushing;
    flushing = (async () => {
      const result = { sent: 0, created: 0, pending: 0, rejected: [], auth: false };
      for (const entry of entries()) {
        const res = await deliver(entry);
        if (res.outcome === "sent") {
          result.sent++;
          if (res.response.status === 201 && entry.project_id === projectId) result.created++;
        } else if (res.outcome === "rejected") {
          result.rejected.push(detail(res.response));
        } else {
          result.auth = !!res.auth;
          break;
        }
      }
      result.pending = entries().length;
      return result;
    })().finally(() => { flushing = null; });
    return flushing;
  }

  return { entries, put, remove, deliver, flush };
}
