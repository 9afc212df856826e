"""The dataset card (README.md) written beside a snapshot: counts, balance, agreement, schema."""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.exports.columns import columns, hf_features
from app.exports.schemas import Schema, Style

AGGREGATION = {
    Schema.preference: (
        "Pairwise items: majority vote over {first response, second response, tie}; the item is"
        " a tie (left out, counted under excluded.tie) when both responses got as many votes or"
        " when tie votes outnumber each response's votes. `agreement` = votes for chosen /"
        " all votes. Ranking items: the annotators' orders are aggregated by Borda count"
        " (k-1 points for first place down to 0), then expanded to pairs of the aggregated order"
        " (`pairs`: all, adjacent, best_vs_rest); pairs with equal Borda points are left out as"
        " ties, and a pair's agreement is the share of votes that order it the same way."
        " With aggregate=none every vote is a row of its own; with aggregate=dawid_skene"
        " (pairwise) an item's label is its Dawid-Skene estimate, voters weighted by their"
        " estimated confusion matrices. An item a reviewer adjudicated takes the reviewer's"
        " label (aggregation `adjudicated`, provenance in `adjudication`), whatever its"
        " agreement."
    ),
    Schema.ranking: (
        "Borda count over the annotators' orders (k-1 points for first place down to 0); equal"
        " points keep the import order. `agreement` is the mean, over response pairs, of the"
        " share of votes ordering the pair as the aggregated order does. An item a reviewer"
        " adjudicated takes the reviewer's order (aggregation `adjudicated`, provenance in"
        " `adjudication`), whatever its agreement."
    ),
    Schema.spans: (
        "Spans are merged per label where they overlap: a code point belongs to a merged span of"
        " label L when at least `span_threshold` of the response's annotators (and at least one)"
        " marked it with L; each merged span keeps the largest number of annotators behind any"
        " of its code points (`votes`). Offsets count Unicode code points (Python `str` indices),"
        " not bytes or UTF-16 units. `agreement` is the mean pairwise F1 of the annotators'"
        " (code point, label) marks. An item a reviewer adjudicated takes the reviewer's spans"
        " (aggregation `adjudicated`; each span's `votes` counts the annotators who marked any"
        " of it with its label; provenance in `adjudication`), whatever its agreement."
    ),
    Schema.critique: (
        "One row per annotation: critiques are free text and are not aggregated. An item a"
        " reviewer adjudicated is one row instead, the reviewer's final critique, rewrite and"
        " rating (aggregation `adjudicated`, provenance in `adjudication`); aggregate=none"
        " keeps every annotation."
    ),
    Schema.unpaired: (
        "Pairwise items: the majority winner is labelled true and the loser false (ties left"
        " out). Ranking items: the Borda winner true and the Borda last false. Critique and span"
        " items: the mean rating (critique `rating`, span `overall`) above `rating_threshold` is"
        " true, below it false, equal to it left out. With aggregate=none each vote stands alone."
    ),
    Schema.raw: "Every annotation as stored, one per row; nothing is aggregated.",
}

TRAINING = {
    Schema.preference: (
        "from trl import DPOConfig, DPOTrainer  # or RewardConfig, RewardTrainer\n"
        "trainer = DPOTrainer(model=model, args=DPOConfig(output_dir='out'),\n"
        "                     train_dataset=ds, processing_class=tokenizer)"
    ),
    Schema.unpaired: (
        "from trl import KTOConfig, KTOTrainer\n"
        "trainer = KTOTrainer(model=model, args=KTOConfig(output_dir='out'),\n"
        "                     train_dataset=ds, processing_class=tokenizer)"
    ),
}


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


