"""The dashboard without an engine: what it keeps (bounded windows, averages, changes since a version),
how it walks to new items, and its HTTP API's answers to good and bad parameters."""

from __future__ import annotations

import gzip
import json
import re
from decimal import Decimal
from typing import Any

import anyio
import pandas as pd
import pytest
from starlette.testclient import TestClient

from stockpipe.aws.context import AwsContext
from stockpipe.aws.live import Waiting
from stockpipe.dashboard import app as dashboard_app
from stockpipe.dashboard.app import create_app, plotly_js, served_hosts
from stockpipe.dashboard.reader import MAX_STEPS, Sources, Watcher, dead_letter_reason, on_failure_reason
from stockpipe.dashboard.state import UPDATES_KEPT, LiveState, percentile
from stockpipe.settings import Settings


def item(symbol: str, second: int, price: float, previous: int | None = None, **extra: Any) -> dict[str, Any]:
    stamp = f"2026-03-02T14:{second // 60:02d}:{second % 60:02d}.000Z"
    made: dict[str, Any] = {"symbol": symbol, "timestamp": stamp, "price": Decimal(str(price)), **extra}
    if previous is not None:
        made["previous_timestamp"] = f"2026-03-02T14:{previous // 60:02d}:{previous % 60:02d}.000Z"
    return made


def series(symbol: str, prices: list[float]) -> list[dict[str, Any]]:
    return [item(symbol, n, p, n - 1 if n else None) for n, p in enumerate(prices)]


PRICES = [100 + (n % 7) - (n % 3) * 0.5 + n * 0.1 for n in range(60)]


# -- state ------------------------------------------------------------------------------------------------


def test_points_carry_the_moving_averages_pandas_computes():
    state = LiveState(short=5, long=20, window=1000)
    state.apply(items={"AAPL": series("AAPL", PRICES)})
    points = state.points("AAPL", None, None)
    prices = pd.Series(PRICES)
    short, long = prices.rolling(5).mean(), prices.rolling(20).mean()
    assert [p["p"] for p in points] == PRICES
    assert [p["s"] for p in points] == [None if pd.isna(v) else round(v, 4) for v in short]
    assert [p["l"] for p in points] == [None if pd.isna(v) else round(v, 4) for v in long]


def test_a_symbol_read_whole_shows_its_window_and_the_items_before_feed_the_averages():
    state = LiveState(short=5, long=20, window=10)
    state.apply(whole={"AAPL": series("AAPL", PRICES[:29])})  # window + long - 1 items
    points = state.points("AAPL", None, None)
    assert [p["t"] for p in points] == [i["timestamp"] for i in series("AAPL", PRICES[:29])][-10:]
    assert points[0]["l"] == round(sum(PRICES[:20]) / 20, 4)  # defined from the first point shown
    state.apply(items={"AAPL": series("AAPL", PRICES[:35])[29:]})
    assert len(state.points("AAPL", None, None)) == 10  # bounded
    assert state.points("AAPL", None, None)[-1]["p"] == PRICES[34]


def test_changes_since_a_version_are_merged_and_a_reset_or_a_long_absence_asks_for_a_snapshot():
    state = LiveState(short=5, long=20, window=100)
    items = series("AAPL", PRICES[:30])
    state.apply(whole={"AAPL": items[:10]})
    start = state.version
    state.apply(items={"AAPL": items[10:12]}, alerts=[{"symbol": "AAPL", "signal": "BUY", "timestamp": "t"}])
    state.apply(items={"AAPL": items[12:15]})
    changes = state.changes_since(start)
    assert changes is not None
    assert [p["t"] for p in changes["points"]["AAPL"]] == [i["timestamp"] for i in items[10:15]]
    assert changes["replaced"] == [] and len(changes["alerts"]) == 1 and changes["version"] == state.version
    # a symbol read whole again replaces what a client shows of it
    state.apply(whole={"AAPL": items[:20]})
    replaced = state.changes_since(start)
    assert replaced is not None and replaced["replaced"] == ["AAPL"]
    assert [p["t"] for p in replaced["points"]["AAPL"]] == [i["timestamp"] for i in items[:20]]
    assert state.changes_since(start, symbols=["MSFT"])["points"] == {}  # type: ignore[index]
    state.apply(reset=True)
    assert state.changes_since(start) is None and state.symbols() == []
    for _ in range(UPDATES_KEPT + 1):
        state.apply(health={"look": {"requests": state.version}})
    assert state.changes_since(start + 1) is None  # further behind than the changes kept


