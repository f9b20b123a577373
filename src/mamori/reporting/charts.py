"""Charts as SVG strings, for the board pack (PDF through WeasyPrint) and for HTML pages.

Pure logic, no Django imports: standard library only, no JavaScript. Each function returns one complete
``<svg>`` element with a ``<title>`` and a ``<desc>``, so a screen reader gets the gist in words.
It can be inlined as is in a template (mark it safe: every piece of text in it is escaped here)
or written to a file.

Rules every chart keeps, and why:

* **Deterministic.** The same input gives the same string, byte for byte, because the board
  pack's digest hashes it. Hence no random ids, no dict-order or locale-dependent formatting, and
  coordinates rounded to one decimal (which also keeps a long series small).
* **Escaped.** Labels and titles come from users. All text goes through :func:`_escape`, which
  also drops characters XML 1.0 forbids (a stray control character would make the whole page
  fail to parse in WeasyPrint).
* **Honest scales.** A trend's value axis shows its bounds, so a small wiggle drawn on a narrow
  automatic scale is not read as a collapse; bars always start at zero.
* **Readable without colour.** The RAG tile has a shape and a word; the trend marks its target
  as a dashed line, not as a colour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Literal

Language = Literal["ja", "en"]
Status = Literal["red", "amber", "green", "grey"]
Point = tuple[dt.date, float | None]

# IPAexGothic is what the PDF renderer has (Makefile RUN_PACKAGES); the others are there for
# browsers showing the HTML pages, where IPA fonts are rarely installed.
FONT_FAMILY = (
    "IPAexGothic, IPAGothic, 'Noto Sans CJK JP', 'Noto Sans JP', 'Hiragino Sans', "
    "'Yu Gothic', sans-serif"
)

INK = "#1d2433"  # the body text colour of the PDFs
MUTED = "#5b6474"
GRID = "#d5d9e0"
LINE = "#1f5fa8"
GOOD = "#2e7d32"
BAD = "#b3261e"

# Colours of the RAG tile: the mark's fill, the tile's tint and its border. Text stays INK on
# the light tint so it keeps a contrast above 4.5:1 whatever the status.
RAG_COLOURS: dict[str, tuple[str, str, str]] = {
    "red": ("#d32f2f", "#fdecea", "#b3261e"),
    "amber": ("#f2a900", "#fff4d6", "#a86f00"),
    "green": ("#388e3c", "#e8f5e9", "#2e7d32"),
    "grey": ("#9e9e9e", "#f0f1f3", "#6b7280"),
}

# A 730-day series becomes at most 2 points (its minimum and maximum) in each of 59 time
# buckets, plus the first and last: 120 points, about one every 2.5 px on a 300 px plot. Keeping
# each bucket's extremes (rather than, say, its mean) keeps every peak and trough, so the
# series' global minimum and maximum are always drawn.
MAX_BUCKETS = 59
# Up to this many points, each one is marked with a dot: a quarterly series then reads as the
# few measurements it is, not as a continuous curve.
MARKED_POINTS = 12

TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "no_data": "データなし",
        "target": "目標",
        "met": "達成",
        "not_met": "未達",
        "higher": "高いほど良い",
        "lower": "低いほど良い",
        "trend": "推移",
        "missing": "欠測",
        "period": "{first}〜{last}の推移（値{count}件、欠測{missing}件）。",
        "latest": "最新値{value}（{date}）、最小{low}、最大{high}。",
        "target_sentence": "目標{value}：{verdict}。",
        "no_data_sentence": "データなし。",
        "no_data_period": "{first}〜{last}のデータなし。",
        "item": "{label}：{value}",
        "separator": "、",
        "end": "。",
        "rag": "{label}：{word}（{meaning}）。",
    },
    "en": {
        "no_data": "No data",
        "target": "Target",
        "met": "met",
        "not_met": "not met",
        "higher": "Higher is better.",
        "lower": "Lower is better.",
        "trend": "Trend",
        "missing": "missing",
        "period": "Trend from {first} to {last} ({count} values, {missing} missing). ",
        "latest": "Latest {value} on {date}; minimum {low}, maximum {high}. ",
        "target_sentence": "Target {value}: {verdict}. ",
        "no_data_sentence": "No data.",
        "no_data_period": "No data from {first} to {last}.",
        "item": "{label}: {value}",
        "separator": "; ",
        "end": ".",
        "rag": "{label}: {word} ({meaning}).",
    },
}

# The RAG word written in the tile. Naming the colour matters to a colour-blind reader: the
# board talks about "red items", and the word tells which ones they are.
RAG_WORDS: dict[str, dict[str, str]] = {
    "ja": {"red": "赤", "amber": "黄", "green": "緑", "grey": "根拠不足"},
    "en": {"red": "Red", "amber": "Amber", "green": "Green", "grey": "No evidence"},
}
RAG_MEANINGS: dict[str, dict[str, str]] = {
    "ja": {
        "red": "要対応",
        "amber": "要注意",
        "green": "良好",
        "grey": "判定に足る根拠がない",
    },
    "en": {
        "red": "action needed",
        "amber": "needs attention",
        "green": "on track",
        "grey": "not enough evidence to rate",
    },
}

# The mark drawn in a 24 × 24 box: the 〇 △ × that Japanese readers already read as good /
# partly / bad (forms, exam marking), and a bar for "no verdict". They differ by silhouette, so
# they survive greyscale printing and every kind of colour blindness; they are drawn as shapes,
# not font glyphs, so no font has to carry them.
RAG_MARKS: dict[str, str] = {
    "green": '<circle cx="12" cy="12" r="6.5"',
    "amber": '<polygon points="12,4.5 19.5,18 4.5,18"',
    "red": (
        '<polygon points="6,8.5 8.5,6 12,9.5 15.5,6 18,8.5 14.5,12 18,15.5 15.5,18 12,14.5 '
        '8.5,18 6,15.5 9.5,12"'
    ),
    "grey": '<rect x="5" y="10" width="14" height="4"',
}

# Characters XML 1.0 does not allow, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def trend(
    series: Sequence[Point],
    *,
    title: str,
    unit: str = "",
    width: int = 320,
    height: int = 120,
    y_min: float | None = None,
    y_max: float | None = None,
    target: float | None = None,
    better: Literal["higher", "lower"] = "higher",
    language: Language = "ja",
) -> str:
    """A line chart of ``(date, value)`` points; ``None`` values are gaps in the line.

    The x axis is time (so quarterly points are spaced by their dates), labelled with the first
    and last date of the series. The y axis shows its two bounds: ``y_min``/``y_max`` when
    given (values outside are drawn at the edge, their labels still true), otherwise rounded
    bounds around the values and the target. The last value is labelled; ``target`` is a dashed
    line, and with ``better`` it decides whether the last value is drawn as met or not.
    """
    words = _words(language)
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
    _check_size(width, height)
    # A NaN target (a ratio of nothing) is no target, rather than "nan" in a coordinate.
    target = _finite(target)
    points = _clean(series)
    values = [value for _, value in points if value is not None]
    if not values:
        return _empty(
            "trend", width, height, title, _no_data_desc(points, language), words["no_data"]
        )

    low, high = _bounds([*values, *([] if target is None else [target])], y_min, y_max)
    axis = [_with_unit(_number(bound), unit) for bound in (low, high)]
    last_date, last_value = next((d, v) for d, v in reversed(points) if v is not None)
    last_label = _with_unit(_number(last_value), unit)

    # The plot sits inside room for the labels: the y bounds on the left, the last value on
    # the right (beside its point, which is at or near the right edge), the dates below.
    left = 2 + max(_text_width(label, 9) for label in axis) + 4
    right = width - (_text_width(last_label, 10) + 10)
    top, bottom = 8.0, height - 16.0
    right = max(right, left + 1)
    bottom = max(bottom, top + 1)

    first_date = points[0][0]
    span = (points[-1][0] - first_date).days

    def x_of(day: dt.date) -> float:
        if span == 0:
            return (left + right) / 2
        return left + (day - first_date).days / span * (right - left)

    def y_of(value: float) -> float:
        clamped = min(max(value, low), high)
        return bottom - (clamped - low) / (high - low) * (bottom - top)

    body = [
        _line(left, top, right, top, GRID, css="grid"),
        _line(left, bottom, right, bottom, GRID, css="grid"),
        _text(left - 4, bottom + 3, axis[0], size=9, fill=MUTED, anchor="end", css="y-label"),
        _text(left - 4, top + 3, axis[1], size=9, fill=MUTED, anchor="end", css="y-label"),
    ]
    if span == 0:
        body.append(
            _text(
                x_of(first_date),
                height - 3,
                first_date.isoformat(),
                size=9,
                fill=MUTED,
                anchor="middle",
                css="x-label",
            )
        )
    else:
        body.append(
            _text(left, height - 3, first_date.isoformat(), size=9, fill=MUTED, css="x-label")
        )
        body.append(
            _text(
                right,
                height - 3,
                points[-1][0].isoformat(),
                size=9,
                fill=MUTED,
                anchor="end",
                css="x-label",
            )
        )

    verdict = None
    if target is not None:
        target_y = y_of(target)
        body.append(
            f'<line class="target" x1="{_c(left)}" y1="{_c(target_y)}" x2="{_c(right)}" '
            f'y2="{_c(target_y)}" stroke="{MUTED}" stroke-width="1" stroke-dasharray="4 3"/>'
        )
        # Above the line, unless that would leave the plot; drawn after the series (below), on
        # a pale backing, so the line crossing it does not make it unreadable.
        label_y = target_y - 3 if target_y - 10 >= top else target_y + 10
        target_text = f"{words['target']} {_with_unit(_number(target), unit)}"
        target_label = [
            f'<rect class="target-backing" x="{_c(left + 1)}" y="{_c(label_y - 7.5)}" '
            f'width="{_c(_text_width(target_text, 8) + 4)}" height="10" fill="#ffffff" '
            f'fill-opacity="0.8"/>',
            _text(left + 3, label_y, target_text, size=8, fill=MUTED, css="target-label"),
        ]
        verdict = last_value >= target if better == "higher" else last_value <= target

    runs = _runs(points)
    plotted, simplified = _simplify(runs, first_date, span, right - left)
    body.extend(_series(plotted, x_of, y_of, stroke_width=1.5, dot=1.6))
    if not simplified and sum(len(run) for run in plotted) <= MARKED_POINTS:
        body.extend(
            f'<circle class="marker" cx="{_c(x_of(day))}" cy="{_c(y_of(value))}" r="2" '
            f'fill="{LINE}"/>'
            for run in plotted
            if len(run) > 1
            for day, value in run
        )

    if target is not None:
        body.extend(target_label)

    # The last value: a dot in the verdict's colour (the dashed target line already shows the
    # verdict without colour), and its figure beside it, kept inside the plot's height.
    last_colour = LINE if verdict is None else (GOOD if verdict else BAD)
    last_x, last_y = x_of(last_date), y_of(last_value)
    body.append(
        f'<circle class="last" cx="{_c(last_x)}" cy="{_c(last_y)}" r="2.8" fill="{last_colour}"/>'
    )
    body.append(
        _text(
            last_x + 5,
            min(max(last_y + 3.5, top + 4), bottom + 3),
            last_label,
            size=10,
            fill=INK,
            weight="bold",
            css="last-label",
        )
    )

    desc = _series_desc(points, values, last_date, last_value, unit, language)
    if target is not None:
        desc += words["target_sentence"].format(
            value=_with_unit(_number(target), unit),
            verdict=words["met"] if verdict else words["not_met"],
        )
    desc += words[better]
    return _document("trend", width, height, title, desc.strip(), body)


def bars(
    items: Sequence[tuple[str, float | None]],
    *,
    title: str,
    unit: str = "",
    width: int = 320,
    height: int | None = None,
    language: Language = "ja",
) -> str:
    """Horizontal bars of ``(label, value)`` items, in the order given.

    Bars start at zero (negative values go left of a zero line). Values are written in a
    right-aligned column, like a table, so they can be compared by reading as well as by
    length; a ``None`` value is written "—" with no bar. ``height`` defaults to 18 px a bar.
    Labels too long for the label column (at most 40 % of the width) are cut with "…"; the
    description keeps them whole.
    """
    words = _words(language)
    row = 18.0
    pad = 4.0
    if height is None:
        height = int(2 * pad + row * len(items)) if items else 40
    _check_size(width, height)
    if not items:
        return _empty("bars", width, height, title, words["no_data_sentence"], words["no_data"])
    row = (height - 2 * pad) / len(items)

    cleaned = [(str(label), _finite(value)) for label, value in items]
    shown = ["—" if value is None else _with_unit(_number(value), unit) for _, value in cleaned]
    label_room = min(max(_text_width(label, 10) for label, _ in cleaned), width * 0.4)
    labels = [_fit(label, label_room, 10) for label, _ in cleaned]
    values = [value for _, value in cleaned if value is not None]

    bar_left = label_room + 8
    bar_right = width - (max(_text_width(text, 10) for text in shown) + 8)
    bar_right = max(bar_right, bar_left + 1)
    low = min(0.0, *values) if values else 0.0
    high = max(0.0, *values) if values else 1.0
    if high == low:
        high = low + 1

    def x_of(value: float) -> float:
        return bar_left + (value - low) / (high - low) * (bar_right - bar_left)

    zero = x_of(0.0)
    thickness = max(1.0, min(11.0, row - 5))
    body = []
    for index, ((_, value), label, text) in enumerate(zip(cleaned, labels, shown, strict=True)):
        middle = pad + row * index + row / 2
        body.append(_text(2, middle + 3.5, label, size=10, fill=INK, css="bar-label"))
        if value is not None:
            end = x_of(value)
            body.append(
                f'<rect class="bar" x="{_c(min(zero, end))}" y="{_c(middle - thickness / 2)}" '
                f'width="{_c(abs(end - zero))}" height="{_c(thickness)}" fill="{LINE}"/>'
            )
        body.append(
            _text(
                width - 2,
                middle + 3.5,
                text,
                size=10,
                fill=INK if value is not None else MUTED,
                anchor="end",
                css="bar-value" if value is not None else "bar-value missing",
            )
        )
    # The zero line, over the bars' starts, so a bar of 0 still shows where it would start.
    body.append(_line(zero, pad, zero, height - pad, MUTED, css="zero"))

    desc = words["separator"].join(
        words["item"].format(label=label, value=text)
        for (label, _), text in zip(cleaned, shown, strict=True)
    )
    return _document("bars", width, height, title, desc + words["end"], body)


def rag(status: Status, *, label: str, language: Language = "ja") -> str:
    """A small tile giving a red / amber / green status, or grey when evidence is too thin.

    The status is told three ways: the tile's colour, a mark of its own shape (〇 green, △ amber,
    × red, a bar for grey) and the status written out (赤/黄/緑/根拠不足, or Red/Amber/Green/No
    evidence), so neither colour blindness nor a greyscale print loses it.
    """
    words = _words(language)
    if status not in RAG_COLOURS:
        raise ValueError(f"status must be one of {', '.join(RAG_COLOURS)}, not {status!r}")
    fill, tint, border = RAG_COLOURS[status]
    word = RAG_WORDS[language][status]
    label = str(label)
    height = 24
    word_x = 26.0
    label_x = word_x + _text_width(word, 11, bold=True) + 8
    width = math.ceil(label_x + _text_width(label, 11) + 8)
    body = [
        f'<rect class="tile" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="3" '
        f'fill="{tint}" stroke="{border}"/>',
        # A dark outline round the mark: it stays visible on the tint whatever its fill.
        f'{RAG_MARKS[status]} class="mark" fill="{fill}" stroke="{INK}" stroke-width="1"/>',
        _text(word_x, 16, word, size=11, fill=INK, weight="bold", css="status"),
        _text(label_x, 16, label, size=11, fill=INK, css="label"),
    ]
    desc = words["rag"].format(label=label, word=word, meaning=RAG_MEANINGS[language][status])
    return _document(f"rag chart-rag-{status}", width, height, label, desc, body)


def sparkline(
    series: Sequence[Point],
    *,
    width: int = 80,
    height: int = 20,
    title: str = "",
    unit: str = "",
    language: Language = "ja",
) -> str:
    """A word-sized line of ``(date, value)`` points with no axes or labels, for table cells.

    Gaps, simplification and time spacing are those of :func:`trend`; the scale is the values'
    own range, since only the shape is shown (the description gives the figures). The last
    value is a dot. ``title`` defaults to "推移"/"Trend".
    """
    words = _words(language)
    _check_size(width, height)
    title = title or words["trend"]
    points = _clean(series)
    values = [value for _, value in points if value is not None]
    if not values:
        # No text at this size: a faint dashed line says "nothing here" and the description
        # says it in words.
        middle = height / 2
        body = [
            f'<line class="empty" x1="2" y1="{_c(middle)}" x2="{_c(width - 2)}" '
            f'y2="{_c(middle)}" stroke="{GRID}" stroke-width="1" stroke-dasharray="2 2"/>'
        ]
        return _document("sparkline", width, height, title, _no_data_desc(points, language), body)

    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    left, right, top, bottom = 2.0, width - 3.0, 2.5, height - 2.5
    first_date = points[0][0]
    span = (points[-1][0] - first_date).days

    def x_of(day: dt.date) -> float:
        if span == 0:
            return (left + right) / 2
        return left + (day - first_date).days / span * (right - left)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    plotted, _ = _simplify(_runs(points), first_date, span, right - left)
    body = _series(plotted, x_of, y_of, stroke_width=1.2, dot=1.2)
    last_date, last_value = next((d, v) for d, v in reversed(points) if v is not None)
    body.append(
        f'<circle class="last" cx="{_c(x_of(last_date))}" cy="{_c(y_of(last_value))}" r="1.8" '
        f'fill="{LINE}"/>'
    )
    desc = _series_desc(points, values, last_date, last_value, unit, language)
    return _document("sparkline", width, height, title, desc.strip(), body)


# Series


def _clean(series: Sequence[Point]) -> list[tuple[dt.date, float | None]]:
    """Points sorted by date (stably, so equal dates keep their order), with datetimes cut to
    their date and NaN or infinite values made gaps: they would print as "nan" in a
    coordinate."""
    points = []
    for day, value in series:
        if isinstance(day, dt.datetime):
            day = day.date()
        points.append((day, _finite(value)))
    points.sort(key=lambda point: point[0])
    return points


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _runs(points: list[tuple[dt.date, float | None]]) -> list[list[tuple[dt.date, float]]]:
    """The stretches between gaps: each one is drawn as its own line."""
    runs: list[list[tuple[dt.date, float]]] = []
    current: list[tuple[dt.date, float]] = []
    for day, value in points:
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((day, value))
    if current:
        runs.append(current)
    return runs


def _simplify(
    runs: list[list[tuple[dt.date, float]]], start: dt.date, span: int, plot_width: float
) -> tuple[list[list[tuple[dt.date, float]]], bool]:
    """Thins the runs to each time bucket's minimum and maximum (and each run's ends).

    Buckets are equal stretches of time, about one per 2.5 px and at most ``MAX_BUCKETS``, so
    nothing is dropped that the eye could see. Each run keeps its own ends, which keeps the
    gaps exactly where they were. Returns the runs and whether anything was dropped.
    """
    buckets = max(1, min(MAX_BUCKETS, int(plot_width / 2.5)))
    if sum(len(run) for run in runs) <= 2 * buckets + 2:
        return runs, False
    thinned = []
    for run in runs:
        keep = {0, len(run) - 1}
        groups: dict[int, list[int]] = {}
        for index, (day, _) in enumerate(run):
            # Integer arithmetic: the bucket of a date never depends on float rounding.
            bucket = min(buckets - 1, (day - start).days * buckets // span) if span else 0
            groups.setdefault(bucket, []).append(index)
        for indices in groups.values():
            # min/max return the first of equal values: the choice is deterministic.
            keep.add(min(indices, key=lambda i: run[i][1]))
            keep.add(max(indices, key=lambda i: run[i][1]))
        thinned.append([run[index] for index in sorted(keep)])
    return thinned, True


def _series(
    runs: list[list[tuple[dt.date, float]]],
    x_of: Callable[[dt.date], float],
    y_of: Callable[[float], float],
    *,
    stroke_width: float,
    dot: float,
) -> list[str]:
    """One polyline a run; a run of a single point is a dot, or it would not show at all."""
    body = []
    for run in runs:
        if len(run) == 1:
            day, value = run[0]
            body.append(
                f'<circle class="series-point" cx="{_c(x_of(day))}" cy="{_c(y_of(value))}" '
                f'r="{_c(dot)}" fill="{LINE}"/>'
            )
        else:
            coordinates = " ".join(f"{_c(x_of(day))},{_c(y_of(value))}" for day, value in run)
            body.append(
                f'<polyline class="series" points="{coordinates}" fill="none" stroke="{LINE}" '
                f'stroke-width="{_c(stroke_width)}" stroke-linejoin="round" '
                f'stroke-linecap="round"/>'
            )
    return body


def _bounds(values: list[float], y_min: float | None, y_max: float | None) -> tuple[float, float]:
    """The y axis' bounds: those given, else the values' range widened to round numbers (1, 2
    or 5 times a power of ten), so the axis labels are figures a reader can take in at once."""
    for name, bound in (("y_min", y_min), ("y_max", y_max)):
        if bound is not None and not math.isfinite(bound):
            raise ValueError(f"{name} must be a finite number, not {bound!r}")
    if y_min is not None and y_max is not None:
        if y_max <= y_min:
            raise ValueError(f"y_max ({y_max}) must be above y_min ({y_min})")
        return float(y_min), float(y_max)
    low = min(values) if y_min is None else float(y_min)
    high = max(values) if y_max is None else float(y_max)
    # One bound given and every value beyond it: the free bound meets it (widened just below);
    # the values are then drawn at the edge, as with both bounds given.
    if y_max is None:
        high = max(high, low)
    else:
        low = min(low, high)
    if high == low:
        # A flat series: widen the free side(s), so the line is drawn inside the plot.
        spread = max(abs(low) * 0.1, 1.0)
        if y_min is None:
            low -= spread
        if y_max is None:
            high += spread
    step = _nice_step((high - low) / 4)
    # The small tolerances keep 100 from becoming 100.2 through 100 / 0.2 = 500.00000000000006.
    if y_min is None:
        low = math.floor(low / step + 1e-9) * step
    if y_max is None:
        high = math.ceil(high / step - 1e-9) * step
    return low, high


def _nice_step(rough: float) -> float:
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if rough <= factor * power:
            return factor * power
    return 10 * power  # not reached: rough / power < 10


# Words


def _words(language: str) -> dict[str, str]:
    if language not in TEXT:
        raise ValueError(f"language must be one of {', '.join(TEXT)}, not {language!r}")
    return TEXT[language]


def _series_desc(points, values, last_date, last_value, unit: str, language: str) -> str:
    words = TEXT[language]
    return words["period"].format(
        first=points[0][0].isoformat(),
        last=points[-1][0].isoformat(),
        count=len(values),
        missing=len(points) - len(values),
    ) + words["latest"].format(
        value=_with_unit(_number(last_value), unit),
        date=last_date.isoformat(),
        low=_with_unit(_number(min(values)), unit),
        high=_with_unit(_number(max(values)), unit),
    )


def _no_data_desc(points, language: str) -> str:
    words = TEXT[language]
    if not points:
        return words["no_data_sentence"]
    return words["no_data_period"].format(
        first=points[0][0].isoformat(), last=points[-1][0].isoformat()
    )


def _number(value: float) -> str:
    """A value for people: one decimal at most, none when whole, thousands separated."""
    rounded = round(value, 1) + 0.0  # + 0.0 turns -0.0 into 0.0, which prints without "-"
    if rounded.is_integer():
        return f"{int(rounded):,}"
    return f"{rounded:,.1f}"


def _with_unit(text: str, unit: str) -> str:
    # "87%", "12件", but "3 days": a word of Latin letters is set apart, as in running text.
    if unit and unit[0].isascii() and unit[0].isalpha():
        return f"{text} {unit}"
    return f"{text}{unit}"


def _text_width(text: str, size: float, *, bold: bool = False) -> float:
    """An estimate of a text's width: a full em for wide (CJK) characters and the widest Latin
    ones ("%" is almost square in IPAexGothic), 0.62 em for capitals and digits, 0.52 em for the
    rest. There is no font at hand to measure with, so it errs wide: that only costs a few
    pixels of margin, where erring narrow would cut or overlap labels."""
    ems = sum(_em(char) for char in text)
    return ems * size * (1.1 if bold else 1.0)


def _em(char: str) -> float:
    if char in "%@MWmw" or unicodedata.east_asian_width(char) in "WF":
        return 1.0
    return 0.62 if char.isupper() or char.isdigit() else 0.52


def _fit(text: str, room: float, size: float) -> str:
    if _text_width(text, size) <= room:
        return text
    while text and _text_width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


# SVG


def _escape(text: str) -> str:
    text = _NOT_XML.sub("", text)
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _c(value: float) -> str:
    """A coordinate: one decimal, without a trailing ".0" or a "-0"."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, *, css: str) -> str:
    return (
        f'<line class="{css}" x1="{_c(x1)}" y1="{_c(y1)}" x2="{_c(x2)}" y2="{_c(y2)}" '
        f'stroke="{stroke}" stroke-width="1"/>'
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float,
    fill: str,
    anchor: str = "start",
    weight: str = "normal",
    css: str,
) -> str:
    attributes = f'class="{css}" x="{_c(x)}" y="{_c(y)}" font-size="{_c(size)}" fill="{fill}"'
    if anchor != "start":
        attributes += f' text-anchor="{anchor}"'
    if weight != "normal":
        attributes += f' font-weight="{weight}"'
    return f"<text {attributes}>{_escape(text)}</text>"


