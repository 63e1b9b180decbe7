"""The command line as a user meets it: each subcommand alone, and bad input as one clear line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from stockpipe.domain import Tick, canonical_timestamp
from stockpipe.engine import free_port
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame


def stockpipe(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    # cwd is a scratch folder, so a developer's own .env never leaks into the test.
    return subprocess.run([sys.executable, "-m", "stockpipe.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # one line, no stack trace
    return lines[0]


def test_produce_replay_and_read_status_and_alerts(pipeline, settings, names, tmp_path):
    env = {**os.environ, **names}
    replay = tmp_path / "ticks.csv"
    rows = ["timestamp,symbol,price,volume,previous_close"]
    rows += [f"2026-03-02T14:{m:02d}:00Z,AAPL,{100 + (m % 7)},{1000 + m},100" for m in range(30)]
    rows += ["2026-03-02T15:00:00Z,AAPL,106,1,100",  # a 6 % move: one ANOMALY
             "2026-03-02T15:01:00Z,AAPL,-5,1,100",  # invalid: dead-lettered
             "2026-03-02T15:02:00Z,,101,1,100"]  # invalid: no symbol
    replay.write_text("\n".join(rows) + "\n")
    done = stockpipe("produce", "--source", "replay", "--file", str(replay), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sent 33 record(s)" in done.stderr

    # The alerts an independent computation (pandas) predicts for the 31 valid rows.
    valid = [Tick("AAPL", canonical_timestamp(row.split(",")[0]), Decimal(row.split(",")[2]), Decimal(100), 1, "replay")
             for row in rows[1:32]]
    expected = expected_alerts(frame(valid))
    status = wait_for(lambda: json.loads(stockpipe("status", "--json", env=env, cwd=tmp_path).stdout),
                      lambda s: (s["table_items"], s["dead_letters"], s["alerts_sent"]) == (31, 2, len(expected)),
                      what="the replayed file processed")
    assert (status["stream_records"], status["raw_records"]) == (33, 31)
    # The lag, read off the newest item of the one symbol: it arrived, then it was stored.
    lag = status["lag"]
    assert lag["symbols"] == 1 and 0 <= lag["ingest_to_stored_ms_median"] == lag["ingest_to_stored_ms_max"] < 60_000
    assert 0 <= lag["newest_stored_seconds_ago"] < 300
    shown = stockpipe("status", env=env, cwd=tmp_path).stdout
    assert f"lag stream -> table    {lag['ingest_to_stored_ms_max']:>6}ms  max over the newest tick of 1 symbol(s)" \
        in shown, shown

    # The two bad rows, each with its reason and payload; listing them twice leaves them queued.
    for _ in range(2):
        listed = stockpipe("dead-letters", "--json", env=env, cwd=tmp_path)
        assert listed.returncode == 0 and "2 record(s) in" in listed.stderr, listed.stderr
        reasons = sorted(json.loads(line)["reason"] for line in listed.stdout.splitlines())
        assert reasons == ["missing field(s): symbol", "price: must be a positive number, got '-5'"]

    alerts = stockpipe("alerts", "--json", env=env, cwd=tmp_path)
    assert alerts.returncode == 0, alerts.stderr
    parsed = [json.loads(line) for line in alerts.stdout.splitlines()]
    assert ("AAPL", "ANOMALY", "2026-03-02T15:00:00.000Z") in {(a["symbol"], a["signal"], a["timestamp"]) for a in parsed}
    assert {(a["symbol"], a["signal"], a["timestamp"]) for a in parsed} == expected
    assert len(parsed) == status["alerts_sent"] == len(expected)


def test_unreachable_endpoint_is_one_line(engine, tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    line = one_error_line(stockpipe("status", env=env, cwd=tmp_path))
    assert "cannot reach the AWS engine at AWS_ENDPOINT_URL=http://127.0.0.1:" in line


@pytest.mark.parametrize("command", ["status", "init", "plan"])
def test_an_endpoint_that_never_answers_fails_in_under_3_seconds(engine, tmp_path, command):
    """A port that accepts connections and never answers (a hung engine): botocore's retries would
    take half a minute; the first call to a target is one attempt with short timeouts."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}"}
        started = time.monotonic()
        line = one_error_line(stockpipe(command, env=env, cwd=tmp_path))
        elapsed = time.monotonic() - started
    assert "cannot reach the AWS engine at AWS_ENDPOINT_URL=http://127.0.0.1:" in line
    assert elapsed < 3, elapsed  # the whole command, interpreter start included (about 2 s here)


