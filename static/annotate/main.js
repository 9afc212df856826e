/* Entry of the annotate page, loaded alone: it asks for the first task at once, then has the
 * browser fetch the page's module graph (boot.modules, listed by the server) in parallel, and
 * starts the workspace with the project kind's module.
 *
 * It imports nothing statically, so it runs as soon as it arrives, and the task request goes
 * out ahead of the module requests rather than queueing behind them for a connection. With
 * submissions waiting in the outbox it does not ask: those go first (workspace.js). */

const boot = JSON.parse(document.getElementById("boot").textContent);

function waitingSubmissions() {
  try {
    return JSON.parse(localStorage.getItem("tandem.outbox.v1." + boot.user_id) || "[]").length > 0;
  } catch (e) {
    return false;
  }
}

// {status, data} as core/api.js answers, or null when no answer came (the workspace retries).
const first = waitingSubmissions() ? null : fetch("/projects/" + boot.project_id + "/annotate/next", {
  method: "POST",
  credentials: "same-origin",
  headers: {
    "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
    Accept: "application/json",
  },
}).then(async (r) => ({ status: r.status, data: await r.json().catch(() => null) }), () => null);

for (const href of boot.modules) {
  document.head.appendChild(Object.assign(document.createElement("link"), { rel: "modulepreload", href }));
}

const KINDS = {
  pairwise: () => import("./kinds/pairwise.js"),
  ranking: () => import("./kinds/ranking.js"),
  span: () => import("./kinds/span.js"),
  critique: () => import("./kinds/critique.js"),
};

Promise.all([import("./workspace.js"), KINDS[boot.kind]()]).then(([workspace, kind]) => {
  workspace.startWorkspace(boot, kind.create, first);
});
