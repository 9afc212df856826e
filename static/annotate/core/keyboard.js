/* Keyboard plumbing shared by the workspaces: which targets take typing, and digit keys. */

// True when the key event's target is where the person types text (keys must not act there).
export function typing(t) {
  if (!t || !t.tagName) return false;
  const tag = t.tagName;
  return tag === "TEXTAREA" || tag === "SELECT" ||
    (tag === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(t.type)) || t.isContentEditable;
}

// The digit a key event stands for ("1" -> 1, "0" -> 0), or null; Alt/Ctrl/Meta chords are not digits.
export function digit(e) {
  if (e.altKey || e.ctrlKey || e.metaKey || !/^[0-9]$/.test(e.key)) return null;
  return Number(e.key);
}
