"""stockpipe doctor without an engine: the configuration's stray characters named with where they
were set, code read for invisible characters, and what only real AWS can show (an e-mail
subscription still pending, a deployer IAM refuses) answered in-process as AWS answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from stockpipe import dotenv
from stockpipe.aws.context import AwsContext, EngineInfo
from stockpipe.doctor import Diagnosis, configuration, flow, target
from stockpipe.doctor.code import strays
from stockpipe.doctor.model import Finding, Look, Status, ok, problem, skipped, warning
from stockpipe.provision.model import Found, Run
from stockpipe.provision.stack import resources
from stockpipe.settings import Settings
from tests.recording import ACCOUNT, aws_target, stub

REGION = "eu-west-1"


def lines(findings: list[Finding]) -> list[str]:
    return [finding.line for finding in findings]


def test_the_seeds_trailing_space_is_named_with_its_env_line(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("# stockpipe\n" + "".join(f"# line {n}\n" for n in range(2, 14))
                        + 'STREAM_NAME="stock-market-stream "\n')
    environ: dict[str, str] = {}
    loaded = dotenv.load(env_file, environ)
    findings, settings = configuration.check(environ, loaded.sources)
    assert lines(findings) == ["✗ STREAM_NAME='stock-market-stream ' has a trailing space (.env line 14): remove it"]
    # The rest of the diagnosis reads the name as it will be once the space is gone.
    assert settings is not None and settings.stream_name == "stock-market-stream"


def test_every_invisible_character_is_named_at_once_with_the_variable_and_where_it_was_set():
    environ = {"TABLE_NAME": "stock-market\u200b-data", "AWS_REGION": "us-east-1\u00a0", "ALERT_EMAIL": "\ufeffme@example.com",
               "PRODUCER_SYMBOLS": "AAPL, MSFT,AM\u200bZN", "DLQ_NAME": "dlq\u2060"}
    findings, settings = configuration.check(environ, {"AWS_REGION": ".env line 3"})
    assert lines(findings) == [
        "✗ TABLE_NAME='stock-market\\u200b-data' contains U+200B ZERO WIDTH SPACE, invisible, at character 13 "
        "(environment): retype the value",
        "✗ DLQ_NAME='dlq\\u2060' has a trailing U+2060 WORD JOINER (environment): remove it",
        "✗ AWS_REGION='us-east-1\\xa0' has a trailing U+00A0 NO-BREAK SPACE (.env line 3): remove it",
        "✗ ALERT_EMAIL='\\ufeffme@example.com' has a leading U+FEFF ZERO WIDTH NO-BREAK SPACE (environment): remove it",
        "✗ PRODUCER_SYMBOLS='AAPL, MSFT,AM\\u200bZN': symbol 3 ('AM\\u200bZN') contains U+200B ZERO WIDTH SPACE, "
        "invisible, at character 3 (environment): retype the symbol",
    ]
    assert settings is not None
    assert (settings.table_name, settings.region, settings.alert_email, settings.producer_symbols[-1]) == (
        "stock-market-data", "us-east-1", "me@example.com", "AMZN")


def test_a_non_ascii_letter_in_a_name_is_named_and_the_deployment_is_not_looked_at():
    findings, settings = configuration.check({"TOPIC_NAME": "Stock_Trend_Аlerts"}, {})
    assert lines(findings) == ["✗ TOPIC_NAME='Stock_Trend_Аlerts' contains the non-ASCII character U+0410 CYRILLIC "
                               "CAPITAL LETTER A (А) at character 13 (environment): retype the value"]
    assert settings is None  # cleaned of invisible characters it is still not a name AWS allows


def test_values_settings_refuses_for_other_reasons_are_each_one_line():
    findings, settings = configuration.check({"SMA_SHORT": "30", "KINESIS_BATCH_SIZE": "lots"},
                                             {"SMA_SHORT": ".env line 7"})
    assert settings is None
    assert lines(findings) == ["✗ KINESIS_BATCH_SIZE='lots' is not a whole number",
                               "✗ SMA_SHORT=30 must be smaller than SMA_LONG=20 (SMA_SHORT set in .env line 7)"]


def test_invisible_characters_in_code_are_found_anywhere_and_visible_ones_only_outside_text():
    source = ('def lambda\u200b_handler(event, context):\n'
              '    print("✓ done")  # → fine: text\n'
              '    tаble = "stock-market-data\u200b"\n')
    found = [(s.line, s.column, f"U+{ord(s.char):04X}", s.hidden) for s in strays("handler.py", source)]
    assert found == [(1, 11, "U+200B", True), (3, 6, "U+0430", False), (3, 31, "U+200B", True)]
    assert strays("handler.py", "if x:\n\treturn 1\n\x0c\n") == []  # a tab, a form feed: Python's whitespace
    assert str(strays("handler.py", source)[0]) == "U+200B ZERO WIDTH SPACE (invisible) at handler.py line 1, column 11"


def look_on_aws(env: dict[str, str] | None = None) -> Look:
    aws, _ = aws_target(env, REGION)
    return Look(aws, Run(aws, aws.settings.stack_name, report=lambda line: None), resources(aws), env or {}, {})


def test_an_email_subscription_not_yet_confirmed_is_named_with_what_to_do():
    look = look_on_aws({"ALERT_EMAIL": "me@example.com"})
    look.found["topic"] = Found("stockpipe")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:Stock_Trend_Alerts"
    sns = stub(look.aws, "sns")
    sns.add_response("list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": f"{topic}:1", "Protocol": "sqs", "Endpoint": "arn:aws:sqs:x", "TopicArn": topic},
        {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "me@example.com", "TopicArn": topic},
    ]}, {"TopicArn": topic})
    finding = flow._email(look)
    assert finding.line == (
        "✗ ALERT_EMAIL=me@example.com (environment) has not confirmed its subscription (PendingConfirmation): no "
        "alert reaches it: open the e-mail \"AWS Notification - Subscription Confirmation\" sent to me@example.com "
        "and follow its link (after 3 days AWS drops it; stockpipe init then subscribes again)")
    sns.add_response("list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": f"{topic}:2", "Protocol": "email", "Endpoint": "me@example.com", "TopicArn": topic}]},
        {"TopicArn": topic})
    sns.add_response("get_subscription_attributes", {"Attributes": {"PendingConfirmation": "false"}},
                     {"SubscriptionArn": f"{topic}:2"})
    assert flow._email(look).line == "✓ ALERT_EMAIL=me@example.com is subscribed and confirmed"


def simulated(look: Look, refused: set[str]) -> list[dict[str, Any]]:
    """IAM's policy simulation as AWS answers it: ``refused`` actions implicitly denied, the rest allowed."""
    asked: list[dict[str, Any]] = []

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = asked[-1]
        return AWSResponse(None, 200, {}, None), {"EvaluationResults": [
            {"EvalActionName": a, "EvalResourceName": (params.get("ResourceArns") or ["*"])[0],
             "EvalDecision": "implicitDeny" if a in refused else "allowed"} for a in params["ActionNames"]],
            "IsTruncated": False, "ResponseMetadata": {"HTTPStatusCode": 200}}

    look.aws.session.events.register("before-parameter-build.iam.SimulatePrincipalPolicy",
                                     lambda params, **_: asked.append(dict(params)))
    look.aws.session.events.register("before-call.iam.SimulatePrincipalPolicy", answer)
    return asked