def test_alert_count_and_lag_summary():
    now = 1_800_000_000.0
    state = LiveState(short=5, long=20, clock=lambda: now)
    at = int(now * 1000)
    state.apply(alerts=[{"symbol": "A", "signal": "BUY", "timestamp": "t1"}, {"symbol": "A", "signal": "SELL",
                                                                             "timestamp": "t2"}],
                lag=[{"at": at, "kind": "alert", "ms": 40}, {"at": at, "kind": "alert", "ms": 60},
                     {"at": at - 700_000, "kind": "alert", "ms": 9999}],  # older than the lag chart keeps
                item_lags=[(at, ms) for ms in range(1, 101)])
    health = state.health_copy()
    assert health["counts"]["alerts"] == 2
    assert health["lag"] | {"source": ""} == {"source": "", "table_p50_ms": 50, "table_p95_ms": 95,
                                              "alert_p50_ms": 40, "alert_p95_ms": 60}
    assert [sample["ms"] for sample in state.snapshot()["lag"]] == [40, 60]


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    assert (percentile(list(range(1, 11)), 0.5), percentile(list(range(1, 11)), 0.95)) == (5, 10)


# -- the reader's walk to new items -------------------------------------------------------------------------


class Ticks:
    """The tick table as the reader uses it, over a dict, counting what it is asked."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = {(i["symbol"], i["timestamp"]): i for i in items}
        self.asked: list[str] = []

    def get(self, keys):
        keys = list(keys)
        self.asked.append(f"get {len(keys)}")
        return {key: self.items[key] for key in keys if key in self.items}

    def _of(self, symbol):
        return sorted((i for (s, _), i in self.items.items() if s == symbol), key=lambda i: i["timestamp"])

    def newest(self, symbol, limit, *, after=None):
        self.asked.append("query")
        return [i for i in self._of(symbol) if after is None or i["timestamp"] > after][-limit:]

    def count_through(self, symbol, until, after=None):
        self.asked.append("count")
        return sum(1 for i in self._of(symbol) if i["timestamp"] <= until and (after is None or i["timestamp"] >= after))


def watcher(window: int = 50) -> Watcher:
    aws = AwsContext(Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}))
    made = Watcher(aws, LiveState(short=5, long=20, window=window))
    return made


def sources(ticks: Ticks) -> Sources:
    return Sources(heads=None, ticks=ticks, stream=None, objects=None, alerts=None, ledger=None,  # type: ignore[arg-type]
                   dead_alerts=None, dead_letters=None, on_failure=None, created="")  # type: ignore[arg-type]


def test_new_items_are_fetched_by_key_walking_back_from_the_head():
    everything = series("AAPL", PRICES[:40]) + series("MSFT", PRICES[:40])
    ticks = Ticks([i for i in everything if i["timestamp"] <= item("X", 29, 0)["timestamp"]])
    reader = watcher()
    head = item("X", 29, 0)["timestamp"]
    whole, new = reader.follow(sources(ticks), {"AAPL": head, "MSFT": head})
    assert {s: len(v) for s, v in whole.items()} == {"AAPL": 30, "MSFT": 30} and new == {}
    assert ticks.asked == ["query", "count", "query", "count"]  # once per symbol, at its first look
    assert reader._items == 60

    ticks.items.update({(i["symbol"], i["timestamp"]): i for i in everything})
    ticks.asked.clear()
    head = item("X", 33, 0)["timestamp"]
    whole, new = reader.follow(sources(ticks), {"AAPL": head, "MSFT": head})
    assert whole == {} and {s: [i["timestamp"] for i in v] for s, v in new.items()} == {
        s: [i["timestamp"] for i in series(s, PRICES[:34])[30:]] for s in ("AAPL", "MSFT")}
    assert ticks.asked == ["get 2"] * 4  # one BatchGetItem per step, both symbols in it; no Query
    assert reader._items == 68


def test_an_item_not_written_yet_is_waited_for_and_a_long_gap_is_one_query():
    everything = series("AAPL", PRICES)
    ticks = Ticks(everything[:20])
    reader = watcher()
    reader.follow(sources(ticks), {"AAPL": everything[19]["timestamp"]})
    # the head says 23, but 21 is still being written (a head comes before its batch's items)
    ticks.items.update({(i["symbol"], i["timestamp"]): i for i in everything[20:24] if i is not everything[21]})
    assert reader.follow(sources(ticks), {"AAPL": everything[23]["timestamp"]}) == ({}, {})
    ticks.items[("AAPL", everything[21]["timestamp"])] = everything[21]
    _, new = reader.follow(sources(ticks), {"AAPL": everything[23]["timestamp"]})
    assert [i["timestamp"] for i in new["AAPL"]] == [i["timestamp"] for i in everything[20:24]]

    # far ahead: one Query instead of MAX_STEPS and more lookups
    ticks.items.update({(i["symbol"], i["timestamp"]): i for i in everything})
    ticks.asked.clear()
    _, new = reader.follow(sources(ticks), {"AAPL": everything[-1]["timestamp"]})
    assert len(new["AAPL"]) == len(everything) - 24 > MAX_STEPS
    assert ticks.asked == ["get 1"] * MAX_STEPS + ["query"]
    assert reader._items == len(everything)


def test_a_gap_longer_than_the_window_reads_the_window_again_and_counts_what_was_skipped():
    everything = series("AAPL", PRICES)
    ticks = Ticks(everything[:5])
    reader = watcher(window=10)
    reader.follow(sources(ticks), {"AAPL": everything[4]["timestamp"]})
    ticks.items.update({(i["symbol"], i["timestamp"]): i for i in everything})
    whole, new = reader.follow(sources(ticks), {"AAPL": everything[-1]["timestamp"]})
    assert new == {} and [i["timestamp"] for i in whole["AAPL"]] == [i["timestamp"] for i in everything[-29:]]
    assert reader._items == len(everything)


class Ledger:
    def __init__(self, published: set[str]) -> None:
        self.ids, self.asked = published, []

    def published(self, ids):
        ids = list(ids)
        self.asked.append(len(ids))
        return dict.fromkeys(self.ids & set(ids), 0)


def test_alerts_published_before_the_view_started_are_found_in_the_ledger_for_the_points_read_whole():
    reader = watcher(window=10)
    listed = series("AAPL", PRICES[:29])
    listed[25]["anomaly"], listed[25]["change_percent"] = True, Decimal("7.5")
    ledger = Ledger({f"AAPL#{listed[22]['timestamp']}#BUY", f"AAPL#{listed[25]['timestamp']}#ANOMALY",
                     f"AAPL#{listed[5]['timestamp']}#SELL"})  # before the window: not shown
    found = reader._published_before(ledger, {"AAPL": listed})  # type: ignore[arg-type]
    assert ledger.asked == [10 * 2 + 1]  # BUY and SELL of each point shown, ANOMALY of the anomaly
    assert [(a["signal"], a["timestamp"], a["from"]) for a in found] == [
        ("BUY", listed[22]["timestamp"], "ledger"), ("ANOMALY", listed[25]["timestamp"], "ledger")]
    assert found[1]["message"] == f"AAPL moved +7.50% against the previous close (price {listed[25]['price']})."
    assert reader._published_before(ledger, {}) == []  # type: ignore[arg-type]
    # the same alert from the ledger and from the queue is shown (and counted) once
    state = LiveState(short=5, long=20)
    state.apply(alerts=found)
    state.apply(alerts=[{**found[0], "from": "queue"}])
    assert state.health_copy()["counts"]["alerts"] == 2 and len(state.alert_list(None, None, None, 10)) == 2


def test_failure_reasons_as_the_page_shows_them():
    dead = Waiting(5, json.dumps({"stage": "process-ticks", "reason": "price: must be a positive number"}))
    assert dead_letter_reason(dead) == {"at": 5, "stage": "process-ticks", "reason": "price: must be a positive number"}
    assert dead_letter_reason(Waiting(6, '{"symbol": "AAPL"}'))["stage"] == "sns -> inbox"
    batch = Waiting(7, json.dumps({"requestContext": {"condition": "RetryAttemptsExhausted"}, "KinesisBatchInfo": {
        "shardId": "shardId-000000000000", "startSequenceNumber": "1", "endSequenceNumber": "9", "batchSize": 9,
        "streamArn": "arn:aws:kinesis:us-east-1:1:stream/s"}}))
    assert on_failure_reason(batch) == {"at": 7, "stage": "kinesis trigger", "reason": "9 record(s) given up on: "
                                        "RetryAttemptsExhausted (shard shardId-000000000000; stockpipe replay-failed)"}


# -- the HTTP API -------------------------------------------------------------------------------------------


@pytest.fixture
def client() -> TestClient:
    state = LiveState(short=5, long=20)
    state.apply(whole={"AAPL": series("AAPL", PRICES[:30]), "MSFT": series("MSFT", PRICES[:30])},
                alerts=[{"symbol": "AAPL", "signal": "BUY", "timestamp": item("X", 25, 0)["timestamp"], "price": 1.0},
                        {"symbol": "MSFT", "signal": "SELL", "timestamp": item("X", 26, 0)["timestamp"], "price": 2.0}])
    return TestClient(create_app(state, hosts=["testserver"]))


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/series?symbol=ZZZ", 404, "unknown symbol 'ZZZ': the dashboard shows AAPL, MSFT"),
    ("/api/series", 400, "symbol is required: /api/series?symbol=AAPL"),
    ("/api/series?symbol=aapl!", 400, "symbol 'aapl!' is not a ticker symbol (such as AAPL, BRK.B or ^GSPC)"),
    ("/api/series?symbol=AAPL&since=2026-03-02T15:00:00Z&until=2026-03-02T14:00:00Z", 400,
     "bad time range: since 2026-03-02T15:00:00.000Z is after until 2026-03-02T14:00:00.000Z"),
    ("/api/series?symbol=AAPL&since=yesterday", 400,
     "since='yesterday' is not an ISO 8601 time such as 2026-03-02T14:30:00Z"),
    ("/api/series?symbol=AAPL&from=1", 400, "unknown parameter(s) 'from': /api/series takes symbol, since, until"),
    ("/api/series?symbol=AAPL&symbol=MSFT", 400, "symbol is given 2 times; give it once"),
    ("/api/alerts?limit=0", 400, "limit=0 is out of range 1..500"),
    ("/api/alerts?limit=ten", 400, "limit='ten' is not a whole number"),
    ("/api/alerts?symbol=NOPE", 404, "unknown symbol 'NOPE': the dashboard shows AAPL, MSFT"),
    ("/api/health?verbose=1", 400, "unknown parameter(s) 'verbose': /api/health takes no parameters"),
    ("/events?symbols=AAPL,b@d", 400, "symbol 'b@d' is not a ticker symbol (such as AAPL, BRK.B or ^GSPC)"),
    ("/?symbols=$$", 400, "symbol '$$' is not a ticker symbol (such as AAPL, BRK.B or ^GSPC)"),
    ("/static/../settings.py", 404, "no such page: /settings.py"),
    ("/nowhere", 404, "no such page: /nowhere"),
])
def test_bad_parameters_are_a_4xx_that_says_what_is_wrong(client, path, status, message):
    answer = client.get(path)
    assert (answer.status_code, answer.json()) == (status, {"error": message})


def test_a_long_bad_value_is_quoted_by_its_first_characters_only(client):
    long = "A" * 10_000
    for path, message in [
        (f"/api/series?symbol={long}", f"symbol '{'A' * 40}'... (10000 characters) is not a ticker symbol"),
        (f"/api/alerts?limit={long}", f"limit='{'A' * 40}'... (10000 characters) is not a whole number"),
        (f"/api/health?{long}=1", f"unknown parameter(s) '{'A' * 40}'... (10000 characters): /api/health takes"),
        (f"/{long}", f"no such page: /{'A' * 39}... (10001 characters)"),
    ]:
        answer = client.get(path)
        assert answer.status_code in (400, 404) and answer.json()["error"].startswith(message), answer.json()
        assert len(answer.content) < 300


def test_only_requests_addressed_to_a_host_it_serves_are_answered():
    hosts = served_hosts("0.0.0.0", 8001)
    assert hosts == ["127.0.0.1:8001", "[::1]:8001", "localhost:8001"]
    client = TestClient(create_app(LiveState(short=5, long=20), hosts))
    for host in ("127.0.0.1:8001", "LOCALHOST:8001", "[::1]:8001"):
        assert client.get("/api/symbols", headers={"Host": host}).status_code == 200, host
    # a name a web page made resolve to 127.0.0.1 (DNS rebinding), another port, no port, no Host at all
    for host in ("attacker.example:8001", "127.0.0.1:8000", "localhost", "", "x" * 5000):
        answer = client.get("/api/health", headers={"Host": host})
        assert answer.status_code == 400, host
        assert answer.json()["error"].endswith("is not an address this dashboard serves (127.0.0.1:8001, "
                                               "[::1]:8001, localhost:8001); to serve another name, add it to "
                                               "DASHBOARD_ALLOWED_HOSTS"), answer.json()
        assert len(answer.content) < 300
    assert served_hosts("192.168.1.5", 80, ["class.local"]) == [
        "127.0.0.1", "127.0.0.1:80", "192.168.1.5", "192.168.1.5:80", "[::1]", "[::1]:80", "class.local",
        "class.local:80", "localhost", "localhost:80"]


def test_good_requests(client):
    since, until = item("X", 20, 0)["timestamp"], item("X", 24, 0)["timestamp"]
    answer = client.get(f"/api/series?symbol=aapl&since={since}&until={until}")
    assert answer.status_code == 200
    assert [p["t"] for p in answer.json()["points"]] == [item("X", n, 0)["timestamp"] for n in range(20, 25)]
    assert client.get("/api/alerts?symbol=MSFT").json()["alerts"] == [
        {"symbol": "MSFT", "signal": "SELL", "timestamp": item("X", 26, 0)["timestamp"], "price": 2.0}]
    assert [a["symbol"] for a in client.get("/api/alerts?limit=1").json()["alerts"]] == ["MSFT"]
    assert client.get("/api/symbols").json() == {"symbols": ["AAPL", "MSFT"]}
    assert client.get("/api/health").json()["counts"]["alerts"] == 2
    assert client.post("/api/health").status_code == 405


def test_the_page_loads_nothing_from_outside_and_plotly_comes_from_the_installed_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    own = [page.text] + [client.get(f"/static/{name}").text for name in ("dashboard.js", "dashboard.css")]
    for text in own:
        assert not re.search(r"(src|href)=\"(https?:)?//", text) and "cdn" not in text.lower()
    assert re.findall(r'<script src="([^"]+)"', page.text) == ["/vendor/plotly.min.js", "/static/dashboard.js"]
    zipped = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.content == plotly_js().read_bytes()  # httpx unzips
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(dashboard_app._plotly_gzipped()) == plotly_js().read_bytes()
    assert plotly_js().parts[-3:] == ("plotly", "package_data", "plotly.min.js")


def test_the_events_stream_sends_a_snapshot_then_what_changed():
    state = LiveState(short=5, long=20)
    items = series("AAPL", PRICES[:25])
    state.apply(whole={"AAPL": items[:20]})

    async def first_two() -> list[str]:
        stream = dashboard_app._stream(state, None)
        got = [await stream.__anext__()]
        state.apply(items={"AAPL": items[20:22]})
        got.append(await stream.__anext__())
        await stream.aclose()
        return got

    snapshot, update = anyio.run(first_two)
    kind, data = snapshot.split("\n")[:2]
    assert kind == "event: snapshot" and len(json.loads(data.removeprefix("data: "))["points"]["AAPL"]) == 20
    kind, data = update.split("\n")[:2]
    changed = json.loads(data.removeprefix("data: "))
    assert kind == "event: update" and [p["t"] for p in changed["points"]["AAPL"]] == [
        i["timestamp"] for i in items[20:22]]


# -- the Backtest view's API ------------------------------------------------------------------------------

# SMA-2 against SMA-3 (the sign at tick i is that of p[i] + p[i-1] - 2 p[i-2]): BUY at 4, filled at 5 (10);
# SELL at 6, filled at 7 (7); BUY at 9, filled at 10 (11); SELL at 14, filled at 15 (14); BUY at 18, filled at
# 19 (12); SELL at 20, filled at 21 (9). Flat at the end. (tests/unit/test_backtest.py works it out too.)
TRIP = [10, 9, 8, 9, 11, 10, 8, 7, 9, 12, 11, 13, 15, 12, 10, 14, 5, 10, 13, 12, 10, 9]
COST = 10 / 10_000  # cost_bps=10
KEEP = (1 - COST) / (1 + COST)  # what a round trip keeps of a flat price


def minute(i: int) -> str:
    return f"2026-03-02 10:{i:02d}:00"


class Archive:
    """A planted archive in the reader's place: the symbols and window each request asked for."""

    def __init__(self, planted: dict[str, list[int]], error: Exception | None = None) -> None:
        self.planted, self.error, self.asked = planted, error, []

    def __call__(self, symbols, window):
        from stockpipe.domain.backtest import Series

        self.asked.append((tuple(symbols), window))
        if self.error is not None:
            raise self.error
        return {s: Series([minute(i) for i in range(len(p))], [Decimal(v) for v in p]) for s, p in self.planted.items()
                if not symbols or s in symbols}


