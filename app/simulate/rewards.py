"""Gold rewards: fixed, deterministic scoring functions of a response that a policy cannot see.

AlpacaFarm-style simulation needs a hidden "true" preference that a policy can learn to please
only through the labels it gets. Each reward here is a weighted mix of plain text features,
each in [0, 1], so the score is in [0, 1] too:

* `length`: closeness of the word count to a target, exp(-ln(words+1 / target+1)^2 / (2 * 0.5^2))
  (1 at the target, about 0.6 at 1.65 times or 0.6 times it);
* `keywords`: the share of the reward's keyword set the response uses (whole words, any case);
* `prompt_terms`: the share of the prompt's content words (4+ letters, not stop words, the first
  8 distinct) the response uses: staying on topic;
* `politeness`: distinct politeness markers used ("please", "thank you", "happy to help", ...),
  two or more give 1;
* `no_forbidden`: 1 without any forbidden phrase, halved for each distinct one used.

Registered rewards are named (`get_reward("polite_concise")`) and versioned: a change to one
must bump its version, because truth files and loop results record `name@version`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from app.errors import Invalid

_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    (
        "about",
        "above",
        "after",
        "again",
        "against",
        "also",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "could",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "from",
        "further",
        "have",
        "having",
        "here",
        "into",
        "itself",
        "just",
        "more",
        "most",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "under",
        "until",
        "very",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "with",
        "would",
        "your",
        "yours",
        "you're",
        "please",
        "explain",
        "write",
        "give",
        "tell",
        "describe",
        "want",
        "need",
        "make",
        "know",
        "like",
        "using",
        "best",
        "good",
        "way",
    )
)
POLITENESS_MARKERS = (
    "please",
    "thank you",
    "thanks",
    "happy to help",
    "glad to help",
    "hope this helps",
    "you're welcome",
    "good luck",
)
LENGTH_WIDTH = 0.5  # in natural log units of the word count


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _has_phrase(text_words: list[str], joined: str, phrase: str) -> bool:
    parts = phrase.split()
    if len(parts) == 1:
        return phrase in text_words
    return f" {phrase} " in joined


def length_feature(text_words: list[str], target: int) -> float:
    ratio = math.log((len(text_words) + 1) / (target + 1))
    return math.exp(-(ratio**2) / (2 * LENGTH_WIDTH**2))


def share_used(text_words: list[str], joined: str, phrases: tuple[str, ...]) -> float:
    if not phrases:
        return 1.0
    return sum(_has_phrase(text_words, joined, p) for p in phrases) / len(phrases)


def prompt_terms(prompt: str, limit: int = 8) -> tuple[str, ...]:
    """The prompt's content words, in order of first use."""
    seen: dict[str, None] = {}
    for w in words(prompt):
        if len(w) >= 4 and w not in _STOP and not w.isdigit():
            seen.setdefault(w, None)
        if len(seen) >= limit:
            break
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class GoldReward:
    """A named score of (prompt, response) in [0, 1]; see the module docstring for features."""

    name: str
    version: int
    description: str
    weights: Mapping[str, float]
    target_words: int = 60
    keywords: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    politeness: tuple[str, ...] = field(default=POLITENESS_MARKERS)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def features(self, prompt: str, response: str) -> dict[str, float]:
        text_words = words(response)
        joined = f" {' '.join(text_words)} "
        found: dict[str, Callable[[], float]] = {
            "length": lambda: length_feature(text_words, self.target_words),
            "keywords": lambda: share_used(text_words, joined, self.keywords),
            "prompt_terms": lambda: share_used(text_words, joined, prompt_terms(prompt)),
            "politeness": lambda: min(
                1.0, sum(_has_phrase(text_words, joined, p) for p in self.politeness) / 2
            ),
            "no_forbidden": lambda: (
                0.5 ** sum(_has_phrase(text_words, joined, p) for p in self.forbidden)
            ),
        }
        return {name: found[name]() for name in self.weights}

    def score(self, prompt: str, response: str) -> float:
        feats = self.features(prompt, response)
        return round(sum(self.weights[k] * v for k, v in feats.items()), 6)


FEATURES = ("length", "keywords", "prompt_terms", "politeness", "no_forbidden")
_RUDE = ("obviously", "stupid", "whatever", "just google it", "idiot", "shut up", "as an ai")

REWARDS: dict[str, GoldReward] = {
    r.name: r
    for r in (
        GoldReward(
            name="polite_concise",
            version=1,
            description="Polite and short: politeness markers, about 30 words, nothing rude.",
            weights={"politeness": 0.4, "length": 0.35, "no_forbidden": 0.25},
            target_words=30,
            forbidden=_RUDE,
        ),
        GoldReward(
            name="on_topic",
            version=1,
            description="Stays on the prompt's topic at about 80 words, politely, nothing rude.",
            weights={"prompt_terms": 0.45, "length": 0.3, "politeness": 0.1, "no_forbidden": 0.15},
            target_words=80,
            forbidden=_RUDE,
        ),
        GoldReward(
            name="structured",
            version=1,
            description="Explains in steps with an example: keyword set, about 60 words.",
            weights={"keywords": 0.5, "length": 0.3, "no_forbidden": 0.2},
            target_words=60,
            keywords=("first", "then", "because", "example", "finally"),
            forbidden=_RUDE,
        ),
    )
}


def get_reward(name: str) -> GoldReward:
    reward = REWARDS.get(name.split("@", 1)[0])
    if reward is None:
        raise Invalid(f"Unknown reward {name!r}; the rewards are: {', '.join(sorted(REWARDS))}.")
    if "@" in name and name.split("@", 1)[1] != str(reward.version):
        raise Invalid(f"Reward {name!r}: this version of Tandem has {reward.label}.")
    return reward
