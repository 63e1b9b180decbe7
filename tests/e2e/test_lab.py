"""`stockpipe lab`: each lab's check where its outcome is not there yet and where it is (before the lab's
step and after); each mistake `lab break` plants named by doctor, undone by the fix the page gives
(`stockpipe init`) and by `lab reset`; and the bad input of the lab commands, one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.doctor import Status, diagnose
from stockpipe.engine import free_port
from stockpipe.lab import LABS, MISTAKES, check_lab, plant, planted, reset
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from tests.helpers import wait_for

POISON = Outgoing("AAPL", b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:00Z", "price": -5, "volume": 100}',
                  "poison")


def lines(result) -> list[str]:
    return [expectation.line for expectation in result.expectations]


def send_ticks(pipeline, count: int, seed: int, start: datetime | None = None) -> None:
    market = SyntheticMarket(["AAPL", "MSFT"], seed=seed, start=start or datetime.now(UTC))
    KinesisSender(pipeline.aws, pipeline.settings.stream_name).send([Outgoing.of(t) for t in market.ticks(count)])


def test_each_lab_check_fails_before_its_step_and_passes_after(pipeline, settings, names, tmp_path):
    aws, state, environ = pipeline.aws, tmp_path / "lab.json", {**os.environ, **names}

    def check(number: int, context: AwsContext = aws, wait: float = 0.0):
        return wait_for(lambda: check_lab(context, LABS[number], state=state, environ=environ),
                        lambda result: result.passed or wait == 0, timeout=max(wait, 1), interval=0.25,
                        what=f"lab {number}'s outcome")

    assert check(0).passed, lines(check(0))
    # Lab 1: nothing in the stream yet; then ticks.
    before = check(1)
    assert not before.passed and lines(before)[-1].startswith(f"✗ 0 ticks in stream {settings.stream_name}: ")
    assert not check(4).passed  # lab 4: nothing archived yet, so nothing to query
    nothing = check(6)  # lab 6: nothing archived yet, so nothing to backtest
    assert lines(nothing)[-1].startswith("✗ the archive has no ticks of the demo's symbols to backtest (the archive "
                                         "has no ticks"), lines(nothing)
    send_ticks(pipeline, 120, seed=11, start=datetime.now(UTC) - timedelta(hours=1))
    assert lines(check(1))[-1] == f"✓ 120 ticks in stream {settings.stream_name}"
    # Lab 2: stored and archived, but no dead letter until the learner sends the poisoned tick.
    before = check(2, wait=0)
    assert lines(before)[-1].startswith(f"✗ 0 bad tick(s) in the dead-letter queue {settings.dlq_name}: ")
    KinesisSender(aws, settings.stream_name).send([POISON])
    after = check(2, wait=60)
    assert after.passed and lines(after)[-1] == (f"✓ 1 bad tick(s) in the dead-letter queue {settings.dlq_name}, "
                                                 "the first because 'price: must be a positive number, got -5'"), \
        lines(after)
    # Lab 3: alerts, but the default windows until the learner deploys others.
    before = check(3)
    assert not before.passed and any(line.startswith("✗ trend-alerts runs the default SMA_SHORT") for line in lines(before))
    changed = AwsContext(replace(settings, sma_short=3, sma_long=10))
    Stack(changed, report=lambda line: None).up()
    environ.update(SMA_SHORT="3", SMA_LONG="10")  # the learner's terminal, after step 2's export
    stale = check(3)  # this terminal's settings are the old ones: the functions are not what it makes
    assert any(line.startswith(f"✗ {settings.process_function_name} is not what this terminal's settings make")
               for line in lines(stale)), lines(stale)
    assert lines(stale)[-1].startswith("✗ 0 alert(s) on ticks after trend-alerts was deployed at "), lines(stale)
    send_ticks(pipeline, 120, seed=12)
    after = check(3, changed, wait=60)
    assert after.passed, lines(after)
    assert "✓ trend-alerts runs SMA_SHORT=3 (default 5), SMA_LONG=10 (default 20)" in lines(after)
    # Lab 4: a query over the archive.
    after = check(4, changed, wait=60)
    assert after.passed and lines(after)[-1].startswith("✓ a query over the raw archive answers"), lines(after)
    # Lab 5: nothing planted; planted; fixed by init (the page's fix) once the backlog is through.
    before = check(5, changed)
    assert "✗ no mistake planted here yet: step 1: stockpipe lab break" in lines(before)
    plant(changed, "disabled-trigger", state=state)
    planted_now = check(5, changed)
    assert [line.split(":")[0] for line in lines(planted_now)[1:]] == [
        f"✓ a mistake was planted at {planted(state)['planted_at']} (stockpipe lab break)".split(":")[0],
        "✗ the planted mistake is still there", "✗ stockpipe doctor finds 1 problem(s)"]
    Stack(changed, report=lambda line: None).up()
    send_ticks(pipeline, 20, seed=13)
    assert check(5, changed, wait=90).passed
    # Lab 6: the backtest of the demo's symbols (here the two sent) with the windows of lab 3; one symbol the
    # archive lacks is named.
    demo = AwsContext(replace(changed.settings, producer_symbols=("AAPL", "MSFT")))
    after = check(6, demo, wait=60)
    assert after.passed, lines(after)
    assert lines(after)[1] == "✓ the archive has 260 ticks of AAPL, MSFT (AAPL 130, MSFT 130)", lines(after)
    assert lines(after)[2].startswith("✓ the backtest of SMA-3/SMA-10 trades every one of them (AAPL "), lines(after)
    lacking = check(6, AwsContext(replace(changed.settings, producer_symbols=("AAPL", "NOPE"))))
    assert lines(lacking)[-1].startswith("✗ the archive has no ticks of the demo's symbols to backtest (no ticks of "
                                         "NOPE in the archive; the symbols with ticks are AAPL (130), MSFT (130)"), \
        lines(lacking)
    # Lab 7: every resource there until the teardown.
    assert lines(check(7, changed))[0].startswith("✗ 35 resources of stack ")
    removed = Stack(changed, report=lambda line: None).down()
    assert lines(check(7, changed)) == [f"✓ no resource of stack {settings.stack_name!r} remains at {aws.target_name}"], \
        removed  # (the next test of the shared deployment finds it gone and deploys it again)


# What doctor's ✗ line says of each mistake.
NAMED = {"trailing-space": "(environment: TABLE_NAME)", "hidden-character": "U+200B ZERO WIDTH SPACE",
         "bucket-typo": "(environment: RAW_BUCKET)", "disabled-trigger": "process-ticks is Disabled"}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_is_named_by_doctor_and_undone_by_init_and_by_reset(pipeline, names, name, tmp_path):
    aws, state, environ = pipeline.aws, tmp_path / "lab.json", {**os.environ, **names}
    assert set(NAMED) == set(MISTAKES)
    mistake = plant(aws, name, state=state)
    stack = Stack(aws, report=lambda line: None)
    assert mistake.present(aws, stack) and planted(state)["mistake"] == name
    problems = [f.line for f in diagnose(environ).findings if f.status is Status.PROBLEM]
    assert any(NAMED[name] in line for line in problems), problems
    # The fix the page gives: stockpipe init. Then the flow runs again and doctor is clean.
    stack.up()
    assert not mistake.present(aws, stack)
    send_ticks(pipeline, 20, seed=21)
    wait_for(lambda: [f.line for f in diagnose(environ).findings if f.status is Status.PROBLEM], lambda found: not found,
             timeout=90, interval=0.25, what="doctor clean after the fix")
    # Planted again (the state file still says what was planted: a second plant is refused first).
    with pytest.raises(Exception, match="a mistake is planted already"):
        plant(aws, name, state=state)
    state.unlink()
    plant(aws, name, state=state)
    assert reset(aws, state=state, report=lambda line: None) == name
    assert not mistake.present(aws, stack) and not state.exists()


def stockpipe(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stockpipe.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_lab_commands_bad_input_is_one_line(engine, names, tmp_path):
    env = {**os.environ, **names}
    listed = stockpipe("lab", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0 and [line.split()[0] for line in listed.stdout.splitlines()] == [str(n) for n in LABS]
    nothing = stockpipe("lab", "check", "99", env=env, cwd=tmp_path)
    assert (nothing.returncode, nothing.stdout) == (2, "")
    assert nothing.stderr.splitlines() == ["stockpipe lab check: error: there is no lab '99': the labs are 0 set up, "
                                           "1 ingest, 2 process, 3 alerts, 4 query, 5 break and fix, "
                                           "6 backtest, 7 real AWS and cleanup"]
    # Not deployed: the check says which resources are missing; break says to run init first.
    undeployed = stockpipe("lab", "check", "2", "--json", env=env, cwd=tmp_path)
    assert undeployed.returncode == 1
    found = json.loads(undeployed.stdout)
    assert found["passed"] is False and found["expectations"][0]["line"].startswith("✗ 35 of 35 resources of stack ")
    refused = stockpipe("lab", "break", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "is missing): run stockpipe init first (make demo does it)" in refused.stderr
    unknown = stockpipe("lab", "break", "nonsense", env=env, cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.startswith("stockpipe lab break: error: no mistake named ")
    assert not (tmp_path / ".stockpipe" / "lab.json").exists()
    # No engine: one line saying how to start one.
    gone = stockpipe("lab", "check", "0", env={**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"},
                     cwd=tmp_path)
    assert gone.returncode == 1 and len(gone.stderr.splitlines()) == 1, gone.stderr
    assert "start the pipeline with make demo (or stockpipe emulator, then stockpipe init" in gone.stderr
    # No endpoint at all (the demo's line not pasted): real AWS, and no credentials here.
    unpasted = stockpipe("lab", "check", "0", env={key: value for key, value in env.items()
                                                   if not key.startswith("AWS_")} | {
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none")}, cwd=tmp_path)
    assert unpasted.returncode == 1 and len(unpasted.stderr.splitlines()) == 1, unpasted.stderr
    assert unpasted.stderr.endswith("paste the line make demo printed: export AWS_ENDPOINT_URL=...)\n")
    assert "Traceback" not in gone.stderr + refused.stderr + undeployed.stderr
