"""The backtest against an independent computation: planted series whose trades are worked out by
hand here (the three round trips' returns written as arithmetic), and a reference written apart from
the product's code (averages as Fractions, fills, equity and drawdown by their definitions, the
portfolio over the merged timeline by brute force). ``report_json`` is what ``--json`` prints."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from stockpipe.backtest_page import render_html
from stockpipe.backtesting import Collector, Window, report_text, selection_problem, ticks_sql
from stockpipe.domain.backtest import BacktestError, Series, backtest, report_json
from stockpipe.domain.signals import PricePoint, crossovers, trend_changes

SHORT, LONG = 2, 3
COST_BPS = 10
C = COST_BPS / 10_000
TOLERANCE = 1e-9

# With SMA-2 against SMA-3 the sign at tick i is that of p[i] + p[i-1] - 2 p[i-2].
PLANTED = {
    # Down from the start; BUY at 4 (fill at 5, 10), SELL at 6 (fill at 7, 7); BUY at 9 (fill at 10, 11),
    # SELL at 14 (fill at 15, 14); BUY at 18 (fill at 19, 12), SELL at 20 (fill at 21, 9): flat at the end.
    "TRIP": [10, 9, 8, 9, 11, 10, 8, 7, 9, 12, 11, 13, 15, 12, 10, 14, 5, 10, 13, 12, 10, 9],
    # BUY at 4 (fill at 5, 9), SELL at 6 (fill at 7, 6); BUY at 8 (fill at 9, 11): open at the end (13).
    "OPEN": [10, 9, 8, 10, 11, 9, 7, 6, 9, 11, 12, 13],
    # Down, and the only crossover (a BUY) on the last tick: not traded.
    "LAST": [10, 9, 8, 7, 6, 9],
    # Up all along: a trend, never a crossover.
    "FLAT": [1, 2, 3, 4, 5, 6],
}
HAND = {  # (entry index, entry price, exit index, exit price, return, open), by hand
    "TRIP": [(5, 10, 7, 7, 7 * (1 - C) / (10 * (1 + C)) - 1, False),
             (10, 11, 15, 14, 14 * (1 - C) / (11 * (1 + C)) - 1, False),
             (19, 12, 21, 9, 9 * (1 - C) / (12 * (1 + C)) - 1, False)],
    "OPEN": [(5, 9, 7, 6, 6 * (1 - C) / (9 * (1 + C)) - 1, False),
             (9, 11, 11, 13, 13 * (1 - C) / (11 * (1 + C)) - 1, True)],
    "LAST": [],
    "FLAT": [],
}


def minute(i: int) -> str:
    return f"2026-03-02 10:{i:02d}:00"


def series_of(prices: list[int], synthetic: int = 0) -> Series:
    return Series([minute(i) for i in range(len(prices))], [Decimal(p) for p in prices], synthetic)


# -- the reference, written apart from the product ------------------------------------------------


def ref_signals(prices: list[Fraction], short: int, long: int) -> list[tuple[int, int]]:
    last, found = 0, []
    for i in range(long - 1, len(prices)):
        f = sum(prices[i - short + 1:i + 1]) / short
        s = sum(prices[i - long + 1:i + 1]) / long
        sign = (f > s) - (f < s)
        if sign and last and sign != last:
            found.append((i, sign))
        last = sign or last
    return found


def ref_trades(prices: list[Fraction], short: int, long: int, c: float) -> list[tuple[int, int, float, bool]]:
    trades, entry, n = [], None, len(prices)
    for i, sign in ref_signals(prices, short, long):
        if i + 1 >= n:
            continue
        if sign > 0 and entry is None:
            entry = i + 1
        elif sign < 0 and entry is not None:
            trades.append((entry, i + 1, float(prices[i + 1]) * (1 - c) / (float(prices[entry]) * (1 + c)) - 1, False))
            entry = None
    if entry is not None:
        trades.append((entry, n - 1, float(prices[-1]) * (1 - c) / (float(prices[entry]) * (1 + c)) - 1, True))
    return trades


def ref_equity(prices: list[Fraction], trades: list[tuple[int, int, float, bool]], c: float) -> list[float]:
    equity = []
    for t in range(len(prices)):
        value = 1.0
        for entry, exit_, ret, _ in trades:
            if exit_ < t:
                value *= 1 + ret
            elif entry <= t <= exit_:
                value *= float(prices[t]) * (1 - c) / (float(prices[entry]) * (1 + c))
        equity.append(value)
    return equity


def ref_drawdown(equity: list[float]) -> tuple[float, int, int, int, bool]:
    """(depth, peak index, trough index, end index, recovered) by the definitions, by brute force."""
    depths = [1 - v / max(equity[:i + 1]) for i, v in enumerate(equity)]
    depth = max(depths)
    if depth <= 0:
        return 0.0, 0, 0, 0, True
    trough = depths.index(depth)
    top = max(equity[:trough + 1])
    peak = max(i for i in range(trough + 1) if equity[i] == top)
    ends = [i for i in range(trough + 1, len(equity)) if equity[i] >= top]
    return depth, peak, trough, ends[0] if ends else len(equity) - 1, bool(ends)


def expected(planted: dict[str, list[int]], short: int, long: int, c: float) -> dict[str, object]:
    symbols, curves = {}, {}
    for symbol, raw in planted.items():
        prices = [Fraction(p) for p in raw]
        trades = ref_trades(prices, short, long, c)
        equity = ref_equity(prices, trades, c)
        curves[symbol] = equity
        depth, peak, trough, end, recovered = ref_drawdown(equity)
        closed = [ret for _, _, ret, is_open in trades if not is_open]
        losses = -sum(r for r in closed if r < 0)
        total = 1.0
        for _, _, ret, _ in trades:
            total *= 1 + ret
        symbols[symbol] = {
            "ticks": len(raw),
            "trades": [{"entry_time": minute(e), "entry_price": float(raw[e]), "exit_time": minute(x),
                        "exit_price": float(raw[x]), "return": ret, "open": is_open} for e, x, ret, is_open in trades],
            "total_return": total - 1, "buy_and_hold_return": raw[-1] / raw[0] - 1, "max_drawdown": depth,
            "drawdown": (minute(peak), minute(trough), minute(end), recovered, end - peak if depth else 0),
            "win_rate": sum(r > 0 for r in closed) / len(closed) if closed else None,
            "profit_factor": sum(r for r in closed if r > 0) / losses if losses else None,
            "exposure": sum(x - e + 1 for e, x, _, _ in trades) / len(raw),
        }
    # The portfolio: the mean equity at every minute of the merged timeline.
    moments = sorted({minute(i) for raw in planted.values() for i in range(len(raw))})
    value = []
    for when in moments:
        value.append(sum(curve[max([i for i in range(len(curve)) if minute(i) <= when], default=0)]
                         for curve in curves.values()) / len(curves))
    depth, _, trough, _, _ = ref_drawdown([1.0, *value])
    all_closed = [t["return"] for s in symbols.values() for t in s["trades"] if not t["open"]]  # type: ignore[attr-defined]
    losses = -sum(r for r in all_closed if r < 0)
    total = {
        "total_return": sum(s["total_return"] for s in symbols.values()) / len(symbols),  # type: ignore[misc]
        "buy_and_hold_return": sum(s["buy_and_hold_return"] for s in symbols.values()) / len(symbols),  # type: ignore[misc]
        "max_drawdown": depth, "trough": moments[trough - 1] if depth else None,
        "win_rate": sum(r > 0 for r in all_closed) / len(all_closed),
        "profit_factor": sum(r for r in all_closed if r > 0) / losses,
        "exposure": sum(s["exposure"] * s["ticks"] for s in symbols.values())  # type: ignore[operator]
        / sum(s["ticks"] for s in symbols.values()),  # type: ignore[misc]
    }
    return {"symbols": symbols, "total": total}


def close(actual: object, wanted: object) -> bool:
    if wanted is None or actual is None:
        return actual is wanted
    if isinstance(wanted, bool | str):
        return actual == wanted
    return abs(float(actual) - float(wanted)) <= TOLERANCE  # type: ignore[arg-type]


def assert_matches(printed: dict[str, object], wanted: dict[str, object]) -> None:
    for symbol, want in wanted["symbols"].items():  # type: ignore[attr-defined]
        got = printed["symbols"][symbol]  # type: ignore[index]
        assert got["ticks"] == want["ticks"], symbol
        assert len(got["trades"]) == len(want["trades"]), symbol
        for trade, expected_trade in zip(got["trades"], want["trades"], strict=True):
            assert set(trade) == {"entry_time", "entry_price", "exit_time", "exit_price", "return", "open"}
            for key, value in expected_trade.items():
                assert close(trade[key], value), (symbol, key, trade[key], value)
        for key in ("total_return", "buy_and_hold_return", "max_drawdown", "win_rate", "profit_factor", "exposure"):
            assert close(got[key], want[key]), (symbol, key, got[key], want[key])
        period = got["max_drawdown_period"]
        assert (period["from"], period["trough"], period["to"], period["recovered"], period["ticks"]) == \
            want["drawdown"], symbol
    total = printed["total"]
    for key in ("total_return", "buy_and_hold_return", "max_drawdown", "win_rate", "profit_factor", "exposure"):
        assert close(total[key], wanted["total"][key]), (key, total[key], wanted["total"][key])  # type: ignore[index]
    assert total["max_drawdown_period"]["trough"] == wanted["total"]["trough"]  # type: ignore[index]


# -- the planted series ----------------------------------------------------------------------------


def planted_report(cost_bps: float = COST_BPS) -> dict[str, object]:
    report = backtest({symbol: series_of(raw, synthetic=len(raw) if symbol == "TRIP" else 0)
                       for symbol, raw in PLANTED.items()}, SHORT, LONG, cost_bps)
    return json.loads(json.dumps(report_json(report)))  # as --json prints it


def test_the_three_round_trips_and_the_open_position_are_the_ones_worked_out_by_hand():
    printed = planted_report()
    for symbol, trades in HAND.items():
        got = printed["symbols"][symbol]["trades"]
        assert [(t["entry_time"], t["entry_price"], t["exit_time"], t["exit_price"], t["open"]) for t in got] == \
            [(minute(e), float(ep), minute(x), float(xp), is_open) for e, ep, x, xp, _, is_open in trades], symbol
        assert all(abs(t["return"] - want[4]) <= TOLERANCE for t, want in zip(got, trades, strict=True)), symbol
    trip = printed["symbols"]["TRIP"]
    r1, r2, r3 = (t[4] for t in HAND["TRIP"])
    assert abs(trip["total_return"] - ((1 + r1) * (1 + r2) * (1 + r3) - 1)) <= TOLERANCE
    assert trip["win_rate"] == pytest.approx(1 / 3, abs=TOLERANCE)
    assert trip["profit_factor"] == pytest.approx(r2 / -(r1 + r3), abs=TOLERANCE)
    assert trip["exposure"] == pytest.approx((3 + 6 + 3) / 22, abs=TOLERANCE)
    assert trip["buy_and_hold_return"] == pytest.approx(9 / 10 - 1, abs=TOLERANCE)
    assert printed["symbols"]["OPEN"]["win_rate"] == 0.0 and printed["symbols"]["OPEN"]["profit_factor"] == 0.0
    assert printed["symbols"]["LAST"]["untraded_last_signal"] == "BUY"
    assert printed["symbols"]["FLAT"]["trades"] == [] and printed["symbols"]["FLAT"]["signals"] == 0
    assert printed["symbols"]["FLAT"]["total_return"] == 0 and printed["symbols"]["FLAT"]["win_rate"] is None


@pytest.mark.parametrize("cost_bps", [COST_BPS, 0])
def test_json_equals_the_independent_computation(cost_bps):
    assert_matches(planted_report(cost_bps), expected(PLANTED, SHORT, LONG, cost_bps / 10_000))


def test_json_has_the_rule_and_the_warnings_that_apply():
    printed = planted_report()
    assert printed["rule"]["short"] == SHORT and printed["rule"]["long"] == LONG and printed["rule"]["cost_bps"] == 10
    assert "tick i+1" in printed["rule"]["entry"] and "not traded" in printed["rule"]["last_tick"]
    warnings = printed["warnings"]
    assert any(w.startswith("synthetic data: TRIP (22 of 22 ticks)") for w in warnings)
    assert any(w.startswith("fewer than 10 trades: FLAT 0, LAST 0, OPEN 2, TRIP 3") for w in warnings)
    assert not any("costs left at 0" in w for w in warnings)
    assert any("costs left at 0" in w for w in planted_report(0)["warnings"])


def random_walks(seed: int, symbols: int, ticks: int) -> dict[str, list[int]]:
    rng = random.Random(seed)
    walks = {}
    for s in range(symbols):
        price, walk = 100, []
        for _ in range(ticks):
            price = max(1, price + rng.choice([-2, -1, 0, 0, 1, 2]))  # flat stretches: ties
            walk.append(price)
        walks[f"S{s}"] = walk
    return walks


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walks_with_ties_match_the_reference(seed):
    walks = random_walks(seed, 3, 60)
    report = backtest({s: series_of(w) for s, w in walks.items()}, 3, 7, 5)
    assert_matches(json.loads(json.dumps(report_json(report))), expected(walks, 3, 7, 5 / 10_000))


def test_the_crossover_rule_is_trend_alerts_own():
    """The backtest's signals are trend_changes, which crossovers (trend-alerts' alerts) calls: the
    same ticks for both, and the same as the reference's averages compared as Fractions."""
    rng = random.Random(7)
    for _ in range(300):
        short = rng.randint(1, 6)
        long = rng.randint(short + 1, 12)
        prices = [Decimal(rng.choice(["10", "10.5", "11", "9.75"])) for _ in range(rng.randint(0, 60))]
        changes = trend_changes(prices, short, long)[1:]
        assert changes == ref_signals([Fraction(p) for p in prices], short, long)
        alerts = crossovers("X", [PricePoint(minute(i), p) for i, p in enumerate(prices)], short, long)
        assert [(a.timestamp, a.signal.value) for a in alerts] == \
            [(minute(i), "BUY" if sign > 0 else "SELL") for i, sign in changes]


