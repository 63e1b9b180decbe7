"""The price-threshold rule (ALERT_THRESHOLD, seed 004) against an independent pandas computation,
and the setting's parsing. THRESHOLD: the price crosses to at or above the threshold (the tick
before below it); once per crossing, never while it stays above."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from stockpipe.domain import PricePoint, Signal, Tick
from stockpipe.domain.thresholds import Thresholds, parse_thresholds, threshold_crossings
from stockpipe.processing import RawRecord, process_batch
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings, SettingsError
from stockpipe.trending import StoredTick, publish_alerts
from tests.fakes import FakeArchive, FakeDeadLetters, FakePublisher, FakeTable
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def planted(symbol: str, prices: list[str], previous_close: str = "100") -> list[Tick]:
    return [Tick(symbol, (START + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"), Decimal(price),
                 Decimal(previous_close), 1000, "test") for n, price in enumerate(prices)]


# Below, exactly at (a crossing), above (stays: none), below, above (a crossing), at (stays: none),
# below, then exactly at again (a crossing).
AAPL = planted("AAPL", ["198", "199.99", "200", "201", "205.5", "199", "200.01", "200", "150", "200"], "195")
# Starts above (the first tick crosses from nothing: none), dips below, comes back.
MSFT = planted("MSFT", ["460", "455", "449.99", "450", "451"], "440")


def thresholds_of(alerts) -> set[tuple]:
    return {(a.symbol, a.signal.value, a.timestamp) for a in alerts}


def only_thresholds(alerts: set[tuple]) -> set[tuple]:
    return {alert for alert in alerts if alert[1] == "THRESHOLD"}


def test_a_planted_series_crosses_where_pandas_says_touching_counts_and_staying_above_does_not():
    points = [PricePoint(t.timestamp, t.price) for t in AAPL]
    ours = threshold_crossings("AAPL", points, Decimal(200))
    assert thresholds_of(ours) == only_thresholds(expected_alerts(frame(AAPL), levels=200.0))
    assert [a.price for a in ours] == [Decimal("200"), Decimal("200.01"), Decimal("200")]
    assert all(a.signal is Signal.THRESHOLD and a.threshold == Decimal(200) for a in ours)


def test_the_first_tick_of_a_series_crosses_from_nothing():
    points = [PricePoint(t.timestamp, t.price) for t in MSFT]
    ours = threshold_crossings("MSFT", points, Decimal(450))
    assert thresholds_of(ours) == only_thresholds(expected_alerts(frame(MSFT), levels=450.0))
    assert [a.timestamp for a in ours] == [MSFT[3].timestamp]


def test_no_threshold_no_alert_and_only_the_given_timestamps_are_judged():
    points = [PricePoint(t.timestamp, t.price) for t in AAPL]
    assert threshold_crossings("AAPL", points, None) == []
    assert thresholds_of(threshold_crossings("AAPL", points, Decimal(200), [AAPL[6].timestamp])) == {
        ("AAPL", "THRESHOLD", AAPL[6].timestamp)}


def test_an_alert_says_the_price_and_its_threshold():
    [first, *_] = threshold_crossings("AAPL", [PricePoint(t.timestamp, t.price) for t in AAPL], Decimal(200))
    assert first.message == "AAPL is at 200, at or above its alert threshold of 200."
    record = first.to_record()
    assert (record["signal"], record["threshold"], record["id"]) == ("THRESHOLD", Decimal(200),
                                                                      f"AAPL#{AAPL[2].timestamp}#THRESHOLD")


def store(ticks, table):
    process_batch([RawRecord(t.to_json().encode()) for t in ticks], table, FakeArchive(), FakeDeadLetters(),
                  window=5, threshold_percent=Decimal(5))
    return [StoredTick.from_item(table.items[(t.symbol, t.timestamp)]) for t in ticks]


@pytest.mark.parametrize("batch", [1, 3, 7, 400])
def test_trend_alerts_raise_every_alert_pandas_predicts_once_thresholds_among_them(batch: int):
    """A synthetic market whose wave crosses each symbol's threshold about once a period, streamed
    in batches of every size: exactly the reference's alerts (SMA crossovers, anomalies and price
    crossings), none twice."""
    market = SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=7)
    ticks = list(market.ticks(400))
    levels = {"AAPL": 193.0, "MSFT": 426.5}  # AMZN has none: per-symbol thresholds only
    thresholds = parse_thresholds("AAPL:193,MSFT:426.5")
    table, publisher = FakeTable(), FakePublisher()
    for start in range(0, len(ticks), batch):
        publish_alerts(store(ticks[start:start + batch], table), table, publisher, short=5, long=20,
                       thresholds=thresholds)
    ours = thresholds_of(publisher.published)
    assert ours == expected_alerts(frame(ticks), levels=levels)
    assert len(publisher.published) == len(ours)
    assert {symbol for symbol, signal, _ in ours if signal == "THRESHOLD"} == {"AAPL", "MSFT"}
    assert len(only_thresholds(ours)) >= 5


def test_one_number_applies_to_every_symbol():
    ticks = [*AAPL, *planted("MSFT", ["199", "200"], "195")]
    table, publisher = FakeTable(), FakePublisher()
    publish_alerts(store(ticks, table), table, publisher, short=5, long=20, thresholds=parse_thresholds("200"))
    assert only_thresholds(thresholds_of(publisher.published)) == only_thresholds(
        expected_alerts(frame(ticks), levels=200.0))


@pytest.mark.parametrize(("text", "default", "by_symbol"), [
    ("", None, {}),
    ("1200", Decimal(1200), {}),
    ("AAPL:200,MSFT:450", None, {"AAPL": Decimal(200), "MSFT": Decimal(450)}),
    (" aapl : 200.50 , 1200 ", Decimal(1200), {"AAPL": Decimal("200.50")}),
    ("BRK-B:450,^GSPC:5000", None, {"BRK-B": Decimal(450), "^GSPC": Decimal(5000)}),
])
def test_the_setting_is_one_price_or_symbol_price_pairs_or_both(text, default, by_symbol):
    thresholds = parse_thresholds(text)
    assert (thresholds.default, dict(thresholds.by_symbol)) == (default, by_symbol)
    assert bool(thresholds) is bool(text.strip())
    assert parse_thresholds(str(thresholds)) == thresholds  # what init hands the functions reads back the same
    if by_symbol:
        symbol, price = next(iter(by_symbol.items()))
        assert thresholds.of(symbol) == price and thresholds.of("OTHER") == default


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "ALERT_THRESHOLD='abc': 'abc' is not a price; give one number for every symbol (1200), or "
            "SYMBOL:PRICE pairs (AAPL:200,MSFT:450)"),
    ("AAPL:", "ALERT_THRESHOLD='AAPL:': '' for AAPL is not a price"),
    ("AAPL:-5", "ALERT_THRESHOLD='AAPL:-5': -5 for AAPL is not a price above 0"),
    ("0", "ALERT_THRESHOLD='0': 0 is not a price above 0"),
    ("NaN", "ALERT_THRESHOLD='NaN': NaN is not a price above 0"),
    ("100,200", "ALERT_THRESHOLD='100,200': two prices for every symbol (100 and 200)"),
    ("AAPL:1,aapl:2", "ALERT_THRESHOLD='AAPL:1,aapl:2': AAPL has two thresholds"),
    ("AA PL:1", "ALERT_THRESHOLD='AA PL:1': 'AA PL' is not a ticker symbol"),
    (":5", "ALERT_THRESHOLD=':5': ':5' names no symbol"),
    ("AAPL:200,,MSFT:450", "ALERT_THRESHOLD='AAPL:200,,MSFT:450': an empty entry between commas"),
])
def test_a_setting_that_cannot_work_fails_at_start_in_one_line_naming_the_variable(value, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"ALERT_THRESHOLD": value})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value) and error.value.variables == ("ALERT_THRESHOLD",)


def test_the_functions_get_the_setting_only_when_it_is_set():
    base = {"raw_bucket": "raw-bucket", "dlq_url": "u", "topic_arn": "t", "partial_batch_response": False}
    assert "ALERT_THRESHOLD" not in Settings.from_env({}).lambda_environment(**base)
    env = Settings.from_env({"ALERT_THRESHOLD": "aapl:200, 1200"}).lambda_environment(**base)
    assert env["ALERT_THRESHOLD"] == "1200,AAPL:200"
    assert Settings.from_env(env).alert_threshold == Thresholds(Decimal(1200), (("AAPL", Decimal(200)),))
