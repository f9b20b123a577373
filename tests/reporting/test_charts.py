"""The board pack's SVG charts: well-formed, escaped, deterministic, and drawing what they say.

The charts are read back with ElementTree rather than compared with stored strings, so a change of
layout does not break these tests but a chart that lies (a joined gap, a lost peak, a scale that
ignores its bounds) does.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from xml.etree import ElementTree

import pytest

from mamori.reporting import charts

NS = "{http://www.w3.org/2000/svg}"
START = dt.date(2024, 1, 1)
HOSTILE = ["<script>alert(1)</script>", "\"&'", "]]><x/>", "&amp; &#x3c;"]
# Attributes that hold coordinates or lengths: each must be a short number.
GEOMETRY = {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height"}


def parse(svg: str) -> ElementTree.Element:
    # Our own output, and the assertions below would fail on a DTD or an entity in it.
    return ElementTree.fromstring(svg)  # noqa: S314


def daily(values: list[float | None], start: dt.date = START) -> list[tuple[dt.date, float | None]]:
    return [(start + dt.timedelta(days=index), value) for index, value in enumerate(values)]


def elements(root: ElementTree.Element, tag: str, css: str | None = None):
    found = root.iter(NS + tag)
    return [element for element in found if css is None or element.get("class") == css]


def texts(root: ElementTree.Element, css: str | None = None) -> list[str]:
    return [element.text or "" for element in elements(root, "text", css)]


def points(polyline: ElementTree.Element) -> list[tuple[float, float]]:
    pairs = (pair.split(",") for pair in polyline.get("points").split())
    return [(float(x), float(y)) for x, y in pairs]


def plot_top_bottom(root: ElementTree.Element) -> tuple[float, float]:
    ys = sorted(float(line.get("y1")) for line in elements(root, "line", "grid"))
    return ys[0], ys[-1]


def wavy(count: int) -> list[float]:
    return [50 + 20 * math.sin(index / 30) + (index % 7) for index in range(count)]


ALL_CHARTS = {
    "trend": lambda language: charts.trend(
        daily(wavy(60)), title="パッチ適用率", unit="%", target=60, language=language
    ),
    "trend-quarterly": lambda language: charts.trend(
        [(dt.date(2024, month, 1), value) for month, value in [(1, 3), (4, None), (7, 5)]],
        title="Score",
        language=language,
    ),
    "trend-empty": lambda language: charts.trend([], title="空", language=language),
    "bars": lambda language: charts.bars(
        [("経理部", 92.5), ("営業", None), ("IT", -4)], title="部署別", unit="%", language=language
    ),
    "bars-empty": lambda language: charts.bars([], title="none", language=language),
    "rag": lambda language: charts.rag("amber", label="多要素認証", language=language),
    "sparkline": lambda language: charts.sparkline(daily([1, None, 3, 4]), language=language),
    "sparkline-empty": lambda language: charts.sparkline([], language=language),
}


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("name", list(ALL_CHARTS))
def test_every_chart_is_one_accessible_svg_element(name, language):
    svg = ALL_CHARTS[name](language)
    root = parse(svg)

    assert root.tag == NS + "svg"
    assert root.get("role") == "img"
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox"))
    title, desc = list(root)[:2]
    assert title.tag == NS + "title"
    assert title.text
    assert desc.tag == NS + "desc"
    assert desc.text
    # aria-labelledby names the title and the description, by ids that exist.
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
    for font in ("IPAexGothic", "IPAGothic", "Noto Sans CJK JP", "sans-serif"):
        assert font in root.get("font-family")


@pytest.mark.parametrize("name", list(ALL_CHARTS))
def test_coordinates_are_short_numbers(name):
    root = parse(ALL_CHARTS[name]("ja"))
    number = re.compile(r"-?\d+(\.\d)?")

    for element in root.iter():
        for attribute, value in element.attrib.items():
            if attribute in GEOMETRY:
                assert number.fullmatch(value), (element.tag, attribute, value)
        if element.tag == NS + "polyline":
            for pair in element.get("points").split():
                assert all(number.fullmatch(part) for part in pair.split(",")), pair


@pytest.mark.parametrize("name", list(ALL_CHARTS))
def test_the_same_input_gives_the_same_string(name):
    assert ALL_CHARTS[name]("ja") == ALL_CHARTS[name]("ja")


def test_output_does_not_depend_on_the_order_points_come_in():
    series = daily(wavy(40))

    assert charts.trend(series, title="t") == charts.trend(series[::-1], title="t")


def test_a_gap_breaks_the_line():
    series = daily([1, 2, None, 3, 4, 5, None, None, 6, 7, None])

    root = parse(charts.trend(series, title="gaps"))

    lines = elements(root, "polyline", "series")
    assert [len(points(line)) for line in lines] == [2, 3, 2]
    # The trailing gap leaves room after the last line: the x axis still runs to the last date.
    assert texts(root, "x-label") == [START.isoformat(), (START + dt.timedelta(10)).isoformat()]


def test_a_value_alone_between_gaps_is_a_dot():
    root = parse(charts.trend(daily([1, 2, None, 3, None, 4, 5]), title="t"))

    assert len(elements(root, "polyline", "series")) == 2
    assert len(elements(root, "circle", "series-point")) == 1


def test_sparkline_breaks_at_gaps_too_and_has_no_text():
    root = parse(charts.sparkline(daily([1, 2, None, 3, 4])))

    assert len(elements(root, "polyline", "series")) == 2
    assert texts(root) == []


def test_a_long_series_is_thinned_but_keeps_its_extremes():
    values = wavy(730)
    values[100] = -40.0  # the one trough
    values[400] = 160.0  # the one peak
    low, high = min(values), max(values)

    svg = charts.trend(daily(values), title="two years", y_min=low, y_max=high)
    root = parse(svg)

    (line,) = elements(root, "polyline", "series")
    plotted = points(line)
    assert len(plotted) <= 120
    top, bottom = plot_top_bottom(root)
    ys = [y for _, y in plotted]
    assert min(ys) == top  # the peak is drawn, at the top of the scale
    assert max(ys) == bottom  # and the trough at its bottom
    # …at their own dates: the x of day 400 is 400/729 of the way along.
    left, right = plotted[0][0], plotted[-1][0]
    peak_x = next(x for x, y in plotted if y == top)
    assert peak_x == pytest.approx(left + 400 / 729 * (right - left), abs=0.2)
    assert len(svg) < 4000


def test_thinning_keeps_the_gaps():
    values: list[float | None] = list(wavy(730))
    values[300:330] = [None] * 30

    root = parse(charts.trend(daily(values), title="t"))

    lines = elements(root, "polyline", "series")
    assert len(lines) == 2
    assert sum(len(points(line)) for line in lines) <= 120


def test_a_short_series_is_drawn_point_for_point_with_markers():
    quarters = [(dt.date(2024, month, 1), float(month)) for month in (1, 4, 7, 10)]

    root = parse(charts.trend(quarters, title="quarterly"))

    (line,) = elements(root, "polyline", "series")
    assert len(points(line)) == 4
    assert len(elements(root, "circle", "marker")) == 4


@pytest.mark.parametrize(("language", "message"), [("ja", "データなし"), ("en", "No data")])
@pytest.mark.parametrize(
    "series", [[], daily([None, None, None]), daily([float("nan")])], ids=["none", "gaps", "nan"]
)
def test_no_value_shows_the_empty_state(language, message, series):
    root = parse(charts.trend(series, title="t", language=language))

    assert texts(root) == [message]
    assert elements(root, "polyline") == []


def test_bars_without_items_show_the_empty_state():
    assert texts(parse(charts.bars([], title="t", language="en"))) == ["No data"]
    assert texts(parse(charts.bars([], title="t"))) == ["データなし"]


def test_empty_sparkline_says_so_in_its_description():
    root = parse(charts.sparkline([], language="en"))

    assert "No data" in root.find(NS + "desc").text
    assert elements(root, "polyline") == []


def test_the_y_scale_keeps_the_bounds_given():
    # Not round numbers: the automatic scale would widen them to -50 and 100.
    series = daily([40, 150, -20, 15])

    root = parse(charts.trend(series, title="t", unit="%", y_min=-10, y_max=90))

    assert texts(root, "y-label") == ["-10%", "90%"]
    top, bottom = plot_top_bottom(root)
    (line,) = elements(root, "polyline", "series")
    ys = [y for _, y in points(line)]
    assert ys[0] == pytest.approx((top + bottom) / 2, abs=0.1)
    # Out-of-range values are drawn at the edge, and the label still tells the true value.
    assert ys[1] == top
    assert ys[2] == bottom
    assert ys[3] == pytest.approx(bottom - (bottom - top) / 4, abs=0.1)
    assert texts(root, "last-label") == ["15%"]


def test_an_automatic_scale_has_round_bounds_around_the_values_and_the_target():
    root = parse(charts.trend(daily([61.3, 87.2]), title="t", target=95))

    low, high = (float(label) for label in texts(root, "y-label"))
    assert low <= 61.3
    assert high >= 95
    assert (low, high) == (60, 100)


@pytest.mark.parametrize(
    ("bounds", "labels"),
    [({"y_min": 3}, ["3", "60"]), ({"y_max": 97}, ["0", "97"])],
    ids=["y_min", "y_max"],
)
def test_a_bound_given_alone_is_kept_and_the_other_rounded(bounds, labels):
    root = parse(charts.trend(daily([12, 47]), title="t", **bounds))

    assert texts(root, "y-label") == labels


def test_one_bound_given_with_values_beyond_it_still_makes_a_scale():
    root = parse(charts.trend(daily([-5, -3]), title="t", y_min=0))

    assert texts(root, "y-label")[0] == "0"
    assert elements(root, "polyline", "series")


@pytest.mark.parametrize(
    "bounds", [{"y_min": 5, "y_max": 5}, {"y_max": float("nan")}], ids=["equal", "nan"]
)
def test_bad_bounds_are_refused(bounds):
    with pytest.raises(ValueError, match="y_max"):
        charts.trend(daily([1]), title="t", **bounds)


def test_a_nan_target_is_no_target():
    svg = charts.trend(daily([1, 2]), title="t", target=float("nan"))

    assert elements(parse(svg), "line", "target") == []
    assert "nan" not in svg


def test_the_axes_show_the_first_and_last_date_and_the_last_value():
    series = [(dt.date(2024, 1, 1), 10.0), (dt.date(2025, 12, 31), 12.25), (dt.date(2024, 6, 1), 3)]

    root = parse(charts.trend(series, title="t", unit="件"))

    assert texts(root, "x-label") == ["2024-01-01", "2025-12-31"]
    assert texts(root, "last-label") == ["12.2件"]  # one decimal at most


def test_the_target_is_a_dashed_line_with_its_label():
    root = parse(charts.trend(daily([80, 85]), title="t", unit="%", target=90))

    (line,) = elements(root, "line", "target")
    assert line.get("stroke-dasharray")
    assert line.get("y1") == line.get("y2")
    assert texts(root, "target-label") == ["目標 90%"]
    assert "目標90%：未達" in root.find(NS + "desc").text


def test_without_a_target_there_is_no_target_line():
    root = parse(charts.trend(daily([80, 85]), title="t"))

    assert elements(root, "line", "target") == []
    assert texts(root, "target-label") == []


def test_lower_is_better_turns_the_verdict():
    def desc(better: str) -> str:
        svg = charts.trend(daily([5, 3]), title="t", target=4, better=better, language="en")
        return parse(svg).find(NS + "desc").text

    assert "Target 4: met." in desc("lower")
    assert "Lower is better." in desc("lower")
    assert "Target 4: not met." in desc("higher")


def test_bars_label_their_values_and_show_a_missing_one_as_a_dash():
    items = [("経理部", 92.5), ("営業", None), ("情報システム部", 1234.0), ("IT", -4)]

    root = parse(charts.bars(items, title="t", unit="%"))

    assert texts(root, "bar-label") == ["経理部", "営業", "情報システム部", "IT"]
    assert texts(root, "bar-value") == ["92.5%", "1,234%", "-4%"]
    assert texts(root, "bar-value missing") == ["—"]
    assert len(elements(root, "rect", "bar")) == 3
    assert root.get("height") == str(8 + 18 * 4)


def test_bars_start_at_zero():
    root = parse(charts.bars([("a", 10), ("b", 20)], title="t"))

    (zero,) = elements(root, "line", "zero")
    short, long = elements(root, "rect", "bar")
    assert short.get("x") == long.get("x") == zero.get("x1")
    assert float(long.get("width")) == pytest.approx(2 * float(short.get("width")), abs=0.1)


def test_a_long_bar_label_is_cut_but_described_whole():
    label = "とても長い部署名" * 6

    root = parse(charts.bars([(label, 1)], title="t"))

    (shown,) = texts(root, "bar-label")
    assert shown.endswith("…")
    assert len(shown) < len(label)
    assert label in root.find(NS + "desc").text


RAG_WORDS = {
    "ja": {"red": "赤", "amber": "黄", "green": "緑", "grey": "根拠不足"},
    "en": {"red": "Red", "amber": "Amber", "green": "Green", "grey": "No evidence"},
}


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("status", ["red", "amber", "green", "grey"])
def test_rag_tells_its_status_in_words_not_just_colour(status, language):
    root = parse(charts.rag(status, label="MFA", language=language))

    assert texts(root, "status") == [RAG_WORDS[language][status]]
    assert texts(root, "label") == ["MFA"]
    assert RAG_WORDS[language][status] in root.find(NS + "desc").text


def test_each_rag_status_has_a_mark_of_its_own_shape():
    marks = set()
    for status in ("red", "amber", "green", "grey"):
        root = parse(charts.rag(status, label="x"))
        (mark,) = (element for element in root.iter() if element.get("class") == "mark")
        marks.add((mark.tag, mark.get("points")))

    assert len(marks) == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: charts.rag("blue", label="x"), "status"),
        (lambda: charts.trend([], title="t", language="fr"), "language"),
        (lambda: charts.trend([], title="t", better="sideways"), "better"),
        (lambda: charts.bars([], title="t", width=0), "width"),
    ],
    ids=["status", "language", "better", "size"],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("text", HOSTILE)
def test_user_text_is_escaped_everywhere(text):
    svgs = [
        charts.trend(daily([1, 2]), title=text, unit=text, target=2),
        charts.trend([], title=text),
        charts.bars([(text, 1), ("b", None)], title=text, width=600),
        charts.rag("red", label=text),
        charts.sparkline(daily([1, 2]), title=text, unit=text),
    ]
    for svg in svgs:
        root = parse(svg)
        assert not [element for element in root.iter() if "script" in element.tag.lower()]
        assert not [element for element in root.iter() if element.tag.endswith("}x")]
        assert root.find(NS + "title").text == text

    trend, _, bars, rag, sparkline = (parse(svg) for svg in svgs)
    assert texts(trend, "last-label") == [f"2{text}"]
    assert texts(bars, "bar-label")[0] == text
    assert texts(rag, "label") == [text]
    assert f"2{text}" in sparkline.find(NS + "desc").text


def test_characters_xml_forbids_are_dropped():
    root = parse(charts.bars([("a\x00b\x1bc", 1)], title="t\x0c"))

    assert texts(root, "bar-label") == ["abc"]
    assert root.find(NS + "title").text == "t"
