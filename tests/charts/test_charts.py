"""The dashboard's chart geometry, on plain numbers: no database, no template."""

import pytest

from orders_read import charts


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (34, 50), (101, 200), (20_001, 50_000)],
)
def test_an_axis_ends_on_one_two_or_five_times_a_power_of_ten(value, ceiling):
    assert charts.nice_ceiling(value) == ceiling


def test_columns_stand_on_the_axis_with_heights_in_proportion_to_their_values():
    chart = charts.grouped_columns(
        ["1 Nov", "2 Nov", "3 Nov"], [("ordered", [10, 5, 0]), ("allocated", [0, 10, 2])]
    )

    plot_height = chart.bottom - chart.top
    assert [round(bar.height / plot_height, 2) for bar in chart.bars] == [
        1.0,
        0.0,
        0.5,
        1.0,
        0.0,
        0.2,
    ]
    assert all(round(bar.y + bar.height, 2) == chart.bottom for bar in chart.bars)
    assert [bar.title for bar in chart.bars[:2]] == ["1 Nov: 10 ordered", "1 Nov: 0 allocated"]
    # Groups left to right, a day's two bars side by side, inside the plot.
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs)
    assert chart.left <= xs[0] and xs[-1] + chart.bars[-1].width <= chart.right
    assert [tick.label for tick in chart.ticks] == ["0", "2", "4", "6", "8", "10"]
    assert chart.ticks[0].y == chart.bottom and chart.ticks[-1].y == chart.top


def test_day_labels_count_back_from_the_last_day():
    days = [f"{day} Nov" for day in range(1, 31)]

    chart = charts.grouped_columns(days, [("ordered", [1] * 30)], label_every=7)

    assert [label.text for label in chart.labels] == [
        "2 Nov",
        "9 Nov",
        "16 Nov",
        "23 Nov",
        "30 Nov",
    ]


def test_nothing_to_draw_still_makes_a_chart():
    chart = charts.grouped_columns(["1 Nov"], [("ordered", [0])])

    assert [bar.height for bar in chart.bars] == [0]
    assert charts.horizontal_bars([], unit="units").bars == []


def test_horizontal_bars_run_from_the_labels_in_proportion_with_their_figures():
    chart = charts.horizontal_bars(
        [("LAMP", 40), ("A-VERY-LONG-SKU-NAME-INDEED", 10)], unit="units ordered"
    )

    first, second = chart.bars
    assert first.x == second.x == chart.left
    assert first.width == pytest.approx(4 * second.width)
    assert first.y < second.y
    assert [label.text for label in chart.labels] == ["LAMP", "A-VERY-LONG-SKU-NAM…"]
    assert second.title == "A-VERY-LONG-SKU-NAME-INDEED: 10 units ordered"
    assert [value.text for value in chart.values] == ["40", "10"]
    assert chart.height >= 2 * charts.BAR_HEIGHT
