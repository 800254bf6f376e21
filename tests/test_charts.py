"""The report's inline SVG charts (jobs/outputs/charts.py): axes, stacking, sparklines, timelines."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from jobs.outputs import charts

NIGHTS = [date(2026, 3, day) for day in (29, 30, 31)]


@pytest.mark.parametrize(
    "highest, top, step",
    [
        (0, 1.0, 0.25),  # an empty chart still has an axis
        (3, 3.0, 1.0),
        (7, 8.0, 2.0),
        (14, 15.0, 5.0),
        (899, 1000.0, 250.0),
        (7904.10, 8000.0, 2000.0),
        (0.3, 0.3, 0.1),
    ],
)
def test_the_y_axis_ends_on_a_round_number(highest, top, step):
    assert charts._nice_ceiling(highest) == pytest.approx((top, step))


def bars(svg: str) -> list[tuple[float, float, str]]:
    """(y, height, title) of each bar."""
    return [
        (float(y), float(height), title)
        for y, height, title in re.findall(
            r'<rect class="bar" x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)" '
            r'fill="[^"]+"><title>([^<]*)</title>',
            svg,
        )
    ]


def test_bars_stack_per_night_and_skip_zeros():
    svg = str(
        charts.bar_chart(
            "Flags", NIGHTS, [("A", "#111", [1, 0, 2]), ("B", "#222", [1, 3, 2])], y_label="flags", key="k"
        )
    )
    ElementTree.fromstring(svg)  # well-formed
    drawn = bars(svg)
    assert [title for _, _, title in drawn] == [
        "2026-03-29 A: 1",
        "2026-03-29 B: 1",
        "2026-03-30 B: 3",
        "2026-03-31 A: 2",
        "2026-03-31 B: 2",
    ]
    night_29 = drawn[:2]
    assert night_29[0][1] == pytest.approx(night_29[1][1])  # equal values, equal heights
    assert night_29[1][0] + night_29[1][1] == pytest.approx(night_29[0][0])  # B sits on A
    assert 'data-nights="3"' in svg


def test_an_empty_chart_says_so_and_text_is_escaped():
    svg = str(charts.bar_chart("<Flags>", NIGHTS, [], y_label="a&b", key="k"))
    ElementTree.fromstring(svg)
    assert "nothing on these nights" in svg and "&lt;Flags&gt;" in svg and "a&amp;b" in svg


def test_money_bars_show_two_decimals_in_their_titles():
    svg = str(
        charts.bar_chart("Money", NIGHTS[:1], [("breach", "#e15759", [1999.5])], y_label="CNY", key="m", money=True)
    )
    assert bars(svg)[0][2] == "2026-03-29 breach: 1,999.50"


@pytest.mark.parametrize(
    "values, points",
    [
        ([], 0),
        ([5.0], 0),  # the first night: no line (a flat one would suggest a history)
        ([1.0, 2.0, 3.0], 3),
        ([4.0, 4.0], 2),
    ],
)
def test_a_sparkline_has_a_point_per_night(values, points):
    svg = str(charts.sparkline(values))
    if not points:
        assert svg == ("" if not values else '<span class="spark first-night">first night</span>')
        return
    ElementTree.fromstring(svg)
    assert len(re.search(r'points="([^"]*)"', svg).group(1).split()) == points


def test_row_chart_stacks_each_row_on_one_scale():
    svg = str(
        charts.row_chart(
            "Tie-out (CNY)",
            [
                ("Paid out", [("compliant", "#59a14f", 300.0), ("in breach", "#e15759", 100.0)]),
                ("To recover", [("recoverable", "#e15759", 100.0)]),
                ("Owed", [("owed", "#76b7b2", 0.0)]),
            ],
            key="tie-out-CNY",
            unit="CNY",
        )
    )
    ElementTree.fromstring(svg)
    widths = [float(width) for width in re.findall(r'<rect class="bar" x="[^"]+" y="[^"]+" width="([^"]+)"', svg)]
    assert len(widths) == 3  # a zero part draws nothing
    assert widths[0] == 3 * widths[1] and widths[1] == widths[2]
    assert "<title>Paid out, in breach: 100.00 CNY</title>" in svg and ">400.00</text>" in svg


def test_a_timeline_draws_each_kind_of_event_in_its_own_shape():
    zone = ZoneInfo("Asia/Shanghai")
    events = [
        {"happened_at": datetime(2026, 3, 1, 2, tzinfo=UTC), "kind": "purchase", "detail": "order O1"},
        {"happened_at": datetime(2026, 3, 2, 2, tzinfo=UTC), "kind": "refund requested", "detail": "R1"},
        {"happened_at": datetime(2026, 3, 3, 2, tzinfo=UTC), "kind": "refund paid", "detail": "R1"},
        {
            "happened_at": datetime(2026, 3, 4, 2, tzinfo=UTC),
            "kind": "account suspended",
            "detail": "account A1 (<fraud>)",
        },
    ]
    svg = str(charts.timeline_chart(events, zone, date(2026, 3, 31)))
    ElementTree.fromstring(svg)
    assert [tag for tag in re.findall(r"<(circle|polygon|rect)", svg)] == ["circle", "polygon", "rect", "polygon"]
    assert "2026-03-04 10:00 account suspended: account A1 (&lt;fraud&gt;)" in svg  # billing time, escaped
    assert '<text class="tick" x="744" y="66" text-anchor="end">2026-03-31</text>' in svg  # the axis runs to as_of
    assert charts.timeline_chart([], zone, date(2026, 3, 31)) == ""