def _scalar(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return orjson.dumps(value).decode()  # JSON scalars are YAML scalars


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML for the card's front matter (dicts, lists and scalars)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{key}:")
                lines += _yaml(v, indent + 2 if isinstance(v, dict) else indent)
            else:
                lines.append(f"{pad}{key}: {_scalar(v)}")
        return lines
    for v in value:
        if isinstance(v, dict):
            sub = _yaml(v, indent + 2)
            lines += [f"{pad}- {sub[0].lstrip()}", *sub[1:]]
        else:
            lines.append(f"{pad}- {_scalar(v)}")
    return lines


def front_matter(manifest: dict[str, Any]) -> list[str]:
    """Hugging Face card metadata: the data file and its exact column types."""
    schema = Schema(manifest["schema"])
    style = Style(manifest["options"].get("style", "standard"))
    meta = {
        "pretty_name": f"{manifest['project']['name']} ({schema.value})",
        "tags": ["tandem", "human-feedback", schema.value],
        "configs": [{"config_name": "default", "data_files": manifest["file"]["name"]}],
        "dataset_info": {"features": hf_features(schema, style)},
    }
    return ["---", *_yaml(meta), "---"]


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _type_name(arrow_type: Any) -> str:
    return str(arrow_type).replace("<item: ", "<").replace("element: ", "")


def render(manifest: dict[str, Any]) -> str:
    schema = Schema(manifest["schema"])
    style = Style(manifest["options"].get("style", "standard"))
    project = manifest["project"]
    counts = manifest["counts"]
    file_name = manifest["file"]["name"]
    loader = "parquet" if manifest["format"] == "parquet" else "json"
    out = [
        *front_matter(manifest),
        "",
        f"# {project['name']}: `{schema.value}` export",
        "",
        f"Exported by Tandem {manifest['tandem_version']} from project {project['id']}"
        f" ({project['kind']}) as export {manifest['export_id']}, {manifest['format']},"
        f" {manifest['file']['bytes']} bytes, sha256 `{manifest['file']['sha256']}`.",
        f"Read from one database snapshot taken at {manifest['snapshot']['taken_at']};"
        f" the highest annotation id included is {manifest['snapshot']['highest_annotation_id']}.",
        *(
            ["", f"**This export is empty.** {manifest['empty_reason']}"]
            if manifest.get("empty_reason")
            else []
        ),
        "",
        "## Contents",
        "",
        *_table(
            ("", "count"),
            [
                ("rows", counts["rows"]),
                ("items", counts["items"]),
                ("items with votes (after filters)", counts["items_with_votes"]),
                ("votes", counts["votes"]),
                *[(f"votes from {k}", v) for k, v in counts["votes_by_source"].items()],
                ("human annotators", counts["annotators"]),
                ("AI judges", counts["judges"]),
                *[(f"left out: {k}", v) for k, v in counts["excluded"].items()],
            ],
        ),
        "",
        "## Label balance",
        "",
        *_table(("", "count"), list(counts["balance"].items())),
        "",
        "## Agreement",
        "",
        f"Mean agreement per row: {counts['agreement']['mean']}.",
        "",
        *_table(("agreement", "rows"), list(counts["agreement"]["histogram"].items())),
        "",
        *_table(("votes per row", "rows"), list(counts["votes_per_row"].items())),
        "",
        "## How rows are aggregated",
        "",
        AGGREGATION[schema],
        "",
        "## Filters and options",
        "",
        *_table(("option", "value"), list(manifest["options"].items())),
        "",
        "## Columns",
        "",
        *_table(
            ("column", "type", "meaning"),
            [(c.name, _type_name(c.type), c.doc) for c in columns(schema, style)],
        ),
        "",
        "Annotator ids are Tandem user ids (pseudonymous; no emails are exported). Judges are",
        "named by Tandem judge id. Timestamps are UTC.",
        "",
        "## Loading",
        "",
        "Load this folder to get the column types above (a large JSONL file whose first rows",
        "have only nulls in a column cannot be typed by `datasets` from the data alone):",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder", split="train")',
        f'# or the file alone: load_dataset("{loader}", data_files="{file_name}", split="train")',
    ]
    if schema in TRAINING:
        out.append(TRAINING[schema])
    out += ["```", ""]
    return "\n".join(out)
