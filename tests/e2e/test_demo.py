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

ALERT = re.compile(r"^\d\d:\d\d:\d\d (BUY|SELL|ANOMALY|THRESHOLD) +([A-Z]+) ", re.MULTILINE)
KINDS, SYMBOLS = {"BUY", "SELL", "ANOMALY", "THRESHOLD"}, {"AAPL", "MSFT", "AMZN"}


def shown_alerts(output: str) -> tuple[set[str], set[str]]:
    """The kinds of alert and the symbols of the alert lines a demo printed."""
    shown = ALERT.findall(output)
    return {signal for signal, _ in shown}, {symbol for _, symbol in shown}


def check_the_run(output: str, ingest: str, page: int) -> None:
    """What a demo run printed: every kind of alert (THRESHOLD among them: without ALERT_THRESHOLD the
    demo sets one its synthetic market crosses) for every symbol, and the counts it ended with."""
    shown = ALERT.findall(output)
    assert {signal for signal, _ in shown} == KINDS
    assert "price alerts at ALERT_THRESHOLD=AAPL:193.8,AMZN:188.7,MSFT:428.4 (set ALERT_THRESHOLD" in output
    assert f"(INGEST={ingest})" in output
    assert {symbol for _, symbol in shown} == SYMBOLS
    ended = re.search(r"demo ended: (\d+) ticks sent, (\d+) alerts received, first alert ([\d.]+)s", output)
    assert ended and int(ended[2]) == len(shown) and float(ended[3]) < 60
    assert f"\ndashboard: http://127.0.0.1:{page}  (open it in a browser)\n" in output


def demo_environment(**settings: str) -> tuple[dict[str, str], int, int]:
    """This shell's environment without any AWS or threshold setting, the demo's ports free ones."""
    port, page = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ALERT_THRESHOLD"))}
    env.update(ENGINE_PORT=str(port), DASHBOARD_PORT=str(page), PRODUCER_RATE="30", **settings)
    return env, port, page


@pytest.mark.parametrize("ingest", ["sqs"])  # INGEST=kinesis: the next test's run, stopped as Ctrl-C stops it
def test_the_demo_shows_every_kind_of_alert_and_stops_everything_it_started(request, tmp_path, ingest):
    """Run for --seconds."""
    if request.config.getoption("--engine") != "embedded":
        pytest.skip("the demo always runs on the embedded engine; it is tested with --engine embedded")
    env, port, page = demo_environment(INGEST=ingest)
    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "demo", "--seconds", "15"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    check_the_run(done.stdout, ingest, page)
    assert not port_in_use(port) and not port_in_use(page)  # the engine and the dashboard it started are gone


def test_a_second_terminal_with_the_line_the_demo_prints_sees_the_demo_exactly(request, tmp_path):
    """The line the demo prints is all another terminal needs: plan finds every resource unchanged, and
    doctor finds nothing wrong (without the demo's own price threshold, plan would see 2 to update).
    The same run (INGEST=kinesis) shows every kind of alert, and stopped as Ctrl-C stops it, it stops
    everything it started."""
    if request.config.getoption("--engine") != "embedded":
        pytest.skip("the demo always runs on the embedded engine; it is tested with --engine embedded")
    base, port, page = demo_environment(INGEST="kinesis")
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
        assert plan.returncode == 0 and plan.stdout.splitlines()[-1] == "plan: 35 unchanged", plan.stdout[-2000:]
        doctor = subprocess.run([sys.executable, "-m", "stockpipe.cli", "doctor"], env=second, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert doctor.returncode == 0 and "✗" not in doctor.stdout, doctor.stdout
        without = {key: value for key, value in second.items() if key != "ALERT_THRESHOLD"}
        unpasted = subprocess.run([sys.executable, "-m", "stockpipe.cli", "plan"], env=without, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)
        assert unpasted.stdout.splitlines()[-1] == "plan: 2 to update, 33 unchanged"
        wait_for(lambda: shown_alerts(log.read_text()), lambda shown: shown == (KINDS, SYMBOLS) or demo.poll() is not None,
                 timeout=60, what="every kind of alert shown, for every symbol")
    finally:
        os.killpg(demo.pid, signal.SIGTERM)  # stops the way Ctrl-C does
        code = demo.wait(timeout=60)
    output = log.read_text()
    assert "demo ended:" in output
    assert code == 0, output[-3000:]
    check_the_run(output, "kinesis", page)
    assert not port_in_use(port) and not port_in_use(page)  # the engine and the dashboard it started are gone
