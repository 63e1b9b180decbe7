"""The benchmark waits for the alerts it predicts: its prediction must be the reference's."""

from stockpipe.bench import chart, expected_alert_count
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings
from tests.reference import expected_alerts, frame


def test_the_bench_expects_exactly_the_alerts_the_reference_computes():
    market = SyntheticMarket(["AAPL", "MSFT", "NVDA"], seed=11)
    ticks = list(market.ticks(3 * 150))
    assert expected_alert_count(market, 150, Settings()) == len(expected_alerts(frame(ticks)))


def test_the_chart_shows_where_the_ticks_were_stored():
    # 100 stored in the first second, 50 in the third, none in the second and fourth
    assert chart([(0.0, 0), (1.0, 100), (2.0, 100), (3.0, 150), (4.0, 150)], width=4) == "█ ▅ "