def backtest_client(archive: Archive | None) -> TestClient:
    return TestClient(create_app(LiveState(short=5, long=20), hosts=["testserver"], backtests=archive))


def test_the_backtest_api_answers_the_planted_series_exact_figures_and_the_curves_to_chart():
    archive = Archive({"TRIP": TRIP, "OTHER": [1, 2, 3, 4, 5]})
    answer = backtest_client(archive).get("/api/backtest?symbols=trip&from=2026-03-02T10:00&to=2026-03-02&short=2"
                                          "&long=3&cost_bps=10")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    ((symbols, window),) = archive.asked
    assert symbols == ("TRIP",) and window.text == "from 2026-03-02T10:00 to 2026-03-02" and window.end_exclusive
    returns = [7 * KEEP / 10 - 1, 14 * KEEP / 11 - 1, 9 * KEEP / 12 - 1]
    assert {k: v for k, v in body["rule"].items() if k in ("short", "long", "cost_bps")} == {
        "short": 2, "long": 3, "cost_bps": 10.0}
    assert body["rule"]["entry"] == "a BUY signal on tick i, while flat, buys at the price of tick i+1"
    trip = body["symbols"]["TRIP"]
    assert list(body["symbols"]) == ["TRIP"] and trip["ticks"] == 22
    assert [(t["entry_time"], t["entry_price"], t["exit_time"], t["exit_price"], t["open"]) for t in trip["trades"]] \
        == [(minute(5), 10, minute(7), 7, False), (minute(10), 11, minute(15), 14, False),
            (minute(19), 12, minute(21), 9, False)]
    assert [t["return"] for t in trip["trades"]] == pytest.approx(returns, abs=1e-12)
    assert trip["total_return"] == pytest.approx((1 + returns[0]) * (1 + returns[1]) * (1 + returns[2]) - 1, abs=1e-12)
    assert trip["buy_and_hold_return"] == pytest.approx(-0.1, abs=1e-12)
    assert trip["win_rate"] == pytest.approx(1 / 3) and trip["exposure"] == pytest.approx(12 / 22)
    assert trip["profit_factor"] == pytest.approx(returns[1] / -(returns[0] + returns[2]), abs=1e-12)
    # The deepest: at 10 in the second trade (tick 14), below the start's 1, never recovered.
    assert trip["max_drawdown"] == pytest.approx(1 - 7 / 11 * KEEP ** 2, abs=1e-12)
    assert trip["max_drawdown_period"] == {"from": minute(4), "trough": minute(14), "to": minute(21),
                                           "recovered": False, "ticks": 17, "seconds": 17 * 60.0}
    assert body["total"]["symbols"] == 1 and body["total"]["trades"] == 3
    assert body["warnings"] == ["fewer than 10 trades: TRIP 3; too few to judge the rule by"]
    # What the page plots: every tick (22 < the sample's 1200), buy and hold from 1, fills on the equity.
    chart = body["charts"]["TRIP"]
    assert chart["t"] == [minute(i) for i in range(22)] and chart["sampled"] is False
    assert chart["hold"] == pytest.approx([p / 10 for p in TRIP])
    assert chart["equity"][:5] == [1.0] * 5 and chart["equity"][-1] == pytest.approx(1 + trip["total_return"])
    assert chart["entries"]["t"] == [minute(5), minute(10), minute(19)]
    assert chart["entries"]["equity"] == pytest.approx([KEEP, 0.7 * KEEP ** 2, 0.7 * 14 / 11 * KEEP ** 3], abs=1e-8)
    assert chart["exits"]["equity"] == pytest.approx([0.7 * KEEP, 0.7 * 14 / 11 * KEEP ** 2,
                                                      0.7 * 14 / 11 * 9 / 12 * KEEP ** 3], abs=1e-8)
    assert chart["exits"]["open"] == [False] * 3 and chart["exits"]["return"] == pytest.approx(returns)


