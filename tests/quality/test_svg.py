import xml.etree.ElementTree as ET

import pytest

from app.quality.svg import (
    IntervalRow,
    ReliabilityPoint,
    Series,
    bar_chart,
    fmt,
    interval_chart,
    line_chart,
    nice_ticks,
    reliability_diagram,
)

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "quotes"'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def elements(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    found = root.iter(f"{NS}{tag}")
    return [e for e in found if cls is None or cls in e.get("class", "").split()]


def assert_safe_and_accessible(root: ET.Element) -> None:
    """Named for screen readers, scaled by its viewBox, and inert under a strict CSP."""
    assert root.get("role") == "img"
    view = root.get("viewBox", "").split()
    assert view[:3] == ["0", "0", "400"] and float(view[3]) > 0
    assert root.get("width") is None and root.get("height") is None  # the container sizes it
    title_id, desc_id = root.get("aria-labelledby", "").split()
    children = list(root)
    assert children[0].tag == f"{NS}title" and children[0].get("id") == title_id
    assert children[1].tag == f"{NS}desc" and children[1].get("id") == desc_id
    for element in root.iter():
        assert element.tag not in (f"{NS}script", f"{NS}style", f"{NS}foreignObject")
        for name in element.attrib:
            assert not name.lower().startswith("on"), name
            assert name not in ("style", "href", "{http://www.w3.org/1999/xlink}href")


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text")]


def test_bar_chart_draws_a_bar_per_value_and_says_no_data_for_none() -> None:
    svg = bar_chart(
        "Label balance",
        "Votes per label",
        [("first", 41.0), ("second", 39.0), ("tie", None)],
        unit="%",
    )
    root = parse(svg)
    assert_safe_and_accessible(root)
    bars = elements(root, "rect", "chart-bar")
    assert len(bars) == 2
    assert float(bars[0].get("width", 0)) > float(bars[1].get("width", 0))
    assert {"first", "second", "tie", "41%", "39%", "no data"} <= set(texts(root))


def test_text_is_escaped_everywhere() -> None:
    svg = bar_chart(HOSTILE, HOSTILE, [(HOSTILE, 1.0)])
    root = parse(svg)  # still well-formed XML
    assert_safe_and_accessible(root)
    assert "<script>" not in svg
    assert root.find(f"{NS}title").text == HOSTILE  # type: ignore[union-attr]
    row_title = [e.text for e in root.iter(f"{NS}title")][1]
    assert row_title is not None and row_title.startswith(HOSTILE)
    line = parse(line_chart("t", "d", ["x"], [Series(HOSTILE, [1.0])]))
    assert any(HOSTILE[:21] in t for t in texts(line))  # truncated in the legend, intact in <title>


def test_long_labels_are_shortened_with_the_full_label_kept_in_a_title() -> None:
    label = "a-very-long-model-name-with-a-date-2025-01-01"
    root = parse(interval_chart("t", "d", [IntervalRow(label, 1.0, 0.5, 1.5)]))
    assert any(t.endswith("…") and len(t) <= 22 for t in texts(root))
    assert any(label in (e.text or "") for e in root.iter(f"{NS}title"))


def test_line_chart_draws_one_path_per_series_and_breaks_at_gaps() -> None:
    series = [Series("human", [1.0, 2.0, None, 4.0]), Series("judge", [2.0, 2.5, 3.0, 3.5])]
    root = parse(
        line_chart("Progress", "Votes per day", ["d1", "d2", "d3", "d4"], series, y_label="votes")
    )
    assert_safe_and_accessible(root)
    paths = elements(root, "path", "chart-line")
    assert len(paths) == 2
    assert paths[0].get("d", "").count("M") == 2  # the gap starts a new stroke
    assert paths[0].get("stroke") != paths[1].get("stroke")
    assert paths[0].get("stroke-dasharray") != paths[1].get("stroke-dasharray")
    assert len(elements(root, "g", "chart-legend")) == 2
    with pytest.raises(ValueError, match="one value per x label"):
        line_chart("t", "d", ["a", "b"], [Series("s", [1.0])])


def test_interval_chart_draws_points_whiskers_and_the_reference() -> None:
    rows = [
        IntervalRow("atlas", 1180.0, 1170.0, 1190.0),
        IntervalRow("boreal", 990.0),
        IntervalRow("none", None),
    ]
    root = parse(interval_chart("Leaderboard", "Scores", rows, reference=1000.0))
    assert_safe_and_accessible(root)
    assert len(elements(root, "circle", "chart-point")) == 2
    assert len(elements(root, "line", "chart-whisker")) == 1
    assert len(elements(root, "line", "chart-reference")) == 1
    points = elements(root, "circle", "chart-point")
    assert float(points[0].get("cx", 0)) > float(points[1].get("cx", 0))
    assert "no data" in texts(root)


def test_reliability_diagram_has_the_diagonal_and_a_point_per_bin() -> None:
    bins = [
        ReliabilityPoint(0.1, 0.2, 10),
        ReliabilityPoint(0.5, 0.4, 100),
        ReliabilityPoint(0.9, 0.8, 0),
    ]
    root = parse(reliability_diagram("Calibration", "Judge vs humans", bins))
    assert_safe_and_accessible(root)
    points = elements(root, "circle", "chart-point")
    assert len(points) == 2  # the empty bin is not drawn
    assert float(points[1].get("r", 0)) > float(points[0].get("r", 0))
    assert len(elements(root, "line", "chart-reference")) == 1


def test_empty_charts_say_so() -> None:
    for svg in (
        bar_chart("t", "d", []),
        line_chart("t", "d", [], []),
        interval_chart("t", "d", [IntervalRow("x", None)]),
        reliability_diagram("t", "d", []),
    ):
        root = parse(svg)
        assert_safe_and_accessible(root)
        assert texts(root) == ["No data yet."]


def test_non_finite_numbers_are_not_drawn() -> None:
    root = parse(bar_chart("t", "d", [("nan", float("nan")), ("inf", float("inf")), ("ok", 2.0)]))
    assert len(elements(root, "rect", "chart-bar")) == 1
    assert "nan" not in "".join(e.get("width", "") for e in root.iter())


def test_ids_are_unique_per_chart_and_may_be_given() -> None:
    a = parse(bar_chart("a", "d", [("x", 1.0)]))
    b = parse(bar_chart("b", "d", [("x", 1.0)]))
    assert a.get("aria-labelledby") != b.get("aria-labelledby")
    given = parse(bar_chart("a", "d", [("x", 1.0)], chart_id="balance"))
    assert given.get("aria-labelledby") == "balance-title balance-desc"
    with pytest.raises(ValueError, match="chart_id"):
        bar_chart("a", "d", [("x", 1.0)], chart_id='x" onload="alert(1)')


def test_numbers_and_ticks() -> None:
    assert [fmt(1234.4), fmt(12.5), fmt(0.8431), fmt(-0.0001), fmt(3.0)] == [
        "1,234",
        "12.5",
        "0.843",
        "0",
        "3",
    ]
    assert nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(823, 1187, 4) == [800.0, 1000.0, 1200.0]
    assert nice_ticks(5, 5)[0] < 5 < nice_ticks(5, 5)[-1]
