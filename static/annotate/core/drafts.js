/* Drafts: the work on an assignment, in localStorage at once and on the server a moment later;
 * on reload the newer of the two comes back. */

import { api } from "./api.js";
import { load, store } from "./storage.js";

export function createDrafts(userId, kind) {
  const prefix = "tandem.draft.v1." + userId + ".";
  const fits = (d) => d && d.v === 1 && d.kind === kind;

  return {
    make(answer, timeSpentMs) {
      return { v: 1, kind, t: Date.now(), time_spent_ms: timeSpentMs, answer };
    },
    keep(assignmentId, draft) { store(prefix + assignmentId, draft); },
    forget(assignmentId) { store(prefix + assignmentId, null); },
    // The task's server draft or the local one, whichever was saved last.
    restore(task) {
      const server = fits(task.draft) ? task.draft : null;
      const local = load(prefix + task.assignment_id, null);
      const mine = fits(local) ? local : null;
      if (server && mine) return server.t >= mine.t ? server : mine;
      return server || mine;
    },
    // PUT to the server; resolves to the HTTP status, rejects when offline.
    async send(assignmentId, draft, keepalive) {
      const r = await api("PUT", "/api/v1/assignments/" + assignmentId + "/draft", { draft }, { keepalive });
      return r.status;
    },
  };
}