def _empty(kind: str, width: int, height: int, title: str, desc: str, message: str) -> str:
    body = [
        f'<rect class="empty" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
        f'fill="none" stroke="{GRID}" stroke-dasharray="3 3"/>',
        _text(
            width / 2,
            height / 2 + 4,
            message,
            size=11,
            fill=MUTED,
            anchor="middle",
            css="empty-label",
        ),
    ]
    return _document(kind, width, height, title, desc, body)


def _document(kind: str, width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    content = "".join(body)
    title_text, desc_text = _escape(str(title)), _escape(desc)
    # aria-labelledby (title, then desc) is what screen readers announce most reliably for an
    # inline SVG. Its ids come from the content, not a counter, so the output stays
    # deterministic; two charts sharing ids on one page are identical, so either names both.
    digest = hashlib.sha256(
        "\x1f".join((kind, str(width), str(height), title_text, desc_text, content)).encode()
    ).hexdigest()[:12]
    ident = f"mamori-chart-{digest}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" class="chart chart-{kind}" '
        f'font-family="{_escape(FONT_FAMILY)}">'
        f'<title id="{ident}-title">{title_text}</title>'
        f'<desc id="{ident}-desc">{desc_text}</desc>'
        f"{content}</svg>"
    )


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, not {width} × {height}")
