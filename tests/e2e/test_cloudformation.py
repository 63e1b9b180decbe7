"""The CloudFormation route, as docs/cloudformation.md tells a user to take it: every command of the page
runs here, in order, with the AWS CLI, against the test's engine. Between them: the stack the template
made carries the flow with exact counts, `stockpipe plan` finds it as init makes it (but for what the
engine's CloudFormation drops, named exactly), a bad parameter and a failed deployment say what is
wrong in one line, a change is previewed as a change set, and deleting the stack leaves nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.context import AwsContext
from stockpipe.aws.queue import ingest_sender
from stockpipe.aws.stream import Outgoing
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings, unique_names
from stockpipe.status import Adapters
from tests.e2e.test_pipeline import INVALID, START, dead_letters, drain, judged_all
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame
from tests.workshop import sh_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cloudformation.md"
DEPLOY, PLAN, DRIFT, UNDRIFT, WHY, CHANGE, CLEAN_UP = range(7)
# What MiniStack 1.5.33's CloudFormation leaves out of what it makes (measured; the Engines page
# says so): `plan` must name exactly these and nothing else. AWS leaves out nothing.
MINISTACK_DROPS = {
    ("kinesis stream", "encryption: none -> KMS alias/aws/kinesis"),
    # Its tags are dropped: plan would adopt it while empty (and refuse it once it holds data).
    ("s3 bucket", "adopt: tag stockpipe:stack={stack} (exists, empty)"),
    ("sns topic", "encryption: none -> KMS alias/aws/sns"),
    # The tables' TimeToLiveSpecification and the bucket's LifecycleConfiguration (retention).
    ("dynamodb table", "ttl: off -> expires_at"),
    ("s3 bucket", "lifecycle raw-data/: none -> Glacier after 90 days, kept"),
    ("s3 bucket", "lifecycle athena-results/: none -> no Glacier, deleted after 7 days"),
}
DROPS = {"embedded": MINISTACK_DROPS, "compose": MINISTACK_DROPS, "aws": set[tuple[str, str]]()}


@dataclass
class Route:
    """A shell session through the page: variables a block sets (CODE_BUCKET, RAW) reach the next."""

    env: dict[str, str]
    cwd: Path
    settings: Settings
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, block: int | str, *, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        script = sh_blocks(PAGE)[block] if isinstance(block, int) else block
        state = self.cwd / ".page-variables"
        wrapped = (f"set -euo pipefail\n[ -f {state} ] && . {state}\n{script}\n"
                   f"for v in AWS_DEFAULT_REGION CODE_BUCKET RAW; do [ -n \"${{!v:-}}\" ] && declare -p $v; done > {state} || true\n")
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", wrapped], env={**self.env, **env}, cwd=self.cwd, capture_output=True,
                              text=True, timeout=300)
        self.seconds[str(block)] = time.monotonic() - started
        if check:
            assert done.returncode == 0, (script, done.stdout, done.stderr)
        return done


def plan_changes(output: str) -> set[tuple[str, str]]:
    """(kind, change) for every resource plan would not leave unchanged; "create" for a missing one."""
    changes: set[tuple[str, str]] = set()
    kind = ""
    for line in output.splitlines():
        resource = re.match(r"^  . (\w+)\s+(.+?)\s{2,}\S", line)
        if resource:
            action, kind = resource.groups()
            if action == "create":
                changes.add((kind, "create"))
        elif kind and (change := re.match(r"^      ~ (.+)$", line)):
            changes.add((kind, change.group(1)))
    return changes


@pytest.fixture(scope="module")
def route(engine, tmp_path_factory) -> Route:
    if engine.name == "localstack":
        pytest.skip("--engine localstack: its CloudFormation is not part of what this project verifies")
    names = unique_names(f"sp{uuid.uuid4().hex[:8]}")
    bin_dir = str(Path(sys.executable).parent)  # the stockpipe and aws of this environment
    # With a TTL, so that the template carries every retention setting (ten years: the series is dated 2026).
    env = {**os.environ, **names, "TICK_TTL_DAYS": "3650", "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    route = Route(env, tmp_path_factory.mktemp("cloudformation"), Settings.from_env(env))
    route.run(DEPLOY)
    yield route
    if (route.cwd / ".page-variables").exists() and "CLEAN_UP" not in route.seconds:
        route.run(CLEAN_UP, check=False)


def test_the_page_shows_the_blocks_this_test_runs():
    blocks = sh_blocks(PAGE)
    assert len(blocks) == 7
    assert "stockpipe template --out build/cloudformation" in blocks[DEPLOY]
    assert "aws cloudformation delete-stack" in blocks[CLEAN_UP]


def test_plan_finds_the_stack_as_init_makes_it_but_for_what_the_engine_drops(route, engine):
    shown = route.run(PLAN).stdout
    stack = route.settings.stack_name
    assert f"stack {stack!r}" in shown
    expected = {(kind, change.format(stack=stack)) for kind, change in DROPS[engine.name]}
    assert plan_changes(shown) == expected, shown


def test_the_stack_cloudformation_made_carries_the_flow_with_exact_counts(route):
    pipeline = Adapters(AwsContext(route.settings))
    valid = list(SyntheticMarket(["AAPL", "MSFT"], seed=11, start=START).ticks(160))
    expected = expected_alerts(frame(valid))
    records = [Outgoing.of(tick) for tick in valid]
    for offset, (payload, _) in enumerate(INVALID[:3]):
        records.insert(40 * offset + 5, Outgoing("AAPL", payload, f"bad-{offset}"))
    ingest_sender(pipeline.aws).send(records)
    wait_for(pipeline.status, lambda s: s.table_items == len(valid) and s.raw_records == len(valid)
             and s.dead_letters == 3 and s.alerts_sent >= len(expected),
             what="every tick stored and archived, the bad ones dead-lettered, the alerts sent")
    judged_all(pipeline, route.settings, len(valid))
    assert pipeline.status().alerts_sent == len(expected)
    received = drain(AlertInbox(pipeline.aws, pipeline.alerts_queue_url), len(expected))
    assert {(a["symbol"], a["signal"], a["timestamp"]) for a in received} == expected
    assert len(received) == len(expected)
    assert {m["payload"] for m in dead_letters(pipeline, 3)} == {p.decode() for p, _ in INVALID[:3]}


def test_drift_detection_names_exactly_the_change_made_by_hand_and_it_is_put_back(route):
    shown = route.run(DRIFT).stdout
    assert [line.split("\t") for line in shown.splitlines()] == [["ProcessLogs", "MODIFIED", "/RetentionInDays"]]
    route.run(UNDRIFT)
    logs = AwsContext(route.settings).client("logs")
    group = f"/aws/lambda/{route.settings.process_function_name}"
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in found] == [(group, route.settings.log_retention_days)]


def test_a_bad_parameter_is_refused_with_a_line_naming_it(route):
    done = route.run('aws cloudformation deploy --template-file build/cloudformation/packaged.yaml '
                     '--stack-name "$STACK_NAME" --capabilities CAPABILITY_NAMED_IAM '
                     '--parameter-overrides "StackName=my stack"', check=False)
    assert done.returncode != 0
    assert "Parameter 'StackName' must be letters, digits, _ . - (1-64) (as STACK_NAME)" in done.stderr


def test_a_failed_deployment_names_the_failing_resource_and_its_reason_in_one_line(route):
    other = f"{route.settings.stack_name}-again"  # the same names again: they exist
    failed = route.run('aws cloudformation deploy --template-file build/cloudformation/packaged.yaml '
                       '--stack-name "$STACK_NAME" --capabilities CAPABILITY_NAMED_IAM', check=False, STACK_NAME=other)
    assert failed.returncode != 0
    try:
        lines = route.run(WHY, STACK_NAME=other).stdout.strip().splitlines()
        assert len(lines) >= 1
        logical, reason = lines[0].split("\t")
        assert logical in {"Stream", "Ticks", "Ledger", "Heads", "Bucket", "Dlq", "OnFailure", "Topic"}, lines
        assert "already exists" in reason, lines
    finally:
        route.run('aws cloudformation delete-stack --stack-name "$STACK_NAME"\n'
                  'aws cloudformation wait stack-delete-complete --stack-name "$STACK_NAME"', STACK_NAME=other)


def test_a_change_is_previewed_as_a_change_set_and_not_applied(route):
    route.run(CHANGE, LOG_RETENTION_DAYS="14")
    sets = json.loads(route.run('aws cloudformation list-change-sets --stack-name "$STACK_NAME"').stdout)
    pending = [s for s in sets["Summaries"] if s["ExecutionStatus"] == "AVAILABLE"]
    assert len(pending) == 1, sets
    changes = json.loads(route.run(
        f'aws cloudformation describe-change-set --stack-name "$STACK_NAME" --change-set-name '
        f'{pending[0]["ChangeSetName"]}').stdout)["Changes"]
    modified = {c["ResourceChange"]["LogicalResourceId"] for c in changes}
    assert {"ProcessLogs", "TrendsLogs"} <= modified, modified
    # Not applied: the log groups keep 7 days.
    logs = AwsContext(route.settings).client("logs")
    group = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{route.settings.process_function_name}")
    assert group["logGroups"][0]["retentionInDays"] == route.settings.log_retention_days == 7


def test_deleting_the_stack_leaves_nothing_behind(route, engine):
    route.run(CLEAN_UP)
    route.seconds["CLEAN_UP"] = route.seconds[str(CLEAN_UP)]
    shown = route.run(PLAN).stdout
    missing = plan_changes(shown)
    assert missing and all(change == "create" for _, change in missing), shown
    assert re.search(r"^plan: (\d+) to create$", shown, re.M), shown
    print(f"\ncloudformation route: seconds per page block {route.seconds}")
