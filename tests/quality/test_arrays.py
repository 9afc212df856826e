import numpy as np
import pytest

from app.quality.arrays import codes, ints, row_keys, same_length
from app.quality.kappa import rater_pair_kappas
from app.quality.spans import SpanTable, span_agreement


@pytest.mark.parametrize("huge", [False, True])
def test_row_keys_sort_like_the_rows(huge: bool) -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(-5, 5, 500)
    b = rng.integers(0, 3, 500) * ((1 << 40) if huge else 1)  # huge: packing would overflow
    c = rng.integers(0, 1000, 500)
    keys = row_keys(a, b, c)
    rows = list(zip(a.tolist(), b.tolist(), c.tolist(), strict=True))
    order = np.argsort(keys, kind="stable")
    assert [rows[i] for i in order] == sorted(rows)
    assert len(np.unique(keys)) == len(set(rows))


def test_checks_name_the_argument() -> None:
    with pytest.raises(ValueError, match="items must hold integers"):
        ints([1.5], "items")
    with pytest.raises(ValueError, match="labels must be codes from 0 to 2"):
        codes([3], 3)
    with pytest.raises(ValueError, match="items=2, labels=1"):
        same_length(items=np.zeros(2), labels=np.zeros(1))


def test_empty_inputs_give_empty_answers() -> None:
    pairs = rater_pair_kappas([], [], [], 2)
    assert len(pairs.n) == 0 and pairs.as_rows() == []
    assert span_agreement(SpanTable.from_annotations([])).value is None
