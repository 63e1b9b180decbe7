"""The producer's sources: yfinance polling (on a recording), CSV replay (every fixture), the synthetic market."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas
import pytest

from stockpipe.aws.stream import Outgoing
from stockpipe.domain import InvalidTick, PricePoint, Signal, Tick, crossovers, is_anomaly, parse_tick
from stockpipe.producer.sources import (
    ReplayStats,
    SourceError,
    SyntheticMarket,
    YahooQuotes,
    replay,
    synthetic,
    yahoo,
)

try:  # yfinance is an optional extra; its own classes when installed, stand-ins of the same name otherwise
    from yfinance.exceptions import YFPricesMissingError, YFRateLimitError
except ImportError:  # pragma: no cover

    class YFRateLimitError(Exception):  # type: ignore[no-redef]
        def __init__(self) -> None:
            super().__init__("Too Many Requests. Rate limited. Try after a while.")

    class YFPricesMissingError(Exception):  # type: ignore[no-redef]
        def __init__(self, ticker: str, debug_info: str) -> None:
            super().__init__(f"${ticker}: possibly delisted; no price data found {debug_info}")


DATA = Path(__file__).resolve().parent.parent / "data"
NEW_YORK = "America/New_York"


# --------------------------------------------------------------------------------------------
# yfinance, replayed from tests/data/yfinance_AAPL_1m.csv


def recorded_bars() -> pandas.DataFrame:
    """The recording read back exactly as yfinance returns it (see tests/data/README.md)."""
    frame = pandas.read_csv(DATA / "yfinance_AAPL_1m.csv", index_col="Datetime")
    frame.index = pandas.to_datetime(frame.index, utc=True).tz_convert(NEW_YORK)
    return frame


def new_york(hh_mm: str) -> pandas.Timestamp:
    return pandas.Timestamp(f"2025-02-11 {hh_mm}", tz=NEW_YORK)


class StopPolling(Exception):
    """Raised by the fake sleep to end an otherwise endless poll loop."""


class RecordedYahoo:
    """Yahoo Finance on 2025-02-11 as the recording saw it, for any number of symbols.

    ``history()`` returns the bars up to ``now``; ``now`` moves only when the producer sleeps
    (the injected ``sleep``), so each poll after a 60 s wait sees one more bar. ``failures``
    scripts what a symbol's next ``history()`` calls raise (None: answer normally).
    """

    def __init__(self, now: str, previous_close: float = 232.6199951171875, polls: int = 3) -> None:
        self.bars = recorded_bars()
        self.now = new_york(now)
        self.previous_close = previous_close
        self.polls = polls
        self.waits: list[float] = []
        self.calls: list[tuple[str, dict]] = []
        self.failures: dict[str, list[BaseException | None]] = {}

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.polls:
            raise StopPolling
        self.now += timedelta(seconds=seconds)

    def ticker(self, symbol: str) -> RecordedTicker:
        return RecordedTicker(self, symbol)


class RecordedTicker:
    def __init__(self, market: RecordedYahoo, symbol: str) -> None:
        self.market = market
        self.symbol = symbol

    @property
    def fast_info(self) -> dict[str, float]:  # yfinance's FastInfo imitates a dict
        return {"previousClose": self.market.previous_close}

    def history(self, **kwargs) -> pandas.DataFrame:
        self.market.calls.append((self.symbol, kwargs))
        script = self.market.failures.get(self.symbol)
        failure = script.pop(0) if script else None
        if failure is not None:
            raise failure
        bars = self.market.bars
        return bars[bars.index <= self.market.now]


def poll(market: RecordedYahoo, symbols: list[str], interval: float = 60, **options) -> list[Outgoing]:
    """Every record the yahoo source yields until the recording's poll budget is spent."""
    sent: list[Outgoing] = []
    quotes = YahooQuotes(ticker_factory=market.ticker)
    with pytest.raises(StopPolling):
        for record in yahoo(symbols, interval, quotes=quotes, sleep=market.sleep, **options):
            sent.append(record)
    return sent


