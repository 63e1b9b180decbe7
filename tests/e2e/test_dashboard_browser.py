"""The dashboard's page in a real headless Chromium (Debian's package, driven by Playwright for Python;
browsers cannot be downloaded here): it shows a symbol's chart, a new alert appears on it without a
reload while a planted crossover streams, its Backtest tab replays the same ticks from the archive
(a chart and the trade), and it says "engine unreachable" until the engine answers.

Without Chromium these tests are skipped with one line saying how to install it (`.ci/run` does)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.dashboard.process import DashboardProcess
from stockpipe.domain import Tick, canonical_timestamp
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.provision import Stack
from stockpipe.settings import Settings, unique_names
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
MISSING = "" if Path(CHROMIUM).is_file() else ("browser tests need Chromium: apt-get install -y chromium (Debian; "
                                                ".ci/run installs it), or CHROMIUM=/path/to/chromium")
if MISSING and os.environ.get("STOCKPIPE_REQUIRE_BROWSER"):  # CI: a browser test must run
    pytest.fail(MISSING, pytrace=False)
if MISSING:  # one line for the whole module, as `make test` reports it
    pytest.skip(MISSING, allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright for Python: make install")

# What a browser needs on a machine with no network and no screen (as root, no sandbox).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def planted(symbol: str, start: datetime, prices: list[float]) -> list[Tick]:
    return [Tick(symbol, canonical_timestamp(start + timedelta(seconds=n)), Decimal(str(price)), None, 1000, "test")
            for n, price in enumerate(prices)]


def test_the_page_shows_a_chart_and_a_new_alert_appears_on_it_without_a_reload(browser, engine, pipeline, settings,
                                                                                names, tmp_path):
    # A falling series (SMA-5 below SMA-20 once both exist), then a rise: exactly one BUY, in the rise.
    falling = planted("AAPL", START, [100 - 0.2 * n for n in range(25)])
    rising = planted("AAPL", START + timedelta(seconds=25), [96 + 1.5 * (n + 1) for n in range(8)])
    assert expected_alerts(frame(falling)) == set()
    (buy,) = expected_alerts(frame(falling + rising))
    assert buy[:2] == ("AAPL", "BUY") and buy[2] in {t.timestamp for t in rising}
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    sender.send([Outgoing.of(tick) for tick in falling])
    page_process = DashboardProcess(str(engine.url), "127.0.0.1", free_port(), env={**os.environ, **names},
                                    log_path=tmp_path / "dashboard.log")
    assert page_process.start(), (tmp_path / "dashboard.log").read_text()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(page_process.url)
        page.wait_for_function("() => document.getElementById('chart-AAPL')?.dataset.points === '25'", timeout=30_000)
        assert page.inner_text("#engine").startswith("engine ok: the AWS engine at AWS_ENDPOINT_URL=")
        assert page.locator("#alerts li").count() == 0
        page.evaluate("() => { window.notReloaded = true; }")

        sender.send([Outgoing.of(tick) for tick in rising])
        alert_id = f"AAPL#{buy[2]}#BUY"
        page.wait_for_selector(f'#alerts li[data-alert-id="{alert_id}"]', timeout=30_000)
        marks = page.wait_for_function(
            "() => { const c = document.getElementById('chart-AAPL');"
            " const t = c && c.data && c.data.find((trace) => trace.name === 'BUY');"
            " return t && t.customdata.length ? t.customdata : null; }", timeout=30_000).json_value()
        assert marks == [buy[2]]  # the marker sits on the chart at the crossover's tick
        assert page.evaluate("() => window.notReloaded") is True
        assert page.get_attribute("#chart-AAPL", "data-points") == "33"
        assert page.inner_text(f'#alerts li[data-alert-id="{alert_id}"]').startswith("BUY")
        assert page.inner_text("#count-items_stored") == "33" and page.inner_text("#count-alerts") == "1"
        page.wait_for_timeout(500)  # the last redraw settles before the picture
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        if os.environ.get("STOCKPIPE_SCREENSHOT"):
            page.screenshot(path=os.environ["STOCKPIPE_SCREENSHOT"], full_page=True)

        # The Backtest tab: the same 33 ticks read back from the archive, through stockpipe backtest's rule
        # (SMA-5/SMA-20 as the dashboard's): the BUY filled at the next tick, still open at the last one.
        wait_for(lambda: page.inner_text("#count-raw_objects"), lambda text: text not in ("–", "0"),
                 what="the archive on the page")
        ticks = falling + rising
        entry = next(n for n, tick in enumerate(ticks) if tick.timestamp == buy[2]) + 1
        archived = [tick.timestamp.replace("T", " ").removesuffix(".000Z") for tick in ticks]
        gain = float(ticks[-1].price / ticks[entry].price - 1)
        page.click("#tab-backtest")
        page.wait_for_function("() => document.getElementById('bt-chart-AAPL')?.dataset.points === '33'",
                               timeout=30_000)
        assert page.is_hidden("#live-view") and page.get_attribute("#bt-chart-AAPL", "data-trades") == "1"
        assert page.locator("#bt-trades-AAPL tr").all_inner_texts()[1].split("\t") == [
            archived[entry], f"{float(ticks[entry].price):g}", archived[-1], f"{float(ticks[-1].price):g}", f"{gain * 100:+.2f}%", "open"]
        assert page.inner_text("#bt-title") == "SMA-5/SMA-20 crossovers, costs 0 bps per side"
        assert "warning: fewer than 10 trades: AAPL 1; too few to judge the rule by" in page.inner_text("#bt-warnings")
        assert "a BUY signal on tick i, while flat, buys at the price of tick i+1" in page.inner_text("#bt-rule")
        page.screenshot(path=str(tmp_path / "backtest.png"), full_page=True)
        if os.environ.get("STOCKPIPE_BACKTEST_SCREENSHOT"):
            page.screenshot(path=os.environ["STOCKPIPE_BACKTEST_SCREENSHOT"], full_page=True)
        page.fill("#bt-form input[name=long]", "4")
        page.click("#bt-form button")
        page.wait_for_function("() => document.getElementById('bt-status').className === 'error'", timeout=30_000)
        assert page.inner_text("#bt-status") == ("short=5 must be below long=4 (the rule compares a shorter average "
                                                 "with a longer one)")
        assert errors == []
    finally:
        page.close()
        page_process.stop()


def test_the_page_says_engine_unreachable_until_the_engine_answers(browser, engine, tmp_path):
    if engine.name != "embedded":
        pytest.skip("starts an embedded engine of its own; tested with --engine embedded")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **unique_names(f"sp{uuid.uuid4().hex[:8]}"), "AWS_ENDPOINT_URL": url}
    page_process = DashboardProcess(url, "127.0.0.1", free_port(), env=env, log_path=tmp_path / "dashboard.log")
    assert page_process.start(), (tmp_path / "dashboard.log").read_text()
    page = browser.new_page()
    running: EmbeddedEngine | None = None
    try:
        page.goto(page_process.url)
        page.wait_for_function("() => document.getElementById('engine').textContent.startsWith('engine unreachable')",
                               timeout=30_000)
        assert f"AWS_ENDPOINT_URL={url}" in page.inner_text("#engine")
        assert page.get_attribute("#engine", "class") == "badge down"

        running = EmbeddedEngine(port, log_path=tmp_path / "engine.log").start()
        aws = AwsContext(Settings.from_env(env))
        Stack(aws, report=lambda line: None).up()
        KinesisSender(aws, aws.settings.stream_name).send([Outgoing.of(t) for t in planted("MSFT", START, [50.0] * 3)])
        page.wait_for_function("() => document.getElementById('engine').textContent.startsWith('engine ok')",
                               timeout=30_000)
        wait_for(lambda: page.inner_text("#count-items_stored"), lambda text: text == "3", what="3 items on the page")
        assert page.get_attribute("#engine", "class") == "badge ok"
    finally:
        page.close()
        page_process.stop()
        if running is not None:
            running.stop()
