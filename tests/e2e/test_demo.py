"""`make demo` as a user runs it (outside a terminal it prints lines instead of a screen)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from stockpipe.engine import free_port, port_in_use
from tests.helpers import wait_for


@pytest.mark.parametrize("ingest", ["kinesis", "sqs"])
def test_the_demo_shows_every_kind_of_alert_and_stops_everything_it_started(request, tmp_path, ingest):
    """THRESHOLD among them: without ALERT_THRESHOLD the demo sets one its synthetic market crosses."""
    if request.config.getoption("--engine") != "embedded":
        pytest.skip("the demo always runs on the embedded engine; it is tested with --engine embedded")
    port, page = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    env.update(ENGINE_PORT=str(port), DASHBOARD_PORT=str(page), PRODUCER_RATE="30", INGEST=ingest, ALERT_THRESHOLD="")
    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "demo", "--seconds", "15"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = re.findall(r"^\d\d:\d\d:\d\d (BUY|SELL|ANOMALY|THRESHOLD) +([A-Z]+) ", done.stdout, re.MULTILINE)
    assert {signal for signal, _ in shown} == {"BUY", "SELL", "ANOMALY", "THRESHOLD"}
    assert "price alerts at ALERT_THRESHOLD=AAPL:193.8,AMZN:188.7,MSFT:428.4 (set ALERT_THRESHOLD" in done.stdout
    assert f"(INGEST={ingest})" in done.stdout
    assert {symbol for _, symbol in shown} == {"AAPL", "MSFT", "AMZN"}
    ended = re.search(r"demo ended: (\d+) ticks sent, (\d+) alerts received, first alert ([\d.]+)s", done.stdout)
    assert ended and int(ended[2]) == len(shown) and float(ended[3]) < 60
    assert f"\ndashboard: http://127.0.0.1:{page}  (open it in a browser)\n" in done.stdout
    assert not port_in_use(port) and not port_in_use(page)  # the engine and the dashboard it started are gone


def test_a_second_terminal_with_the_line_the_demo_prints_sees_the_demo_exactly(request, tmp_path):
    """The line the demo prints is all another terminal needs: plan finds every resource unchanged, and
    doctor finds nothing wrong (without the demo's own price threshold, plan would see 2 to update)."""
    if request.config.getoption("--engine") != "embedded":
        pytest.skip("the demo always runs on the embedded engine; it is tested with --engine embedded")
    base = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ALERT_THRESHOLD"))}
    base.update(ENGINE_PORT=str(free_port()), DASHBOARD_PORT=str(free_port()))
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "demo"], env=base, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        printed = wait_for(lambda: re.search(r"^  export (AWS_ENDPOINT_URL=\S+) (ALERT_THRESHOLD=\S+)$", log.read_text(),
                                             re.M), lambda found: found is not None or demo.poll() is not None,
                           timeout=120, interval=0.5, what="the line for another terminal")
        assert printed is not None, log.read_text()
        second = {**base, **dict(part.split("=", 1) for part in printed.groups())}
        plan = subprocess.run([sys.executable, "-m", "stockpipe.cli", "plan"], env=second, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert plan.returncode == 0 and plan.stdout.splitlines()[-1] == "plan: 26 unchanged", plan.stdout[-2000:]
        doctor = subprocess.run([sys.executable, "-m", "stockpipe.cli", "doctor"], env=second, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert doctor.returncode == 0 and "✗" not in doctor.stdout, doctor.stdout
        without = {key: value for key, value in second.items() if key != "ALERT_THRESHOLD"}
        unpasted = subprocess.run([sys.executable, "-m", "stockpipe.cli", "plan"], env=without, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)
        assert unpasted.stdout.splitlines()[-1] == "plan: 2 to update, 24 unchanged"
    finally:
        os.killpg(demo.pid, signal.SIGTERM)  # stops the way Ctrl-C does
        demo.wait(timeout=60)
    assert "demo ended:" in log.read_text()
