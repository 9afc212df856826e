"""How a simulated annotator decides: configured accuracy, agreement, biases, skips, think time.

The model (AlpacaFarm-style, and the same shape as the `simulated` judge backend):

* Each item has an easiness e = (1 - difficulty) times the configured effect of each of its
  categories (e.g. safety=moderate: 0.8), at most 1. Annotator a has a knowledge k_a. On an
  item a is *sure* with probability s = min(1, k_a * e) and answers the truth; otherwise a
  *guesses*: with weight |2 * position_bias - 1| the order shown (first shown best; reversed
  when position_bias < 0.5), with weight |2 * length_bias - 1| by length (longer first; shorter
  when length_bias < 0.5), else a uniformly random order. Among wrong pairwise answers the
  share that went to the first shown response is position_bias, and where length says
  nothing of the truth the share that went to the longer one is length_bias, as for the judge.
* Knowledge k_a = K * m_a: the multipliers m_a are the normal quantiles of the panel (mean 1,
  relative sd `spread`), shuffled by the seed, so the panel's mean is exact whatever its size.
  K is calibrated (bisection) so that the panel's expected accuracy (pairwise: share right;
  ranking: share of response pairs ordered right) or its expected agreement between two
  annotators on an item equals the configured target, over the items the truth describes.
  Two annotators are independent given the item, so on a pair of responses they agree with
  probability p_a * p_b + (1 - p_a) * (1 - p_b), p being each one's chance to order it right:
  agreement 0.66 needs p near 0.78 when every item is alike, more when items vary.
* Skips: each task is skipped with probability `skip_rate`. Think time: lognormal around
  `think_seconds` (sigma `think_sigma`), times the annotator's speed (lognormal, sigma 0.3)
  and 0.75 + difficulty / 2; the wait is `time_scale` times it (0 in tests).

Every draw is seeded by (seed, annotator, item), so an annotator answers an item the same way
whenever and in whatever order it is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.errors import Invalid
from app.simulate.draws import Draws

Probability = Annotated[float, Field(ge=0, le=1)]
CALIBRATION_PAIRS = 2000  # response pairs of the truth used to calibrate K: plenty for 3 decimals


class AnnotatorConfig(BaseModel):
    """How a panel of simulated annotators behaves (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: Annotated[float, Field(gt=0.5, le=1)] | None = None
    agreement: Annotated[float, Field(gt=0.5, le=1)] | None = None
    spread: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    position_bias: Probability = 0.5
    length_bias: Probability = 0.5
    skip_rate: Annotated[float, Field(ge=0, le=0.9)] = 0.0
    think_seconds: Annotated[float, Field(ge=0, le=3600)] = 20.0
    think_sigma: Annotated[float, Field(ge=0, le=2)] = 0.5
    time_scale: Annotated[float, Field(ge=0, le=100)] = 1.0
    max_tasks: Annotated[int, Field(ge=1)] | None = None  # per annotator (submits + skips)
    max_seconds: Annotated[float, Field(gt=0)] | None = None  # for the whole run
    # Category -> level -> multiplier of easiness (below 1: harder for these annotators).
    effects: dict[str, dict[str, Annotated[float, Field(ge=0, le=10)]]] = Field(
        default_factory=dict
    )
    seed: int = 0

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.accuracy is not None and self.agreement is not None:
            raise ValueError("give accuracy or agreement, not both")
        if abs(2 * self.position_bias - 1) + abs(2 * self.length_bias - 1) > 1 + 1e-9:
            raise ValueError(
                "position_bias and length_bias together leave no room: "
                "|2*position_bias - 1| + |2*length_bias - 1| must be at most 1"
            )
        return self

    @property
    def target(self) -> tuple[str, float]:
        if self.accuracy is not None:
            return "accuracy", self.accuracy
        return "agreement", 0.66 if self.agreement is None else self.agreement


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the calibration needs of one item: its difficulty, categories, and for each pair of
    its responses (better, worse) their lengths in characters."""

    difficulty: float
    categories: Mapping[str, str]
    pair_lengths: Sequence[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What an annotator knows of a task: the truth over the responses as shown."""

    order: list[int]  # shown response ids, best first
    difficulty: float
    categories: Mapping[str, str]
    lengths: Mapping[int, int]  # shown response id -> characters


@dataclass(frozen=True, slots=True)
class Decision:
    skip: bool
    order: list[int]  # response ids, best first (empty for a skip)
    sure: bool
    think_s: float  # simulated time on the task (unscaled)
    expected_accuracy: float  # chance of each pair being ordered right, averaged
    expected_first: float | None  # pairwise: chance of choosing the response shown first


@dataclass(frozen=True, slots=True)
class Profile:
    index: int
    knowledge: float
    speed: float
    expected_accuracy: float  # over the calibration items


def _guess_weights(config: AnnotatorConfig) -> tuple[float, float]:
    return abs(2 * config.position_bias - 1), abs(2 * config.length_bias - 1)


def _length_right(config: AnnotatorConfig, better_chars: int, worse_chars: int) -> float:
    """Chance that a guess by length orders a pair right, given the two responses' lengths."""
    if better_chars == worse_chars:
        return 0.5
    longer_first = config.length_bias >= 0.5
    return 1.0 if (better_chars > worse_chars) == longer_first else 0.0


def easiness(config: AnnotatorConfig, difficulty: float, categories: Mapping[str, str]) -> float:
    e = 1.0 - difficulty
    for key, level in categories.items():
        e *= config.effects.get(key, {}).get(level, 1.0)
    return min(1.0, max(0.0, e))


def multipliers(config: AnnotatorConfig, count: int) -> list[float]:
    """Each annotator's share of the panel's knowledge: normal quantiles, mean 1."""
    normal = NormalDist()
    z = [normal.inv_cdf((j + 0.5) / count) for j in range(count)]
    z = Draws(config.seed, "panel").shuffled(z)
    return [max(0.05, 1.0 + config.spread * v) for v in z]


class Panel:
    """N calibrated annotators: profiles, and the decision each makes on a task."""

    def __init__(self, config: AnnotatorConfig, profiles: list[Profile], scale: float) -> None:
        self.config = config
        self.profiles = profiles
        self.scale = scale  # K

    @classmethod
    def calibrate(cls, config: AnnotatorConfig, items: Sequence[ItemFacts], count: int) -> Panel:
        if count < 1:
            raise Invalid("A panel needs at least one annotator.")
        if not items:
            raise Invalid("There are no items to calibrate the annotators on.")
        units = _units(config, calibration_sample(items))
        m = multipliers(config, count)
        measure, target = config.target

        def value(k: float) -> float:
            return _expected(units, [k * x for x in m], measure)

        floor = value(0.0)
        if floor > target + 1e-9:
            raise Invalid(
                f"An {measure} of {target} is below what guessing alone gives on these items"
                f" ({floor:.3f}, with these position and length biases): ask for more."
            )
        low, high = 0.0, 1.0
        while value(high) < target:
            if high > 1e6:
                best = value(high)
                raise Invalid(
                    f"An {measure} of {target} cannot be reached on these items: at most "
                    f"{best:.3f} (their easiness, after category effects, is too low)."
                )
            low, high = high, high * 2
        for _ in range(40):
            mid = (low + high) / 2
            if value(mid) < target:
                low = mid
            else:
                high = mid
        scale = (low + high) / 2
        profiles = [
            Profile(
                index=a,
                knowledge=scale * m[a],
                speed=Draws(config.seed, "speed", a).lognormal(1.0, 0.3),
                expected_accuracy=_expected(units, [scale * m[a]], "accuracy"),
            )
            for a in range(count)
        ]
        return cls(config, profiles, scale)

    def expected(self, items: Sequence[ItemFacts]) -> dict[str, float]:
        """The panel's expected accuracy and pairwise agreement over these items."""
        units = _units(self.config, calibration_sample(items))
        k = [p.knowledge for p in self.profiles]
        return {
            "accuracy": _expected(units, k, "accuracy"),
            "agreement": _expected(units, k, "agreement"),
        }

    def decide(self, annotator: int, key: str, shown: Sequence[int], facts: Knowledge) -> Decision:
        """The annotator's answer to a task whose responses were shown in `shown` order."""
        config = self.config
        profile = self.profiles[annotator]
        draws = Draws(config.seed, "decide", annotator, key)
        think = Draws(config.seed, "think", annotator, key).lognormal(1.0, config.think_sigma)
        think_s = config.think_seconds * profile.speed * think * (0.75 + facts.difficulty / 2)
        s = min(1.0, profile.knowledge * easiness(config, facts.difficulty, facts.categories))
        expected_accuracy, expected_first = self._expectations(s, shown, facts)
        if draws.chance(config.skip_rate):
            return Decision(True, [], False, think_s, expected_accuracy, expected_first)
        sure = draws.chance(s)
        order = list(facts.order) if sure else self._guess(draws, shown, facts)
        return Decision(False, order, sure, think_s, expected_accuracy, expected_first)

    def _guess(self, draws: Draws, shown: Sequence[int], facts: Knowledge) -> list[int]:
        config = self.config
        positional, lengthwise = _guess_weights(config)
        u = draws.uniform()
        if u < positional:
            return list(shown) if config.position_bias >= 0.5 else list(reversed(shown))
        if u < positional + lengthwise:
            sign = -1 if config.length_bias >= 0.5 else 1
            ties = {rid: draws.uniform() for rid in facts.order}  # equal lengths: random order
            return sorted(shown, key=lambda rid: (sign * facts.lengths[rid], ties[rid]))
        # A random order drawn from the true order, not the shown one: the server shuffles each
        # assignment, and the answer must not depend on that shuffle (only a position bias may).
        return draws.shuffled(list(facts.order))

    def _expectations(
        self, s: float, shown: Sequence[int], facts: Knowledge
    ) -> tuple[float, float | None]:
        config = self.config
        positional, lengthwise = _guess_weights(config)
        rest = 1.0 - positional - lengthwise
        rank = {rid: n for n, rid in enumerate(facts.order)}
        place = {rid: n for n, rid in enumerate(shown)}
        right = 0.0
        pairs = 0
        for i, x in enumerate(facts.order):
            for y in facts.order[i + 1 :]:  # x is better than y
                shown_right = place[x] < place[y]
                position_right = shown_right if config.position_bias >= 0.5 else not shown_right
                guess = (
                    positional * position_right
                    + lengthwise * _length_right(config, facts.lengths[x], facts.lengths[y])
                    + rest * 0.5
                )
                right += s + (1 - s) * guess
                pairs += 1
        accuracy = right / pairs if pairs else 1.0
        if len(shown) != 2:
            return accuracy, None
        first, second = shown
        best_first = rank[first] < rank[second]
        by_position = 1.0 if config.position_bias >= 0.5 else 0.0
        len_first, len_second = facts.lengths[first], facts.lengths[second]
        if len_first == len_second:
            by_length = 0.5
        else:
            by_length = float((len_first > len_second) == (config.length_bias >= 0.5))
        guess_first = positional * by_position + lengthwise * by_length + rest * 0.5
        return accuracy, s * best_first + (1 - s) * guess_first


# -- calibration arithmetic ------------------------------------------------------------------


def calibration_sample(items: Sequence[ItemFacts]) -> Sequence[ItemFacts]:
    """Every k-th item, so that about CALIBRATION_PAIRS response pairs are used."""
    pairs = sum(len(i.pair_lengths) for i in items)
    return items[:: max(1, pairs // CALIBRATION_PAIRS)]


@dataclass(frozen=True, slots=True)
class _Unit:
    """Pairs of responses alike to the model: easiness, a guess's chance to order them right,
    and how many pairs there are."""

    easiness: float
    guess_right: float
    weight: int


def _units(config: AnnotatorConfig, items: Sequence[ItemFacts]) -> list[_Unit]:
    positional, lengthwise = _guess_weights(config)
    rest = 1.0 - positional - lengthwise
    counts: dict[tuple[float, float], int] = {}
    for item in items:
        # Easiness to 3 decimals: pairs alike are counted once, with their number.
        e = round(easiness(config, item.difficulty, item.categories), 3)
        for better, worse in item.pair_lengths:
            # The shown order is a fresh shuffle: a positional guess is right half the time.
            guess = (positional + rest) * 0.5 + lengthwise * _length_right(config, better, worse)
            counts[(e, guess)] = counts.get((e, guess), 0) + 1
    return [_Unit(e, g, n) for (e, g), n in counts.items()]


def _expected(units: Sequence[_Unit], knowledge: Sequence[float], measure: str) -> float:
    """Mean over pairs of the panel's accuracy, or of agreement between two of its annotators
    (an annotator alone is compared with an independent copy of itself)."""
    n = len(knowledge)
    total = 0.0
    weights = 0
    for u in units:
        sure = [min(1.0, k * u.easiness) for k in knowledge]
        ps = [s + (1 - s) * u.guess_right for s in sure]
        weights += u.weight
        if measure == "accuracy":
            total += u.weight * sum(ps) / n
            continue
        qs = [1 - p for p in ps]
        if n == 1:
            total += u.weight * (ps[0] ** 2 + qs[0] ** 2)
            continue
        s1, s2 = sum(ps), sum(p * p for p in ps)
        q1, q2 = sum(qs), sum(q * q for q in qs)
        total += u.weight * (s1 * s1 - s2 + q1 * q1 - q2) / (n * (n - 1))
    return total / weights
