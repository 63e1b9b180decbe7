"""Text charts: what the demo, status and bench draw."""

from stockpipe.charts import bar, sparkline


def test_bars_are_proportional_and_never_hide_a_small_count():
    assert bar(3000, 3000, width=10) == "█" * 10
    assert bar(1500, 3000, width=10) == "█" * 5
    assert bar(4, 3000, width=10) == "▏"  # 4 dead letters among 3000 still show
    assert bar(0, 3000) == bar(None, 3000) == ""


def test_the_sparkline_spans_lowest_to_highest():
    assert sparkline([1.0, 2.0, 3.0, 2.0]) == "▁▅█▅"