def when(records: list[Outgoing]) -> list[tuple[str, str]]:
    return [(tick.symbol, tick.timestamp) for tick in map(parse_tick, (r.data for r in records))]


def test_given_the_recording_when_polled_each_minute_then_the_last_bars_are_sent_exactly_once():
    market = RecordedYahoo(now="10:28", polls=3)

    records = poll(market, ["AAPL"], interval=60)

    assert [parse_tick(record.data) for record in records] == [
        Tick("AAPL", "2025-02-11T15:28:00.000Z", Decimal("230.69"), Decimal("232.62"), 94823, "yfinance"),
        Tick("AAPL", "2025-02-11T15:29:00.000Z", Decimal("230.62"), Decimal("232.62"), 140747, "yfinance"),
    ]
    assert [(r.partition_key, r.label) for r in records] == [
        ("AAPL", "AAPL#2025-02-11T15:28:00.000Z"),
        ("AAPL", "AAPL#2025-02-11T15:29:00.000Z"),
    ]
    assert [parse_tick(r.data).to_record()["change_percent"] for r in records] == [
        Decimal("-0.8297"),
        Decimal("-0.8598"),
    ]
    # The third poll (10:30) still sees 10:29 as the last bar: nothing new, nothing sent.
    assert market.waits == [60, 60, 60]
    assert market.calls == [("AAPL", {"period": "1d", "interval": "1m", "auto_adjust": False, "raise_errors": True})] * 3


def test_given_the_market_not_yet_open_when_polled_then_empty_frames_yield_nothing_and_polling_goes_on():
    market = RecordedYahoo(now="09:28", polls=4)

    records = poll(market, ["AAPL"], interval=60)

    assert when(records) == [("AAPL", "2025-02-11T14:30:00.000Z"), ("AAPL", "2025-02-11T14:31:00.000Z")]
    assert market.waits == [60, 60, 60, 60]


def test_given_no_previous_close_when_polled_then_the_tick_has_no_change():
    market = RecordedYahoo(now="10:29", previous_close=float("nan"), polls=1)

    (record,) = poll(market, ["AAPL"])

    assert parse_tick(record.data) == Tick("AAPL", "2025-02-11T15:29:00.000Z", Decimal("230.62"), None, 140747,
                                           "yfinance")


def test_given_a_count_when_reached_then_the_source_stops_without_waiting():
    market = RecordedYahoo(now="10:00")

    records = list(yahoo(["AAPL", "MSFT"], 60, count=3, quotes=YahooQuotes(market.ticker), sleep=market.sleep))

    assert when(records) == [
        ("AAPL", "2025-02-11T15:00:00.000Z"),
        ("MSFT", "2025-02-11T15:00:00.000Z"),
        ("AAPL", "2025-02-11T15:01:00.000Z"),
    ]
    assert market.waits == [60]


class HTTPError(Exception):
    """What a Yahoo 429 looks like when it is not wrapped in YFRateLimitError."""


def test_given_rate_limits_when_polling_then_the_wait_doubles_up_to_max_backoff_and_resets_after_a_good_poll():
    market = RecordedYahoo(now="09:30", polls=8)
    too_many = HTTPError("429 Client Error: Too Many Requests for url: https://query2.finance.yahoo.com/v8/")
    market.failures["AAPL"] = [None, YFRateLimitError(), too_many, YFRateLimitError(), too_many, None,
                               YFRateLimitError(), None]

    records = poll(market, ["AAPL", "MSFT"], interval=60, max_backoff=300)

    assert market.waits == [60, 120, 240, 300, 300, 60, 120, 60]
    # A rate limit is Yahoo's answer to this machine, not to one symbol: that poll asks no more.
    assert [symbol for symbol, _ in market.calls] == ["AAPL", "MSFT"] + ["AAPL"] * 4 + ["AAPL", "MSFT", "AAPL"] + [
        "AAPL",
        "MSFT",
    ]
    assert when(records) == [
        ("AAPL", "2025-02-11T14:30:00.000Z"),
        ("MSFT", "2025-02-11T14:30:00.000Z"),
        ("AAPL", "2025-02-11T14:47:00.000Z"),  # 09:31 + 120 + 240 + 300 + 300 s
        ("MSFT", "2025-02-11T14:47:00.000Z"),
        ("AAPL", "2025-02-11T14:50:00.000Z"),  # + 60 + 120 s
        ("MSFT", "2025-02-11T14:50:00.000Z"),
    ]