# -- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("short", "long", "cost", "words"), [
    (5, 5, 0, "--short 5 must be below --long 5"),
    (8, 5, 0, "--short 8 must be below --long 5"),
    (0, 5, 0, "at least 1 tick"),
    (2, 5, -1, "--cost-bps -1"),
])
def test_bad_rules_are_refused_in_one_line(short, long, cost, words):
    with pytest.raises(BacktestError, match=words):
        backtest({"TRIP": series_of(PLANTED["TRIP"])}, short, long, cost)


def test_too_few_ticks_says_how_many_the_long_average_needs():
    with pytest.raises(BacktestError) as raised:
        backtest({"A": series_of([1, 2, 3]), "B": series_of(PLANTED["TRIP"][:10])}, 5, 20)
    assert "needs at least 21 ticks" in str(raised.value) and "A 3, B 10" in str(raised.value)


def test_windows_parse_and_refuse_from_after_to():
    window = Window.of("2026-03-02", "2026-03-02")
    assert window.end_exclusive and "TIMESTAMP '2026-03-03 00:00:00.000'" in " ".join(window.sql("t"))
    assert Window.of("2026-03-02T14:30:00+01:00", None).start.isoformat() == "2026-03-02T13:30:00"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="--from 2026-03-03 is after --to 2026-03-02T10:00"):
        Window.of("2026-03-03", "2026-03-02T10:00")
    with pytest.raises(ValueError, match="--to 'yesterday'"):
        Window.of(None, "yesterday")
    assert "symbol IN ('AAPL', 'MSFT')" in ticks_sql("t", ["AAPL", "MSFT"], Window())


