"""The producer never loses a tick: whatever it could not deliver, for any reason, is in its unsent
file with a one-line error and exit 1, and `stockpipe produce --source unsent` sends it again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from stockpipe.aws.context import AwsContext
from stockpipe.provision import Stack
from tests.helpers import wait_for


def test_the_stream_vanishing_mid_run_loses_nothing_and_the_unsent_file_goes_through_after_init(
        pipeline, settings, names, tmp_path, figures):
    started = time.monotonic()
    env = {**os.environ, **names}
    count = 2000
    producer = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "produce", "--count", str(count),
                                 "--rate", "400"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    kinesis = pipeline.aws.client("kinesis")
    wait_for(lambda: pipeline.status(full=False).table_items, lambda n: n >= 200, what="the producer under way")
    kinesis.delete_stream(StreamName=settings.stream_name, EnforceConsumerDeletion=True)
    _, stderr = producer.communicate(timeout=120)

    assert producer.returncode == 1, stderr
    [line] = [line for line in stderr.splitlines() if "error:" in line]
    found = re.search(r"(\d+) record\(s\) were sent, the (\d+) unsent are saved in (\S+):", line)
    assert found, line
    delivered, unsent, spool = int(found[1]), int(found[2]), tmp_path / found[3]
    assert delivered + unsent == count  # nothing the producer read is lost
    lines = spool.read_text().splitlines()
    assert len(lines) == unsent
    ids = {json.loads(json.loads(line)["data"])["id"] for line in lines}

    # The stream again (init re-creates what is missing), then the unsent file: every tick in it stored.
    Stack(AwsContext(settings), report=lambda line: None).up()
    resent = subprocess.run([sys.executable, "-m", "stockpipe.cli", "produce", "--source", "unsent",
                             "--file", str(spool)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resent.returncode == 0, resent.stderr
    assert f"sent {unsent} record(s)" in resent.stderr
    table = pipeline.aws.resource("dynamodb").Table(settings.table_name)

    def stored_ids() -> set[str]:
        items = table.scan(ProjectionExpression="#s, #t",
                           ExpressionAttributeNames={"#s": "symbol", "#t": "timestamp"})["Items"]
        return {f"{item['symbol']}#{item['timestamp']}" for item in items}

    missing = wait_for(lambda: len(ids - stored_ids()), lambda n: n == 0, what="every unsent tick stored (missing)")
    assert missing == 0
    figures("producer: stream deleted mid-run, then resent", count, delivered + unsent, 0, 0, 0, None, None,
            time.monotonic() - started)


def test_bad_arguments_are_refused_in_one_line(pipeline, names, tmp_path):
    env = {**os.environ, **names}
    for args, words in ((["--rate", "-1"], "--rate -1: give ticks per second above 0"),
                        (["--count", "0"], "--count 0: give a number of ticks above 0"),
                        (["--symbols", ""], "--symbols is empty"),
                        (["--source", "unsent"], "--source unsent needs --file")):
        done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "produce", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 1 and len(lines) == 1 and words in lines[0], (args, done.stderr)


def test_a_large_replay_to_a_missing_stream_fails_before_reading_the_file(engine, names, tmp_path):
    big = tmp_path / "big.csv"
    with big.open("w") as handle:
        handle.write("timestamp,symbol,price,volume\n")
        handle.writelines(f"2026-03-02T14:{n // 60 % 60:02d}:{n % 60:02d}Z,AAPL,100,1\n" for n in range(300_000))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "produce", "--source", "replay", "--file", str(big)],
                          env={**os.environ, **names}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"Stream {names['STREAM_NAME']} not found" in done.stderr, done.stderr
    assert time.monotonic() - started < 3
