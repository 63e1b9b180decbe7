"""The benchmark waits for the alerts it predicts: its prediction must be the reference's."""

from bench import expected_alert_count
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings
from tests.reference import expected_alerts, frame


def test_the_bench_expects_exactly_the_alerts_the_reference_computes():
    market = SyntheticMarket(["AAPL", "MSFT", "NVDA"], seed=11)
    ticks = list(market.ticks(3 * 150))
    assert expected_alert_count(market, 150, Settings()) == len(expected_alerts(frame(ticks)))
