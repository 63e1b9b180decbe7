"""The alarms and the CloudWatch dashboard, derived from the resource list (init/monitoring.py): which
alarms, on which metrics and dimensions, notifying the operations topic; the dashboard's body and how
it says whose it is; drift and ownership as plan decides them. On real AWS, answered in-process."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from stockpipe.aws.process_ticks import ProcessTicks
from stockpipe.aws.trend_alerts import TrendAlerts
from stockpipe.metrics import PROCESS_TICKS_METRICS, TREND_ALERTS_METRICS
from stockpipe.processing import BatchResult
from stockpipe.provision import Action, Stack
from stockpipe.provision.functions import Function, Mapping
from stockpipe.provision.messaging import Queue, Subscription, Topic
from stockpipe.provision.model import TAG_KEY, decide
from stockpipe.provision.monitoring import Alarm, Dashboard, owner_of
from stockpipe.trending import TrendResult
from tests.fakes import FakeArchive, FakeDeadLetters, FakePublisher, FakeTable
from tests.recording import ACCOUNT, EmptyAccount, aws_target, stub

REGION = "eu-west-1"
OPS = f"arn:aws:sns:{REGION}:{ACCOUNT}:stock-market-ops"


def stack_on_aws(**env: str) -> Stack:
    aws, _ = aws_target(env, REGION)
    return Stack(aws, report=lambda line: None)


def alarms(stack: Stack) -> dict[str, Alarm]:
    return {r.name: r for r in stack.resources if isinstance(r, Alarm)}


def watched(alarm: Alarm) -> tuple[str, str, dict[str, str], str, float]:
    return alarm.namespace, alarm.metric, alarm.dimensions, alarm.statistic, alarm.threshold


def test_with_kinesis_the_alarms_watch_both_failure_queues_the_triggers_iterator_age_and_each_function():
    stack = stack_on_aws()
    found = alarms(stack)
    assert {name: watched(alarm) for name, alarm in found.items()} == {
        "stock-market-dlq-not-empty": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                       {"QueueName": "stock-market-dlq"}, "Maximum", 0),
        "stock-market-onfailure-not-empty": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                             {"QueueName": "stock-market-onfailure"}, "Maximum", 0),
        "process-ticks-iterator-age": ("AWS/Lambda", "IteratorAge", {"FunctionName": "process-ticks"}, "Maximum",
                                       300_000),
        "process-ticks-errors": ("AWS/Lambda", "Errors", {"FunctionName": "process-ticks"}, "Sum", 0),
        "process-ticks-throttles": ("AWS/Lambda", "Throttles", {"FunctionName": "process-ticks"}, "Sum", 0),
        "trend-alerts-errors": ("AWS/Lambda", "Errors", {"FunctionName": "trend-alerts"}, "Sum", 0),
        "trend-alerts-throttles": ("AWS/Lambda", "Throttles", {"FunctionName": "trend-alerts"}, "Sum", 0),
    }
    for alarm in found.values():
        request = alarm.request(stack.run)
        assert request["AlarmActions"] == [OPS]
        assert (request["TreatMissingData"], request["ComparisonOperator"], request["ActionsEnabled"]) == (
            "notBreaching", "GreaterThanThreshold", True)
        assert (request["Period"], request["EvaluationPeriods"]) == (60, 1)
    assert found["stock-market-dlq-not-empty"].variable == "DLQ_NAME"
    assert found["process-ticks-iterator-age"].arn(stack.run) == (
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:process-ticks-iterator-age")


def test_with_sqs_the_ingest_queues_oldest_message_replaces_the_iterator_age():
    stack = stack_on_aws(INGEST="sqs", ALARM_LAG_SECONDS="120")
    found = alarms(stack)
    assert not any(alarm.metric == "IteratorAge" for alarm in found.values())
    lag = found["stock-market-queue-oldest-message"]
    assert watched(lag) == ("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": "stock-market-queue"},
                            "Maximum", 120)  # SQS counts seconds, Lambda's IteratorAge milliseconds
    assert lag.variable == "INGEST_QUEUE_NAME"
    assert len(found) == 7 and {"stock-market-dlq-not-empty", "stock-market-onfailure-not-empty"} <= set(found)


def test_the_lag_threshold_is_the_setting_in_the_metrics_unit():
    assert alarms(stack_on_aws(ALARM_LAG_SECONDS="45"))["process-ticks-iterator-age"].threshold == 45_000


def test_names_follow_the_resources_they_watch():
    names = set(alarms(stack_on_aws(DLQ_NAME="my-dlq", PROCESS_FUNCTION_NAME="ingest-fn")))
    assert {"my-dlq-not-empty", "ingest-fn-iterator-age", "ingest-fn-errors", "ingest-fn-throttles"} <= names


def test_the_operations_topic_is_always_there_unencrypted_and_its_email_only_when_set():
    stack = stack_on_aws()
    topic = next(r for r in stack.resources if r.key == "ops-topic")
    assert isinstance(topic, Topic) and topic.name == "stock-market-ops" and topic.kms_key is None
    assert topic.arn(stack.run) == OPS
    assert not [r for r in stack.resources if r.variable == "OPS_EMAIL"]
    mailed = stack_on_aws(OPS_EMAIL="ops@example.com", OPS_TOPIC_NAME="pager")
    [subscription] = [r for r in mailed.resources if r.variable == "OPS_EMAIL"]
    assert isinstance(subscription, Subscription) and subscription.topic.name == "pager"
    assert (subscription.protocol, subscription.endpoint(mailed.run)) == ("email", "ops@example.com")
    assert {a.request(mailed.run)["AlarmActions"][0] for a in alarms(mailed).values()} == {
        f"arn:aws:sns:{REGION}:{ACCOUNT}:pager"}


@pytest.mark.parametrize("ingest", ["kinesis", "sqs"])
def test_the_watching_comes_last_after_everything_it_refers_to(ingest):
    stack = stack_on_aws(INGEST=ingest)
    kinds = [type(r) for r in stack.resources]
    last_watched = max(i for i, kind in enumerate(kinds) if kind in (Queue, Function, Mapping))
    first_watching = kinds.index(Alarm)
    assert stack.resources[first_watching - 1].key == "ops-topic" and last_watched < first_watching - 1
    assert kinds[-1] is Dashboard and set(kinds[first_watching:-1]) == {Alarm}


def test_the_functions_roles_do_not_change():
    """Nothing the functions call changed: their policies name no alarm, dashboard or ops topic."""
    stack = stack_on_aws()
    for role in (r for r in stack.resources if r.kind == "iam role"):
        text = json.dumps(role.policy(stack.run))  # type: ignore[attr-defined]
        assert "cloudwatch" not in text and "stock-market-ops" not in text


def test_the_declared_metrics_are_those_the_functions_print():
    process = ProcessTicks(store=FakeTable(), archive=FakeArchive(), dead_letters=FakeDeadLetters(), window=5,
                           threshold_percent=Decimal(5), partial_batch_response=True)
    trends = TrendAlerts(history=FakeTable(), publisher=FakePublisher(), dead_letters=FakeDeadLetters(), short=5,
                         long=20, partial_batch_response=True)
    for line, declared in ((process.metrics_line(BatchResult(received=1), 0.01), PROCESS_TICKS_METRICS),
                           (trends.metrics_line(TrendResult(ticks=1), 0, 0.01, oldest=1), TREND_ALERTS_METRICS)):
        printed = json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        assert {m["Name"]: m["Unit"] for m in printed} == declared


def dashboard(stack: Stack) -> Dashboard:
    found = stack.resources[-1]
    assert isinstance(found, Dashboard)
    return found


def test_the_dashboard_shows_the_alarms_the_functions_metrics_and_what_the_alarms_watch():
    stack = stack_on_aws(METRICS_NAMESPACE="Pipes")
    body = dashboard(stack).body(stack.run)
    json.dumps(body)  # a body PutDashboard takes
    widgets = body["widgets"]
    assert owner_of(body) == "stockpipe" and widgets[0]["type"] == "text"
    assert widgets[1]["properties"]["alarms"] == [a.arn(stack.run) for a in alarms(stack).values()]
    graphs = {w["properties"]["title"]: w["properties"] for w in widgets if w["type"] == "metric"}
    counts = graphs["process-ticks: per-batch counts"]
    assert counts["stat"] == "Sum" and counts["region"] == REGION
    assert [m[1] for m in counts["metrics"]] == [n for n, unit in PROCESS_TICKS_METRICS.items() if unit == "Count"]
    assert {tuple(m[:1] + m[2:]) for m in counts["metrics"]} == {("Pipes", "FunctionName", "process-ticks")}
    assert [m[1] for m in graphs["trend-alerts: times (ms)"]["metrics"]] == ["BatchTime", "StoredToHandledMax"]
    assert graphs["AWS/SQS ApproximateNumberOfMessagesVisible"]["metrics"] == [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "stock-market-dlq"],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "stock-market-onfailure"]]
    assert graphs["AWS/Lambda IteratorAge"]["stat"] == "Maximum"
    assert graphs["AWS/Lambda Errors"]["metrics"] == [["AWS/Lambda", "Errors", "FunctionName", "process-ticks"],
                                                      ["AWS/Lambda", "Errors", "FunctionName", "trend-alerts"]]
    # Laid out in rows of 24 columns, none overlapping.
    cells = [(w["x"] + dx, w["y"] + dy) for w in widgets for dx in range(w["width"]) for dy in range(w["height"])]
    assert len(cells) == len(set(cells)) and max(x for x, _ in cells) < 24


def test_owner_of_reads_only_the_first_text_widget():
    assert owner_of({"widgets": [{"type": "text", "properties": {"markdown": f"`{TAG_KEY}=other`"}}]}) == "other"
    assert owner_of({"widgets": [{"type": "metric", "properties": {}},
                                 {"type": "text", "properties": {"markdown": f"{TAG_KEY}=x"}}]}) is None
    assert owner_of({}) is None and owner_of("not a body") is None


def described(alarm: Alarm, stack: Stack, **changed: object) -> dict[str, object]:
    """The alarm as DescribeAlarms shows it, with ``changed``."""
    request = alarm.request(stack.run)
    return {**{k: v for k, v in request.items() if k != "AlarmDescription"},
            "AlarmArn": alarm.arn(stack.run), "StateValue": "OK", **changed}


@pytest.mark.parametrize(("changed", "words"), [
    ({}, None),
    ({"Threshold": 5.0}, "Threshold: 5.0 -> 0"),
    ({"Period": 300}, "Period: 300 -> 60"),
    ({"EvaluationPeriods": 3}, "EvaluationPeriods: 3 -> 1"),
    ({"AlarmActions": []}, "AlarmActions: none -> ['arn:aws:sns:eu-west-1:123456789012:stock-market-ops']"),
    ({"Dimensions": [{"Name": "QueueName", "Value": "other"}]},
     "Dimensions: {'QueueName': 'other'} -> {'QueueName': 'stock-market-dlq'}"),
])
def test_an_alarm_drifts_when_what_it_watches_or_whom_it_tells_differs(changed, words):
    stack = stack_on_aws()
    alarm = alarms(stack)["stock-market-dlq-not-empty"]
    drift = alarm.drift(described(alarm, stack, **changed), stack.run)
    assert drift == (() if words is None else (words,))


@pytest.mark.parametrize(("tags", "action"), [
    ([{"Key": TAG_KEY, "Value": "stockpipe"}], Action.UNCHANGED),
    ([], Action.UPDATE),  # no data in an alarm: adopted
    ([{"Key": TAG_KEY, "Value": "other"}], Action.REFUSE),
])
def test_an_alarms_owner_is_its_tag(tags, action):
    stack = stack_on_aws()
    alarm = alarms(stack)["process-ticks-errors"]
    cloudwatch = stub(stack.aws, "cloudwatch")
    cloudwatch.add_response("describe_alarms", {"MetricAlarms": [described(alarm, stack)]})
    cloudwatch.add_response("list_tags_for_resource", {"Tags": tags},
                            {"ResourceARN": alarm.arn(stack.run)})
    assert decide(alarm, alarm.find(stack.run), stack.run.stack).action is action


@pytest.mark.parametrize(("body", "action"), [
    ("ours", Action.UNCHANGED),
    ({"widgets": []}, Action.UPDATE),  # empty: adopted
    ({"widgets": [{"type": "metric", "properties": {"metrics": []}}]}, Action.REFUSE),  # someone's
])
def test_a_dashboard_is_ours_when_its_first_widget_names_our_stack(body, action):
    stack = stack_on_aws()
    board = dashboard(stack)
    cloudwatch = stub(stack.aws, "cloudwatch")
    text = json.dumps(board.body(stack.run) if body == "ours" else body)
    cloudwatch.add_response("get_dashboard", {"DashboardName": board.name, "DashboardBody": text,
                                              "DashboardArn": board.arn(stack.run)})
    step = decide(board, board.find(stack.run), stack.run.stack)
    assert step.action is action
    if action is Action.REFUSE:
        assert "CLOUDWATCH_DASHBOARD_NAME" in step.reason


def test_an_engine_without_cloudwatch_skips_the_alarms_and_the_dashboard():
    aws, _ = aws_target(region=REGION)
    EmptyAccount(aws)
    missing = ClientError({"Error": {"Code": "InvalidAction", "Message": "Unknown action"}}, "DescribeAlarms")

    def no_cloudwatch(**_: object) -> None:
        raise missing

    aws.client("cloudwatch").meta.events.register("before-call.cloudwatch.*", no_cloudwatch)
    steps = Stack(aws, report=lambda line: None).plan()
    skipped = [s.resource.kind for s in steps if s.action is Action.SKIP]
    assert skipped == ["cloudwatch alarm"] * 7 + ["cloudwatch dashboard"]
    assert all(s.reason == "this engine has no cloudwatch API" for s in steps if s.action is Action.SKIP)