def test_given_a_poll_interval_above_max_backoff_when_rate_limited_then_the_wait_is_never_shorter():
    market = RecordedYahoo(now="09:30", polls=3)
    market.failures["AAPL"] = [YFRateLimitError(), None]

    poll(market, ["AAPL"], interval=600, max_backoff=300)

    assert market.waits == [600, 600, 600]


def test_given_an_error_for_one_symbol_when_polling_then_the_others_go_on_at_the_normal_interval():
    # A Tokyo symbol: its "possibly delisted" message contains 429 but is no rate limit.
    market = RecordedYahoo(now="10:27", polls=3)
    market.failures["6429.T"] = [YFPricesMissingError("6429.T", "(period=1d)") for _ in range(3)]
    market.failures["MSFT"] = [None, KeyError("chart"), None]

    records = poll(market, ["6429.T", "AAPL", "MSFT"], interval=60)

    assert market.waits == [60, 60, 60]
    assert when(records) == [
        ("AAPL", "2025-02-11T15:27:00.000Z"),
        ("MSFT", "2025-02-11T15:27:00.000Z"),
        ("AAPL", "2025-02-11T15:28:00.000Z"),
        ("AAPL", "2025-02-11T15:29:00.000Z"),
        ("MSFT", "2025-02-11T15:29:00.000Z"),
    ]


# --------------------------------------------------------------------------------------------
# replay


def replayed(name: str) -> tuple[list[Outgoing], ReplayStats]:
    stats = ReplayStats()
    return list(replay(DATA / name, stats)), stats


def test_given_rows_with_previous_close_when_replayed_then_ticks_come_in_file_order_with_canonical_timestamps():
    records, stats = replayed("replay_previous_close.csv")

    assert [parse_tick(r.data) for r in records] == [
        Tick("AAPL", "2026-01-05T14:30:00.000Z", Decimal("190.10"), Decimal("188.50"), 1200, "replay"),
        Tick("MSFT", "2026-01-05T14:30:01.000Z", Decimal("420.00"), Decimal("418.00"), 800, "replay"),
        Tick("AAPL", "2026-01-05T14:30:02.000Z", Decimal("199.80"), Decimal("188.50"), 1500, "replay"),
        Tick("MSFT", "2026-01-05T14:30:03.123Z", Decimal("419.25"), Decimal("418.00"), None, "replay"),
        Tick("AAPL", "2026-01-05T14:30:04.000Z", Decimal("190.35"), Decimal("188.50"), 1100, "replay"),
    ]
    assert [r.label for r in records] == [
        "AAPL#2026-01-05T14:30:00.000Z",
        "MSFT#2026-01-05T14:30:01.000Z",
        "AAPL#2026-01-05T14:30:02.000Z",
        "MSFT#2026-01-05T14:30:03.123Z",
        "AAPL#2026-01-05T14:30:04.000Z",
    ]
    assert [r.partition_key for r in records] == ["AAPL", "MSFT", "AAPL", "MSFT", "AAPL"]
    assert stats == ReplayStats(rows=5, invalid=0)


