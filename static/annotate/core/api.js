/* The JSON API with the session cookie and the page's CSRF token: {status, data} for every
 * answer the server gave, NetworkError when none came. */

const csrf = document.querySelector('meta[name="csrf-token"]').content;

export class NetworkError extends Error {
  constructor() { super("network"); this.name = "NetworkError"; }
}

export async function api(method, url, body, opts) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    keepalive: !!(opts && opts.keepalive),
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, init);
  } catch (e) {
    throw new NetworkError();
  }
  if (r.status === 204) return { status: 204, data: null };
  try {
    return { status: r.status, data: await r.json() };
  } catch (e) {
    return { status: r.status, data: null };
  }
}

// The server's sentence for an error answer.
export const detail = (r) => (r.data && r.data.detail) || "The server answered " + r.status + ".";
