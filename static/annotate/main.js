/* Entry of the annotate page. It asks for the first task at once, while the browser is still
 * fetching the other modules (the page preloads them), then starts the workspace with the
 * project kind's module. With submissions waiting in the outbox it does not: those go first. */

import { api } from "./core/api.js";
import { load } from "./core/storage.js";

const KINDS = {
  pairwise: () => import("./kinds/pairwise.js"),
  ranking: () => import("./kinds/ranking.js"),
  span: () => import("./kinds/span.js"),
  critique: () => import("./kinds/critique.js"),
};

const boot = JSON.parse(document.getElementById("boot").textContent);
const waiting = load("tandem.outbox.v1." + boot.user_id, []).length > 0;
const first = waiting ? null : api("POST", "/projects/" + boot.project_id + "/annotate/next");
if (first) first.catch(() => {});  // handled by the workspace; no unhandled-rejection noise

Promise.all([import("./workspace.js"), KINDS[boot.kind]()]).then(([workspace, kind]) => {
  workspace.startWorkspace(boot, kind.create, first);
});
