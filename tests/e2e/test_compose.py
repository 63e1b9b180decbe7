"""`docker compose up` itself, as a user runs it: the project's own producer streams ticks and its
alerts container prints the alerts. Runs with --engine compose only (the other engines have no
compose project); the rest of tests/e2e runs against the same project's engine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from stockpipe.engine import free_port
from tests.engines import COMPOSE_SCRIPT, ROOT, compose_checks
from tests.helpers import fresh_copy, wait_for
from tests.workshop import INSTRUCTOR, sh_blocks

ALERT_LINE = re.compile(r"\b(BUY|SELL|ANOMALY)\s+([A-Z][A-Z0-9.^-]*)\s+price ")
# The producer's default market (PRODUCER_SEED=42, three symbols) plants a >5 % jump in every symbol
# at its 9th tick and crosses SMA-5 over SMA-20 both ways within its first 80 ticks.
EXPECTED = {("ANOMALY", symbol) for symbol in ("AAPL", "MSFT", "AMZN")} | {("BUY",), ("SELL",)}


def kinds(text: str) -> set[tuple[str, ...]]:
    found = {(signal, symbol) for signal, symbol in ALERT_LINE.findall(text)}
    return found | {(signal,) for signal, _ in found}


@pytest.fixture
def project(engine):
    if engine.compose is None:
        pytest.skip("the compose project runs only with --engine compose")
    return engine.compose


def test_compose_up_runs_ticks_to_alerts(project):
    init = project.logs("init")
    assert re.search(r"ready in [\d.]+s: \d+ created", init), init
    alerts = wait_for(lambda: project.logs("alerts"), lambda text: kinds(text) >= EXPECTED,
                      timeout=120, interval=1, what="anomalies of every symbol, a BUY and a SELL printed")
    assert "Traceback" not in alerts
    assert "streaming to" in project.logs("producer")


def health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as answer:
            found: dict[str, Any] = json.load(answer)
            return found
    except (OSError, ValueError):
        return None


def test_the_dashboard_service_shows_the_flow_on_loopback(project):
    url = f"http://127.0.0.1:{project.env['DASHBOARD_PORT']}"
    seen = wait_for(lambda: health(url), lambda h: h is not None and h["engine"]["message"] == "ok"
                    and h["counts"]["items_stored"] > 0 and h["counts"]["alerts"] > 0,
                    timeout=120, interval=1, what="the dashboard service showing stored ticks and alerts")
    assert seen is not None and seen["engine"]["target"] == "the AWS engine at AWS_ENDPOINT_URL=http://engine:4566"
    with urllib.request.urlopen(url, timeout=5) as page:
        assert '<script src="/vendor/plotly.min.js"></script>' in page.read().decode()
    assert "Traceback" not in project.logs("dashboard")


# -- two readers at once ---------------------------------------------------------------------------

READER_SYMBOLS = ("ZRDA", "ZRDB")  # not the project producer's: only this test's series alerts on them
PRINTED = re.compile(r"^(?:\S+\s+\|\s+)?(\S+)\s+(BUY|SELL|ANOMALY|THRESHOLD)\s+(ZRD[AB])\s+price ", re.M)


def test_the_host_cli_and_the_alerts_container_each_see_every_alert(project, engine, tmp_path):
    """`make alerts` on this machine and the `alerts` container, running together, each print every alert
    of a known series: each reads a queue of its own."""
    from collections import Counter
    from datetime import UTC, datetime

    from stockpipe.aws.context import AwsContext
    from stockpipe.aws.stream import KinesisSender, Outgoing
    from stockpipe.producer.sources import SyntheticMarket
    from stockpipe.settings import Settings
    from tests.reference import expected_alerts, frame

    ticks = list(SyntheticMarket(list(READER_SYMBOLS), seed=11, start=datetime(2026, 3, 2, 14, 30, tzinfo=UTC))
                 .ticks(120))
    expected = Counter(expected_alerts(frame(ticks)))
    assert {signal for _, signal, _ in expected} == {"BUY", "SELL", "ANOMALY"}
    env = {key: value for key, value in os.environ.items() if not key.startswith(("STOCKPIPE_", "AWS_"))}
    env.update(AWS_ENDPOINT_URL=engine.url, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test")
    host = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "alerts", "--follow", "--json"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen: list[tuple[str, str, str]] = []

    def read_host() -> None:
        assert host.stdout is not None
        for line in host.stdout:
            alert = json.loads(line)
            if alert["symbol"] in READER_SYMBOLS:
                seen.append((alert["symbol"], alert["signal"], alert["timestamp"]))

    reader = threading.Thread(target=read_host, daemon=True)
    reader.start()
    try:
        KinesisSender(AwsContext(Settings.from_env(env)), Settings.from_env(env).stream_name).send(
            [Outgoing.of(tick) for tick in ticks])

        def container() -> Counter:
            return Counter((symbol, signal, stamp) for stamp, signal, symbol in PRINTED.findall(project.logs("alerts")))

        printed = wait_for(container, lambda found: sum(found.values()) >= sum(expected.values()), timeout=120,
                           interval=1, what="the alerts container printing the series' alerts")
        wait_for(lambda: len(seen), lambda n: n >= sum(expected.values()), timeout=60, interval=0.5,
                 what="stockpipe alerts on the host printing the series' alerts")
    finally:
        host.terminate()
        host.wait(timeout=30)
    assert printed == expected
    assert Counter(seen) == expected


# -- the dashboard's address ---------------------------------------------------------------------


def test_a_dashboard_port_other_than_8000_is_the_one_printed_and_served(project):
    port = project.env["DASHBOARD_PORT"]
    assert port != "8000"
    url = f"http://127.0.0.1:{port}"
    assert f"compose: dashboard: {url}\n" in project.up_output  # `make up` ends with it, once it answers
    assert f"dashboard: {url}  (reading" in project.logs("dashboard")  # the container names the same
    assert health(url) is not None
    # Only requests addressed to it: a page elsewhere cannot read the API through a name of its own.
    request = urllib.request.Request(f"{url}/api/health", headers={"Host": f"rebind.example:{port}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400


# -- .env refused before anything starts ------------------------------------------------------------


def test_a_quoted_trailing_space_is_refused_before_any_container_starts(project, tmp_path):
    env_file = tmp_path / "trailing.env"
    env_file.write_text('ENGINE=ministack\nSTREAM_NAME="stock-market-stream "\n')
    name = f"{project.name}-refused"
    done = subprocess.run([sys.executable, str(COMPOSE_SCRIPT), "--env-file", str(env_file), "-p", name, "up", "-d"],
                          env=project.env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "compose: error: STREAM_NAME='stock-market-stream ' has leading or trailing whitespace (U+0020); remove it "
        f"(set in {env_file} line 2); fix it in {env_file} (nothing was started)"]
    listed = subprocess.run(["docker", "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={name}"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout == ""


# -- plain `docker compose up`, as the design card says ---------------------------------------------


def plain_compose() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def test_plain_compose_up_from_a_fresh_copy_of_env_example_reaches_alerts(project, tmp_path):
    """No make, no script: `cp .env.example .env`, set ENGINE and PYTHON_IMAGE, `docker compose up`.
    The project name, the two published ports and the cache volume's name come from the environment only
    so that this second stack runs beside the session's and beside anything of the user's."""
    python_image = project.env.get("PYTHON_IMAGE") or compose_checks().configuration(project.env)["PYTHON_IMAGE"]
    clone = tmp_path / "stockpipe"
    fresh_copy(clone)
    example = (clone / ".env.example").read_text()
    example = re.sub(r"(?m)^ENGINE=.*$", "ENGINE=ministack", example)
    (clone / ".env").write_text(re.sub(r"(?m)^PYTHON_IMAGE=.*$", f"PYTHON_IMAGE={python_image}", example))
    name = f"{project.name}-plain"
    volume = f"{name}-cache"
    env = {key: os.environ[key] for key in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT") if key in os.environ}
    env.update(ENGINE_PORT=str(free_port()), DASHBOARD_PORT=str(free_port()), LOCALSTACK_VOLUME=volume)
    compose = [*plain_compose(), "-p", name]
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([*compose, "up", "--no-color"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        alerts = wait_for(lambda: (tmp_path / "up.log").read_text(errors="replace"),
                          lambda text: kinds(text) >= EXPECTED or up.poll() is not None, timeout=600, interval=1,
                          what="the plain `up` printing alerts")
        assert up.poll() is None, alerts[-3000:]
        assert kinds(alerts) >= EXPECTED and "Traceback" not in alerts
        assert "external" not in alerts  # compose made the cache volume itself
        made = subprocess.run(["docker", "volume", "inspect", volume], capture_output=True, timeout=60)
        assert made.returncode == 0
    finally:
        up.terminate()
        up.wait(timeout=120)
        subprocess.run([*compose, "down", "--remove-orphans", "--timeout", "5"], cwd=clone, env=env,
                       capture_output=True, timeout=300)
        kept = subprocess.run(["docker", "volume", "inspect", volume], capture_output=True, timeout=60).returncode
        subprocess.run([*compose, "down", "-v"], cwd=clone, env=env, capture_output=True, timeout=300)
        gone = subprocess.run(["docker", "volume", "inspect", volume], capture_output=True, timeout=60).returncode
        log.close()
    assert (kept, gone) == (0, 1)  # `down` keeps the cache volume; `down -v` removes it


def test_the_instructor_pages_docker_commands_carry_the_images(project, tmp_path):
    """For a room without wifi: the built images saved to one file and loaded back, as the page says."""
    commands = [block for block in sh_blocks(INSTRUCTOR) if block.startswith("docker ")]
    assert [command.split()[:2] for command in commands] == [["docker", "save"], ["docker", "load"]]
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (command, done.stderr)
    assert (tmp_path / "stockpipe-images.tar").stat().st_size > 50_000_000
    for image in ("stockpipe:synthetic", "stockpipe-ministack:local"):
        assert subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60).returncode == 0
