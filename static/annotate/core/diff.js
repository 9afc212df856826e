/* A word-level diff (longest common subsequence over words and whitespace runs). */

const tokens = (s) => s.match(/\s+|[^\s]+/g) || [];

// [op, text] with op "=", "-" or "+".
export function wordDiff(a, b) {
  const x = tokens(a), y = tokens(b);
  let pre = 0;
  while (pre < x.length && pre < y.length && x[pre] === y[pre]) pre++;
  let suf = 0;
  while (suf < x.length - pre && suf < y.length - pre && x[x.length - 1 - suf] === y[y.length - 1 - suf]) suf++;
  const xs = x.slice(pre, x.length - suf), ys = y.slice(pre, y.length - suf);
  const out = [];
  if (pre) out.push(["=", x.slice(0, pre).join("")]);
  const n = xs.length, m = ys.length;
  const push = (op, t) => {
    const last = out[out.length - 1];
    if (last && last[0] === op) last[1] += t; else out.push([op, t]);
  };
  if (n * m > 4000000) {
    // Too large for the table: one deletion and one insertion.
    if (n) out.push(["-", xs.join("")]);
    if (m) out.push(["+", ys.join("")]);
  } else {
    const w = m + 1;
    const L = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        L[i * w + j] = xs[i] === ys[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
      }
    }
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (xs[i] === ys[j]) { push("=", xs[i]); i++; j++; }
      else if (L[(i + 1) * w + j] >= L[i * w + j + 1]) { push("-", xs[i]); i++; }
      else { push("+", ys[j]); j++; }
    }
    while (i < n) { push("-", xs[i]); i++; }
    while (j < m) { push("+", ys[j]); j++; }
  }
  if (suf) push("=", x.slice(x.length - suf).join(""));
  return out;
}