def test_an_empty_selection_names_what_the_archive_has():
    counts = [("AAPL", 1200, "2026-03-02 10:00:00", "2026-03-02 12:00:00"), ("MSFT", 800, "2026-03-02 10:00:00",
                                                                             "2026-03-02 11:00:00")]
    window = Window.of("2026-04-01", None)
    assert selection_problem(["XYZ"], ["XYZ"], Window(), counts, "s3://b/raw-data/") == \
        "no ticks of XYZ in the archive; the symbols with ticks are AAPL (1,200), MSFT (800)"
    assert selection_problem(["AAPL"], ["AAPL"], window, counts, "s3://b/raw-data/") == \
        ("no ticks of AAPL from 2026-04-01 to the last tick; the archive has 1,200 tick(s) of AAPL from "
         "2026-03-02 10:00:00 to 2026-03-02 12:00:00")
    assert "the archive has 2,000 tick(s) from" in selection_problem([], [], window, counts, "s3://b/raw-data/")
    assert "the archive has no ticks" in selection_problem([], [], window, [], "s3://b/raw-data/")


def test_the_collector_takes_pages_across_symbols():
    collector = Collector()
    collector(["symbol", "timestamp", "price", "synthetic"], [["A", "2026-03-02 10:00:00.000", "1.5", "1"],
                                                             ["A", "2026-03-02 10:00:01.250", "2.0", "0"]])
    collector(["symbol", "timestamp", "price", "synthetic"], [["A", "2026-03-02T10:00:02.000", "2.5", "1"],
                                                             ["B", "2026-03-02 10:00:00", "7", "0"]])
    series = collector.series()
    assert series["A"].times == ["2026-03-02 10:00:00", "2026-03-02 10:00:01.250", "2026-03-02 10:00:02"]
    assert series["A"].prices == [Decimal("1.5"), Decimal("2.0"), Decimal("2.5")] and series["A"].synthetic == 2
    assert series["B"].prices == [Decimal(7)] and series["B"].synthetic == 0


def test_text_and_page_say_the_rule_and_the_figures():
    report = backtest({symbol: series_of(raw) for symbol, raw in PLANTED.items()}, SHORT, LONG, COST_BPS)
    text = report_text(report)
    assert "Backtest of the SMA-2/SMA-3 crossover rule" in text and "a BUY signal on tick i" in text
    assert "2026-03-02 10:11:00  open         13   +17.95%" in text and "Total: 4 symbols equally weighted" in text
    assert "a BUY signal on the last tick (2026-03-02 10:05:00) is not traded" in text
    page = render_html(report)
    assert page.count("<svg") == 4 and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page and "TRIP" in page and "exit*(1-c)/(entry*(1+c)) - 1" in page