def test_given_days_without_previous_close_when_replayed_then_the_last_price_of_an_earlier_day_is_used():
    records, stats = replayed("replay_days.csv")

    assert [(t.id, t.price, t.previous_close) for t in (parse_tick(r.data) for r in records)] == [
        ("AAPL#2026-01-05T14:30:00.000Z", Decimal("190.00"), None),  # first day: no previous close
        ("MSFT#2026-01-05T14:30:00.000Z", Decimal("420.00"), None),
        ("AAPL#2026-01-05T20:59:00.000Z", Decimal("191.50"), None),
        ("AAPL#2026-01-06T14:30:00.000Z", Decimal("193.00"), Decimal("191.50")),
        ("NVDA#2026-01-06T14:30:00.000Z", Decimal("120.00"), None),  # NVDA's first day
        ("MSFT#2026-01-06T14:31:00.000Z", Decimal("421.00"), Decimal("420.00")),
        ("AAPL#2026-01-06T14:32:00.000Z", Decimal("189.00"), Decimal("191.50")),  # not 193: same day
        ("AAPL#2026-01-07T14:30:00.000Z", Decimal("195.00"), Decimal("189.00")),
        ("NVDA#2026-01-07T14:31:00.000Z", Decimal("121.00"), Decimal("120.00")),
    ]
    assert stats == ReplayStats(rows=9, invalid=0)


def test_given_invalid_rows_when_replayed_then_they_are_sent_as_they_are_for_the_pipeline_to_dead_letter():
    records, stats = replayed("replay_invalid_rows.csv")

    assert [(r.partition_key, r.label) for r in records] == [
        ("AAPL", "AAPL#2026-01-05T14:30:00.000Z"),
        ("AAPL", "replay_invalid_rows.csv:3"),
        ("AAPL", "replay_invalid_rows.csv:4"),
        ("invalid", "replay_invalid_rows.csv:6"),  # line 5 is blank: skipped, and lines keep their numbers
        ("MSFT", "replay_invalid_rows.csv:7"),
        ("MSFT", "MSFT#2026-01-05T14:30:05.000Z"),
    ]
    assert records[1].data == (
        b'{"price": "-5.00", "source": "replay", "symbol": "AAPL", "timestamp": "2026-01-05T14:30:01Z", '
        b'"volume": "1000"}'
    )
    reasons = []
    for record in records[1:5]:
        with pytest.raises(InvalidTick) as rejected:
            parse_tick(record.data)  # what the pipeline does with it: quarantine, with this reason
        reasons.append(str(rejected.value))
    assert reasons == [
        "price: must be a positive number, got '-5.00'",
        "timestamp: not ISO 8601: 'not-a-time'",
        "missing field(s): symbol",
        "price: expected a number, got 'abc'",
    ]
    assert [parse_tick(records[i].data).price for i in (0, 5)] == [Decimal("190.00"), Decimal("420.50")]
    assert stats == ReplayStats(rows=6, invalid=4)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("replay_bad_header.csv", ":1: header must be timestamp,symbol,price,volume[,previous_close]; "
                                  "missing timestamp, symbol"),
        ("replay_too_many_fields.csv", ":4: 5 fields, the header has 4"),
        ("replay_too_few_fields.csv", ":3: fewer fields than the header's 4"),
        ("replay_empty.csv", ":1: header must be timestamp,symbol,price,volume[,previous_close]; "
                             "missing timestamp, symbol, price, volume"),
        ("replay_header_only.csv", ": no data rows after the header"),
        ("replay_not_utf8.csv", ":3: not UTF-8 text (byte 0xC9)"),
    ],
)
def test_given_a_malformed_file_when_replayed_then_nothing_is_yielded_and_the_error_names_file_and_line(name, message):
    path = DATA / name
    yielded: list[Outgoing] = []

    with pytest.raises(SourceError) as error:
        yielded.extend(replay(path))

    assert str(error.value) == f"{path}{message}"
    assert "\n" not in str(error.value)
    assert yielded == []


def test_given_a_missing_file_when_replayed_then_the_error_names_it(tmp_path):
    with pytest.raises(SourceError) as error:
        list(replay(tmp_path / "nope.csv"))

    assert str(error.value) == f"{tmp_path / 'nope.csv'}: no such file"