def test_on_aws_a_deployer_that_may_not_pass_the_roles_is_named_with_the_calls():
    look = look_on_aws()
    for key in ("process-role", "trends-role"):
        look.found[key] = Found("stockpipe")
    asked = simulated(look, {"iam:PassRole"})
    findings = target.permissions(look)
    deployer = findings[0]
    assert deployer.status is Status.PROBLEM
    assert deployer.message.startswith(f"the deployer arn:aws:iam::{ACCOUNT}:user/deployer may not make 2 of the ")
    assert deployer.message.endswith(
        f"calls init makes: iam:PassRole on arn:aws:iam::{ACCOUNT}:role/process-ticks-role (implicitDeny), "
        f"iam:PassRole on arn:aws:iam::{ACCOUNT}:role/trend-alerts-role (implicitDeny)")
    assert deployer.fix == f"grant them to arn:aws:iam::{ACCOUNT}:user/deployer (stockpipe doctor --json lists each)"
    # Each function's role is simulated on the calls its policy grants, resource by resource.
    assert [f.status for f in findings[1:]] == [Status.OK, Status.OK]
    assert findings[2].message.startswith("the role of trend-alerts, trend-alerts-role, may make every call")
    roles = {p["PolicySourceArn"] for p in asked} - {f"arn:aws:iam::{ACCOUNT}:user/deployer"}
    assert roles == {f"arn:aws:iam::{ACCOUNT}:role/process-ticks-role", f"arn:aws:iam::{ACCOUNT}:role/trend-alerts-role"}
    publish = next(p for p in asked if "sns:Publish" in p["ActionNames"])
    assert publish["ResourceArns"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:Stock_Trend_Alerts"]


def test_on_an_emulator_the_simulation_is_skipped_saying_why():
    aws = AwsContext(Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}))
    aws.__dict__["engine"] = EngineInfo("MiniStack 1.5.33", honours_stream_failures=False)  # no health request
    look = Look(aws, Run(aws, "stockpipe", report=lambda line: None), [], {}, {})
    assert lines(target.permissions(look)) == [
        "- IAM policy simulation skipped: MiniStack 1.5.33 does not enforce IAM, so its answer would say nothing about "
        "AWS (on real AWS doctor simulates the deployer's calls and each function role's)"]