def test_the_backtest_api_defaults_to_the_dashboards_windows_and_every_symbol():
    archive = Archive({"AAPL": [100 + (n % 9) for n in range(60)]})
    body = backtest_client(archive).get("/api/backtest").json()
    assert archive.asked[0][0] == () and archive.asked[0][1].text == "the whole archive"
    assert (body["rule"]["short"], body["rule"]["long"], body["rule"]["cost_bps"]) == (5, 20, 0.0)
    assert body["warnings"][-1].startswith("costs left at 0")


@pytest.mark.parametrize(("query", "status", "message"), [
    ("short=x", 400, "short='x' is not a whole number"),
    ("short=0&long=3", 400, "short=0: the short average needs at least 1 tick"),
    ("short=5&long=5", 400, "short=5 must be below long=5 (the rule compares a shorter average with a longer one)"),
    ("long=4", 400, "short=5 must be below long=4 (the rule compares a shorter average with a longer one)"),
    ("cost_bps=abc", 400, "cost_bps='abc' is not a number"),
    ("cost_bps=-1", 400, "cost_bps=-1: costs are 0 or more basis points per side"),
    ("cost_bps=inf", 400, "cost_bps=inf: costs are 0 or more basis points per side"),
    ("from=yesterday", 400, "from='yesterday' is not a date or a time such as 2026-03-02 or 2026-03-02T14:30:00Z "
     "(UTC unless it says its zone)"),
    ("from=2026-03-03&to=2026-03-02", 400, "bad time range: from 2026-03-03 is after to 2026-03-02"),
    ("symbols=AAPL,b@d", 400, "symbol 'b@d' is not a ticker symbol (such as AAPL, BRK.B or ^GSPC)"),
    ("window=5", 400, "unknown parameter(s) 'window': /api/backtest takes symbols, from, to, short, long, cost_bps"),
    ("short=2&short=3", 400, "short is given 2 times; give it once"),
])
def test_bad_backtest_parameters_are_a_400_that_says_what_is_wrong_before_anything_is_read(query, status, message):
    archive = Archive({"AAPL": list(range(1, 30))})
    answer = backtest_client(archive).get(f"/api/backtest?{query}")
    assert (answer.status_code, answer.json()) == (status, {"error": message})
    assert archive.asked == []


def test_what_the_archive_or_the_rule_refuses_is_one_line():
    from stockpipe.backtesting import SelectionError

    missing = Archive({}, SelectionError("no ticks of ZZZ in the archive; the symbols with ticks are AAPL (29)"))
    answer = backtest_client(missing).get("/api/backtest?symbols=ZZZ")
    assert (answer.status_code, answer.json()) == (
        404, {"error": "no ticks of ZZZ in the archive; the symbols with ticks are AAPL (29)"})
    few = backtest_client(Archive({"AAPL": [1, 2, 3]})).get("/api/backtest?long=20")
    assert few.status_code == 400 and few.json()["error"].startswith("too few ticks for SMA-20: a crossover needs at "
                                                                     "least 21 ticks of a symbol")
    down = backtest_client(Archive({}, ConnectionError("engine gone\nsecond line"))).get("/api/backtest")
    assert (down.status_code, down.json()) == (503, {"error": "the archive could not be read: engine gone second line"})
    none = backtest_client(None).get("/api/backtest")
    assert none.status_code == 503 and none.json()["error"].startswith("this dashboard reads no archive")