def test_an_endpoint_from_dotenv_is_named_with_its_line(engine, tmp_path):
    (tmp_path / ".env").write_text(f"# mine\nAWS_REGION=us-east-1\nAWS_ENDPOINT_URL=http://127.0.0.1:{free_port()}\n")
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    line = one_error_line(stockpipe("status", env=env, cwd=tmp_path))
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:" in line and "(from .env line 3)" in line


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("AWS_REGION", "us-east-1\n", "AWS_REGION='us-east-1\\n' is not an AWS region name"),
    ("ALERT_EMAIL", "ops\u200b@example.com", "ALERT_EMAIL='ops\\u200b@example.com' contains the hidden character U+200B"),
    ("TRENDS_FUNCTION_NAME", "t" * 60, "TRENDS_FUNCTION_NAME='" + "t" * 60 + "' is 60 characters; at most 59"),
    ("LAMBDA_RUNTIME", "python3.10", "LAMBDA_RUNTIME='python3.10' is too old: the stockpipe zip imports only on python3.11"),
    ("STREAM_NAME", "stock-market-stream ", "STREAM_NAME='stock-market-stream ' has leading or trailing whitespace"),
])
def test_a_setting_that_cannot_work_is_refused_at_start_naming_it(engine, tmp_path, variable, value, words):
    started = time.monotonic()
    line = one_error_line(stockpipe("init", env={**os.environ, variable: value}, cwd=tmp_path))
    assert words in line
    assert time.monotonic() - started < 3


def test_plan_prints_the_target_and_every_resource_and_changes_nothing(pipeline, settings, names, tmp_path):
    done = stockpipe("plan", env={**os.environ, **names, "SMA_LONG": "30"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("target: MiniStack") and f"at {settings.endpoint_url}" in lines[0]
    assert f"stack '{names['STACK_NAME']}'" in lines[1]
    assert "  ~ update    lambda function       " + settings.process_function_name in lines
    assert "      ~ environment: SMA_LONG" in lines
    assert lines[-1] == "plan: 2 to update, 33 unchanged", done.stdout
    again = stockpipe("plan", env={**os.environ, **names}, cwd=tmp_path)
    assert again.stdout.splitlines()[-1] == "plan: 35 unchanged", again.stdout  # the first plan changed nothing


def test_wrong_region_names_the_region(pipeline, names, tmp_path):
    env = {**os.environ, **names, "AWS_REGION": "eu-west-3"}
    line = one_error_line(stockpipe("produce", "--count", "3", env=env, cwd=tmp_path))
    assert names["STREAM_NAME"] in line and "AWS_REGION=eu-west-3" in line


def test_missing_resources_say_run_init(engine, names, tmp_path):
    line = one_error_line(stockpipe("status", env={**os.environ, **names}, cwd=tmp_path))
    assert "run 'stockpipe init'" in line


def test_malformed_replay_file_is_one_line_naming_file_and_line(pipeline, names, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,symbol,price\n2026-03-02T14:00:00Z,AAPL,1\n")
    line = one_error_line(stockpipe("produce", "--source", "replay", "--file", str(bad),
                                    env={**os.environ, **names}, cwd=tmp_path))
    assert f"{bad}:1: header must be timestamp,symbol,price,volume" in line and "missing volume" in line


def test_alerts_a_reader_did_not_show_stay_queued_for_the_next(pipeline, names, tmp_path):
    env = {**os.environ, **names}
    replay = tmp_path / "anomalies.csv"
    replay.write_text("timestamp,symbol,price,volume,previous_close\n"
                      + "".join(f"2026-01-02T10:{m:02d}:00Z,ANOM,110,1,100\n" for m in range(12)))
    assert stockpipe("produce", "--source", "replay", "--file", str(replay), env=env, cwd=tmp_path).returncode == 0
    wait_for(lambda: json.loads(stockpipe("status", "--json", env=env, cwd=tmp_path).stdout)["alerts_sent"],
             lambda n: n == 12, what="12 anomaly alerts published")

    # `stockpipe alerts --json | head -1`: the reader goes away after one line
    reader = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "alerts", "--json"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = reader.stdout.readline()
    reader.stdout.close()
    assert reader.wait(timeout=60) == 0 and reader.stderr.read() == ""  # no traceback
    rest = stockpipe("alerts", "--json", env=env, cwd=tmp_path).stdout.splitlines()
    stamps = [json.loads(line)["timestamp"] for line in [first, *rest]]
    assert len(set(stamps)) == len(stamps)  # none shown twice
    assert set(stamps) <= {f"2026-01-02T10:{m:02d}:00.000Z" for m in range(12)}
    # A line the reader wrote into the pipe between our reading the first and closing it is lost to us
    # as to `| head -1` (the reader cannot know it was not read); everything it did not write stays queued.
    assert len(stamps) >= 10, stamps  # (written meanwhile: one line, two on a loaded machine)


def test_the_emulator_stops_its_engine_when_it_is_stopped_or_killed(request, tmp_path):
    """`kill` (or `docker stop`, or a closed terminal) stops the engine as Ctrl-C does; even
    `kill -9`, which leaves no chance to clean up, does not leave an engine running."""
    from stockpipe.engine import healthy, port_in_use

    if request.config.getoption("--engine") != "embedded":
        pytest.skip("the emulator command runs the embedded engine; tested with --engine embedded")
    for signal_number in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
        port = free_port()
        emulator = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "emulator", "--port", str(port)],
                                    cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), bool, timeout=60,  # noqa: B023
                     what="the emulator's engine answering")
            emulator.send_signal(signal_number)
            code = emulator.wait(timeout=30)
            assert code == (-signal.SIGKILL if signal_number == signal.SIGKILL else 0), emulator.stdout.read()
            wait_for(lambda: port_in_use(port), lambda busy: not busy, timeout=20,  # noqa: B023
                     what=f"the engine gone after {signal.Signals(signal_number).name}")
        finally:
            if emulator.poll() is None:
                emulator.kill()