def test_a_diagnosis_prints_one_line_per_check_and_exits_1_only_on_a_problem():
    findings = [ok("reachability", "endpoint", "engine answered in 3 ms"),
                warning("flow", "dlq", "2 record(s) in dead-letter queue dlq", "stockpipe dead-letters shows them"),
                skipped("flow", "email", "no ALERT_EMAIL")]
    passing = Diagnosis(findings, 1.25, "the engine")
    assert passing.text().splitlines() == [
        "✓ engine answered in 3 ms", "! 2 record(s) in dead-letter queue dlq: stockpipe dead-letters shows them",
        "- no ALERT_EMAIL", "doctor: all checks pass (1 warning, 1 ok, 1 skipped) in 1.2 s"]
    assert passing.exit_code == 0
    failing = Diagnosis([*findings, problem("query", "location", "Glue reads s3://b/x/", "stockpipe init")], 2, "t")
    assert failing.exit_code == 1
    assert failing.summary() == "doctor: some checks fail (1 problem, 1 warning, 1 ok, 1 skipped) in 2.0 s"
    data = json.loads(failing.json())
    assert data["ok"] is False and data["counts"] == {"ok": 1, "problem": 1, "warning": 1, "skipped": 1}
    assert data["findings"][-1] == {"group": "query", "check": "location", "status": "problem",
                                    "message": "Glue reads s3://b/x/", "fix": "stockpipe init",
                                    "line": "✗ Glue reads s3://b/x/: stockpipe init"}


@pytest.mark.parametrize(("value", "words"), [
    (" stream", "has a leading space"),
    ("stream\t", "has a trailing tab"),
    ("stream \u200b", "has 2 trailing characters (space, U+200B ZERO WIDTH SPACE)"),
    ("str\u00a0eam", "contains U+00A0 NO-BREAK SPACE, invisible, at character 4"),
])
def test_each_kind_of_stray_character_is_worded_so_it_can_be_found(value: str, words: str):
    found, _ = configuration.character_problems(value)
    assert configuration._describe(found) == words