def test_given_every_fixture_then_each_is_covered_by_a_replay_test():
    # A fixture added without a test here would silently test nothing.
    covered = {
        "replay_previous_close.csv", "replay_days.csv", "replay_invalid_rows.csv", "replay_bad_header.csv",
        "replay_too_many_fields.csv", "replay_too_few_fields.csv", "replay_empty.csv", "replay_header_only.csv",
        "replay_not_utf8.csv",
    }
    assert {path.name for path in DATA.glob("replay_*.csv")} == covered


# --------------------------------------------------------------------------------------------
# synthetic

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
SYMBOLS = ["AAPL", "MSFT", "XYZ"]  # XYZ has no base price: a seeded one


def test_given_the_same_seed_when_generated_twice_then_the_ticks_are_identical():
    first = [r.data for r in synthetic(SYMBOLS, 7, 120, START)]
    again = [r.data for r in synthetic(SYMBOLS, 7, 120, START)]

    assert len(first) == 120
    assert first == again


def test_given_different_seeds_when_generated_then_the_prices_differ():
    prices = {seed: [parse_tick(r.data).price for r in synthetic(SYMBOLS, seed, 30, START)] for seed in (7, 8)}

    assert prices[7] != prices[8]


@pytest.mark.parametrize("seed", [7, 42, 2026])
def test_given_80_ticks_per_symbol_then_each_series_shows_a_buy_a_sell_and_an_anomaly(seed):
    market = SyntheticMarket(SYMBOLS, seed=seed, start=START)

    for symbol in SYMBOLS:
        series = market.series(symbol, 80)
        signals = {alert.signal for alert in crossovers(symbol, [PricePoint(t.timestamp, t.price) for t in series])}
        anomalies = [i for i, tick in enumerate(series) if is_anomaly(tick.change_percent, Decimal(5))]

        assert {Signal.BUY, Signal.SELL} <= signals, symbol
        assert anomalies == [8, 58], symbol  # the planted jumps: first_jump, then every jump_every


def test_given_several_symbols_then_ticks_round_robin_in_timestamp_order():
    records = list(synthetic(SYMBOLS, 42, 7, START))
    ticks = [parse_tick(r.data) for r in records]

    assert [(t.symbol, t.timestamp) for t in ticks] == [
        ("AAPL", "2026-01-05T14:30:00.000Z"),
        ("MSFT", "2026-01-05T14:30:00.000Z"),
        ("XYZ", "2026-01-05T14:30:00.000Z"),
        ("AAPL", "2026-01-05T14:30:01.000Z"),
        ("MSFT", "2026-01-05T14:30:01.000Z"),
        ("XYZ", "2026-01-05T14:30:01.000Z"),
        ("AAPL", "2026-01-05T14:30:02.000Z"),
    ]
    assert {t.source for t in ticks} == {"synthetic"}
    assert [r.partition_key for r in records] == [t.symbol for t in ticks]


def test_given_a_symbol_when_the_market_is_asked_for_its_series_then_it_is_the_same_as_in_the_round_robin():
    market = SyntheticMarket(SYMBOLS, seed=42, start=START)

    round_robin = [t for t in market.ticks(30) if t.symbol == "MSFT"]

    assert round_robin == market.series("MSFT", 10)
    assert list(itertools.islice(market.ticks(None), 4))[3] == market.series("AAPL", 2)[1]


def test_given_a_rate_then_each_symbols_clock_advances_with_the_wall_clock():
    ticks = [parse_tick(r.data) for r in synthetic(["AAPL", "MSFT"], 42, 5, START, rate=10)]

    # 10 ticks/s over two symbols: one tick per symbol every 0.2 s.
    assert [(t.symbol, t.timestamp) for t in ticks] == [
        ("AAPL", "2026-01-05T14:30:00.000Z"),
        ("MSFT", "2026-01-05T14:30:00.000Z"),
        ("AAPL", "2026-01-05T14:30:00.200Z"),
        ("MSFT", "2026-01-05T14:30:00.200Z"),
        ("AAPL", "2026-01-05T14:30:00.400Z"),
    ]
