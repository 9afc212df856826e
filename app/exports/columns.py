"""The columns of each export schema: Arrow types (Parquet) and the descriptions the card prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from app.exports.schemas import Schema, Style

INT = pa.int64()
STR = pa.string()
FLOAT = pa.float64()
BOOL = pa.bool_()
MESSAGES = pa.list_(pa.struct([("role", STR), ("content", STR)]))


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: Any  # a pyarrow DataType
    doc: str


def _vote(*extra: tuple[str, Any]) -> Any:
    fields = [
        ("annotation_id", INT),
        ("source", STR),
        ("annotator_id", INT),
        ("judge", STR),
        ("judge_template_version", INT),
        *extra,
        ("created_at", STR),
    ]
    return pa.list_(pa.struct(fields))


ADJUDICATION = Column(
    "adjudication",
    STR,
    "when aggregation is adjudicated: the reviewer's decision as a JSON object in a string"
    " (decided_by: user id, decided_at: UTC, note); else null",
)
# Span and critique decisions may start from one annotation, kept or edited.
ADJUDICATION_BASED = Column(
    "adjudication",
    STR,
    "when aggregation is adjudicated: the reviewer's decision as a JSON object in a string"
    " (decided_by: user id, decided_at: UTC, note, from_annotation: the annotation the label"
    " started from or null when written anew, edited: whether it was changed from it); else null",
)
SPAN = pa.struct([("start", INT), ("end", INT), ("label", STR), ("comment", STR)])
MERGED_SPAN = pa.struct(
    [("start", INT), ("end", INT), ("label", STR), ("votes", INT), ("agreement", FLOAT)]
)
VOTE_DOC = (
    "one entry per vote: annotation_id, source (human|ai), annotator_id (pseudonymous user id,"
    " human votes), judge (AI votes: `judge:<name>`), judge_template_version (AI votes: the"
    " version of the judge prompt template it answered under), created_at (UTC), and"
)


def _item(*, gold: bool = True) -> list[Column]:
    cols = [
        Column("item_id", INT, "Tandem item id"),
        Column("external_id", STR, "the item's id in the imported file, if it had one"),
    ]
    if gold:
        cols.append(Column("is_gold", BOOL, "a gold (control) item"))
    cols.append(Column("metadata", STR, "the item's metadata, as a JSON object in a string"))
    return cols


def _text(style: Style, name: str, role: str, doc: str) -> Column:
    if style is Style.conversational:
        return Column(name, MESSAGES, f"{doc}, as chat messages [{{role: {role}, content}}]")
    return Column(name, STR, doc)


def _preference(style: Style) -> list[Column]:
    return [
        _text(style, "prompt", "user", "the prompt"),
        _text(style, "chosen", "assistant", "the preferred response"),
        _text(style, "rejected", "assistant", "the other response"),
        *_item(),
        Column("kind", STR, "the project kind the pair comes from: pairwise or ranking"),
        Column("chosen_id", INT, "response id of chosen"),
        Column("rejected_id", INT, "response id of rejected"),
        Column("chosen_model", STR, "model that wrote chosen"),
        Column("rejected_model", STR, "model that wrote rejected"),
        Column("chosen_rank", INT, "ranking items: 1-based rank of chosen in the order used"),
        Column("rejected_rank", INT, "ranking items: 1-based rank of rejected"),
        Column(
            "aggregation",
            STR,
            "majority (pairwise), borda (ranking), dawid_skene, adjudicated (a reviewer's final"
            " label) or none (one vote)",
        ),
        Column("n_votes", INT, "votes on this item after the filters"),
        Column("votes_chosen", INT, "votes preferring chosen"),
        Column("votes_rejected", INT, "votes preferring rejected"),
        Column("votes_tie", INT, "tie votes"),
        Column("agreement", FLOAT, "votes_chosen / n_votes"),
        Column(
            "votes",
            _vote(("choice", STR), ("strength", INT)),
            f"{VOTE_DOC} choice (chosen|rejected|tie) and strength (1..3, pairwise)",
        ),
        ADJUDICATION,
    ]


def _ranking() -> list[Column]:
    return [
        Column("prompt", STR, "the prompt"),
        Column("responses", pa.list_(STR), "response texts, in import order"),
        Column("response_ids", pa.list_(INT), "response ids, in import order"),
        Column("models", pa.list_(STR), "the model of each response"),
        Column("order", pa.list_(INT), "aggregated order, best first, as indices into responses"),
        Column("scores", pa.list_(INT), "Borda points of each response (import order)"),
        *_item(),
        Column(
            "aggregation",
            STR,
            "borda, adjudicated (a reviewer's order), or none (one row per vote)",
        ),
        Column("n_votes", INT, "votes on this item after the filters"),
        Column(
            "agreement",
            FLOAT,
            "mean over response pairs of the share of votes ordering the pair as `order` does",
        ),
        Column(
            "votes",
            _vote(("order", pa.list_(INT))),
            f"{VOTE_DOC} order (this vote's order, best first, indices into responses)",
        ),
        ADJUDICATION,
    ]


def _spans() -> list[Column]:
    return [
        Column("prompt", STR, "the prompt"),
        Column("response", STR, "the response text the spans point into"),
        Column("labels", pa.list_(STR), "the project's span labels"),
        Column(
            "spans",
            pa.list_(MERGED_SPAN),
            "merged spans [start, end) in Unicode code points, with votes and agreement",
        ),
        *_item(),
        Column("response_id", INT, "response id"),
        Column("model", STR, "model that wrote the response"),
        Column(
            "aggregation",
            STR,
            "overlap, adjudicated (a reviewer's final spans: `spans` holds them, each with the"
            " votes that marked any of it), or none (one row per vote)",
        ),
        Column("n_votes", INT, "votes on this response after the filters"),
        Column("agreement", FLOAT, "mean pairwise F1 of annotators' (code point, label) marks"),
        Column(
            "overall",
            FLOAT,
            "mean overall rating (1..7) of the votes that gave one (adjudicated: the reviewer's)",
        ),
        Column(
            "votes",
            _vote(("spans", pa.list_(SPAN)), ("overall", INT)),
            f"{VOTE_DOC} spans (start, end, label, comment) and overall (1..7)",
        ),
        ADJUDICATION_BASED,
    ]


def _critique() -> list[Column]:
    return [
        Column("prompt", STR, "the prompt"),
        Column("response", STR, "the response that was critiqued"),
        Column("critique", STR, "the critique (adjudicated: the reviewer's final one)"),
        Column("rewrite", STR, "the improved response, if given"),
        Column("rating", INT, "rating 1..7, if given"),
        *_item(),
        Column("response_id", INT, "response id"),
        Column("model", STR, "model that wrote the response"),
        Column(
            "annotation_id",
            INT,
            "annotation id (adjudicated: the annotation the reviewer started from, if any)",
        ),
        Column("source", STR, "human or ai (of that annotation)"),
        Column("annotator_id", INT, "pseudonymous user id (human)"),
        Column("judge", STR, "judge (ai): `judge:<name>`"),
        Column("judge_template_version", INT, "judge prompt template version (ai)"),
        Column("created_at", STR, "when the annotation was made (adjudicated: decided), UTC"),
        Column(
            "aggregation",
            STR,
            "none (one row per annotation) or adjudicated (the item's one row: a reviewer's"
            " final critique)",
        ),
        Column("n_votes", INT, "annotations of the item behind the row after the filters"),
        ADJUDICATION_BASED,
    ]


def _unpaired(style: Style) -> list[Column]:
    return [
        _text(style, "prompt", "user", "the prompt"),
        _text(style, "completion", "assistant", "a response"),
        Column("label", BOOL, "true: desirable, false: undesirable"),
        *_item(),
        Column("kind", STR, "the project kind the label comes from"),
        Column("response_id", INT, "response id"),
        Column("model", STR, "model that wrote the response"),
        Column("aggregation", STR, "majority, borda, mean, or none (one vote)"),
        Column("n_votes", INT, "votes behind the label"),
        Column("agreement", FLOAT, "share of those votes that support the label"),
        Column("rating", FLOAT, "mean rating (critique and span items)"),
        Column(
            "votes",
            _vote(("supports", BOOL), ("rating", INT)),
            f"{VOTE_DOC} supports (whether this vote agrees with label) and rating",
        ),
    ]


def _raw() -> list[Column]:
    response = pa.struct([("id", INT), ("external_id", STR), ("text", STR), ("model", STR)])
    return [
        Column("annotation_id", INT, "annotation id"),
        Column("project_id", INT, "project id"),
        Column("kind", STR, "pairwise, ranking, span or critique"),
        Column("item_id", INT, "item id"),
        Column("external_id", STR, "the item's id in the imported file"),
        Column("prompt", STR, "the prompt"),
        Column("responses", pa.list_(response), "the item's responses in import order"),
        Column("metadata", STR, "the item's metadata (JSON in a string)"),
        Column("priority", INT, "the item's priority"),
        Column("is_gold", BOOL, "a gold (control) item"),
        Column("gold_answer", STR, "expected answer of a gold item (JSON in a string)"),
        Column("source", STR, "human or ai"),
        Column("annotator_id", INT, "pseudonymous user id (human)"),
        Column("judge_id", INT, "judge id (ai)"),
        Column("judge", STR, "judge name (ai)"),
        Column("payload", STR, "the annotation as stored, responses by id (JSON in a string)"),
        Column("shown_order", pa.list_(INT), "response ids in the order they were shown"),
        Column("schema_version", INT, "payload schema version"),
        Column("time_spent_ms", INT, "time the annotator spent"),
        Column("over_quota", BOOL, "a late submit beyond the item's overlap"),
        Column("gold_score", FLOAT, "agreement with the gold answer (gold items)"),
        Column("assignment_id", INT, "the assignment it answered"),
        Column("client_submission_id", STR, "the browser's id for the submission (retries)"),
        Column("created_at", STR, "when it was made (UTC)"),
        # The judge's provenance of an AI vote (its judge output); null on human rows.
        Column("judge_model", STR, "AI: the model the judge's backend said answered"),
        Column("judge_template_id", INT, "AI: the judge prompt template's id"),
        Column("judge_template_version", INT, "AI: that template's version"),
        Column(
            "judge_probability",
            FLOAT,
            "AI: pairwise, P(the first imported response is better); else the judge's"
            " confidence when known",
        ),
        Column("judge_consistent", BOOL, "AI, pairwise: whether both shown orders agreed"),
        Column("judge_tokens_in", INT, "AI: prompt tokens of the judge's calls"),
        Column("judge_tokens_out", INT, "AI: completion tokens of the judge's calls"),
        Column("judge_latency_s", FLOAT, "AI: seconds the judge's calls took"),
        Column("judge_cost", FLOAT, "AI: cost of the judge's calls (the judge's cost units)"),
        Column(
            "judge_raw",
            STR,
            "AI: the judge's raw answers, one per call (pairwise: both orders), as a JSON array"
            " in a string: shown (response ids in shown order), text, finish_reason, tokens_in,"
            " tokens_out, latency_s, logprobs (when the backend gave them)",
        ),
    ]


def columns(schema: Schema, style: Style) -> list[Column]:
    if schema is Schema.preference:
        return _preference(style)
    if schema is Schema.unpaired:
        return _unpaired(style)
    return {
        Schema.ranking: _ranking,
        Schema.spans: _spans,
        Schema.critique: _critique,
        Schema.raw: _raw,
    }[schema]()


def arrow_schema(schema: Schema, style: Style) -> Any:
    """The Parquet file's schema (a pyarrow.Schema), tagged with the export schema's name."""
    return pa.schema(
        [pa.field(c.name, c.type) for c in columns(schema, style)],
        metadata={"tandem.schema": schema.value, "tandem.style": style.value},
    )


def _hf_type(arrow_type: Any) -> dict[str, Any]:
    """A column type as the `dataset_info.features` YAML of a Hugging Face dataset card."""
    if pa.types.is_list(arrow_type):
        inner = arrow_type.value_type
        if pa.types.is_struct(inner):
            return {"list": [_hf_field(f.name, f.type) for f in inner]}
        return {"list": _hf_type(inner)["dtype"]}
    if pa.types.is_struct(arrow_type):
        return {"struct": [_hf_field(f.name, f.type) for f in arrow_type]}
    names = {INT: "int64", STR: "string", FLOAT: "float64", BOOL: "bool"}
    return {"dtype": names[arrow_type]}


def _hf_field(name: str, arrow_type: Any) -> dict[str, Any]:
    return {"name": name, **_hf_type(arrow_type)}


def hf_features(schema: Schema, style: Style) -> list[dict[str, Any]]:
    """The columns as `datasets` features: a card carrying them loads with exact types."""
    return [_hf_field(c.name, c.type) for c in columns(schema, style)]
