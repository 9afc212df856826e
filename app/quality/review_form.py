"""The review page's side of adjudication: its form read into a service Decision, and span
items shown as people read them (marked text, editable `start-end label` lines).

Pages have no script: spans are edited as lines of text, one span a line, each followed by a
comment quoting the text it covers (ignored when read back), so a reviewer sees what a range
holds while adjusting it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import Invalid
from app.quality import aggregate as agg
from app.quality.service import Decision
from app.validation import storable_text

_LINE = re.compile(r"(\d{1,12})\s*-\s*(\d{1,12})\s+(\S(?:.*\S)?)")
QUOTE_CHARS = 48
MAX_CRITIQUE = 50_000
MAX_REWRITE = 200_000
RESPONSE = "a response id"


def _int(value: Any, what: str, noun: str = "a number") -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Invalid(f"{what}: {value!r} is not {noun}.") from None
    if not 1 <= number <= 2**63 - 1:
        raise Invalid(f"{what}: {value!r} is not {noun}.")
    return number


def _text(value: Any, what: str, limit: int) -> str:
    out = str(value or "")
    if len(out) > limit:
        raise Invalid(f"{what}: at most {limit:,} characters.")
    try:
        return storable_text(out)
    except ValueError as exc:
        raise Invalid(f"{what}: {exc}.") from None


def _rating(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    number = _int(value, what)
    if not 1 <= number <= 7:
        raise Invalid(f"{what}: a rating is 1 to 7.")
    return number


def parse_spans(value: Any) -> list[dict[str, Any]]:
    """`start-end label` per line; ` #` starts a comment; blank lines are skipped."""
    spans = []
    for n, raw in enumerate(_text(value, "spans", 200_000).splitlines(), start=1):
        # A comment starts at a `#` after whitespace: a label may hold `#` (not " #").
        line = re.split(r"\s#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise Invalid(f"spans, line {n}: write `start-end label` (e.g. `12-30 unsupported`).")
        spans.append({"start": int(m[1]), "end": int(m[2]), "label": m[3]})
    return spans


def decision(form: Mapping[str, Any]) -> Decision:
    """The pressed button says what was decided: `from_annotation` (keep that annotation's
    label), `save=edited` (the spans as edited), `save=written` (the critique as written), or
    pairwise `preferred`/`tie` and ranking `order`."""
    if form.get("from_annotation"):
        picked = _int(form["from_annotation"], "from_annotation", "an annotation id")
        return Decision(from_annotation=picked)
    save = form.get("save")
    if save == "edited":
        return Decision(
            spans=parse_spans(form.get("spans")), overall=_rating(form.get("overall"), "overall")
        )
    if save == "written":
        rewrite = _text(form.get("rewrite"), "rewrite", MAX_REWRITE).strip()
        return Decision(
            critique=_text(form.get("critique"), "critique", MAX_CRITIQUE).strip(),
            rewrite=rewrite or None,
            rating=_rating(form.get("rating"), "rating"),
        )
    if save not in (None, ""):
        raise Invalid(f"save: {save!r} is not a way to decide (edited or written).")
    order = form.get("order")
    return Decision(
        preferred=_int(form["preferred"], "preferred", RESPONSE) if form.get("preferred") else None,
        tie=_flag(form.get("tie")),
        order=[_int(x, "order", RESPONSE) for x in str(order).split(",")] if order else None,
    )


def _flag(value: Any) -> bool:
    if value in (None, ""):
        return False
    if value in ("1", "on", "true"):
        return True
    raise Invalid("tie: send 1 to record a tie.")


def note(value: Any) -> str:
    return _text(value, "note", 2_000)


# --- showing spans ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    labels: tuple[str, ...]  # the labels marking this stretch (none: plain text)


def segments(text: str, spans: Sequence[Mapping[str, Any]]) -> list[Segment]:
    """The text cut at every span boundary, each piece with the labels covering it."""
    cuts = sorted({0, len(text), *(s["start"] for s in spans), *(s["end"] for s in spans)})
    out = []
    for start, end in itertools.pairwise(cuts):
        if end > len(text) or start >= end:
            continue
        labels = tuple(sorted({s["label"] for s in spans if s["start"] < end and start < s["end"]}))
        out.append(Segment(text[start:end], labels))
    return out


def _quote(text: str, span: Mapping[str, Any]) -> str:
    piece = " ".join(text[span["start"] : span["end"]].split())
    return piece if len(piece) <= QUOTE_CHARS else piece[: QUOTE_CHARS - 1] + "…"


def span_lines(text: str, spans: Sequence[Mapping[str, Any]]) -> str:
    """Spans as the editable lines parse_spans reads back."""
    return "\n".join(f'{s["start"]}-{s["end"]} {s["label"]}  # "{_quote(text, s)}"' for s in spans)


def starting_spans(annotations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the edit box starts from: the spans at least half the annotators marked."""
    return agg.merge_spans([a.get("spans") or [] for a in annotations], 0.5)
