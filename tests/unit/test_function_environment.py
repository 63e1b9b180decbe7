"""The functions' environment: one type that init writes and each handler parses once at its cold
start. What init writes for either function, with either ingestion, parses back to the same value;
a variable that is missing or wrong fails the function at start, in one line naming it."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

import pytest

from stockpipe.domain.thresholds import Thresholds
from stockpipe.provision import Stack
from stockpipe.provision.functions import Function
from stockpipe.settings import (
    FUNCTION_VARIABLES,
    FUNCTIONS,
    SETTINGS,
    FunctionEnvironment,
    Settings,
    SettingsError,
    declared,
)
from tests.recording import ACCOUNT, aws_target, stub

REGION = "eu-west-1"
DLQ_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/stock-market-dlq"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/stock-market-queue"


def what_init_writes(ingest: str, key: str) -> tuple[Function, FunctionEnvironment, dict[str, str]]:
    """The function init deploys, the value it means to give it, and the variables it writes."""
    aws, _ = aws_target({"INGEST": ingest, "ALERT_THRESHOLD": "1200,AAPL:200", "SMA_LONG": "30"}, REGION)
    stack = Stack(aws, report=lambda line: None)
    function = next(r for r in stack.resources if r.key == key)
    assert isinstance(function, Function)
    sqs = stub(aws, "sqs")
    sqs.add_response("get_queue_url", {"QueueUrl": DLQ_URL})  # each URL asked once, then remembered
    if ingest == "sqs":
        sqs.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    value = function.environment(stack.run)
    written = function.config(stack.run)["Environment"]["Variables"]
    sqs.assert_no_pending_responses()
    return function, value, written


@pytest.mark.parametrize("ingest", ["kinesis", "sqs"])
@pytest.mark.parametrize("key", ["process", "trends"])
def test_what_init_writes_parses_back_to_the_same_value(ingest, key):
    function, value, written = what_init_writes(ingest, key)
    # What Lambda adds: the region and the function's name (AWS_REGION is Lambda's to set, not init's).
    assert not {"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL"} & set(written)
    parsed = FunctionEnvironment.parse({**written, "AWS_REGION": REGION, "AWS_LAMBDA_FUNCTION_NAME": function.name})
    assert parsed == value
    assert parsed.function_name == function.name and parsed.region == REGION and parsed.endpoint_url is None
    assert (parsed.dlq_url, parsed.topic_arn) == (DLQ_URL, f"arn:aws:sns:{REGION}:{ACCOUNT}:Stock_Trend_Alerts")
    assert parsed.raw_bucket == f"stockpipe-raw-{ACCOUNT}-{REGION}" and parsed.partial_batch_response is True
    assert parsed.alert_threshold == Thresholds(Decimal(1200), (("AAPL", Decimal(200)),)) and parsed.sma_long == 30
    queued = ingest == "sqs"
    assert (parsed.locks_table, parsed.ingest_queue_url) == (("stock-market-locks", QUEUE_URL) if queued else (None, None))
    assert ("LOCKS_TABLE" in written, "INGEST_QUEUE_URL" in written) == (queued, queued)


def test_on_an_emulator_the_engine_gives_the_endpoint():
    settings = Settings.from_env({"AWS_ENDPOINT_URL": "http://localhost:4566", "AWS_REGION": "us-east-7"})
    value = FunctionEnvironment.of(settings, raw_bucket="raw-bucket", dlq_url="http://localhost:4566/q",
                                   topic_arn="arn:aws:sns:us-east-7:000000000000:t", partial_batch_response=False,
                                   function_name="process-ticks")
    given = {"AWS_REGION": "us-east-7", "AWS_ENDPOINT_URL": "http://localhost:4566",
             "AWS_LAMBDA_FUNCTION_NAME": "process-ticks"}
    parsed = FunctionEnvironment.parse({**value.environ(), **given})
    assert parsed == value and parsed.environ()["PARTIAL_BATCH_RESPONSE"] == "false"
    # AwsContext's settings: the engine, the region and the function's names; the rest at their defaults.
    assert (parsed.settings.endpoint_url, parsed.settings.region, parsed.settings.table_name) == (
        "http://localhost:4566", "us-east-7", "stock-market-data")
    assert parsed.raw_location == "s3://raw-bucket/raw-data/"


def written() -> dict[str, str]:
    return FunctionEnvironment.of(Settings.from_env({}), raw_bucket="raw-bucket", dlq_url="http://q",
                                  topic_arn="arn:aws:sns:us-east-1:000000000000:t",
                                  partial_batch_response=True).environ()


def test_the_variables_init_writes_and_that_are_missing_are_named_together():
    env = {name: value for name, value in written().items() if name not in ("DLQ_URL", "TOPIC_ARN")}
    with pytest.raises(SettingsError) as caught:
        FunctionEnvironment.parse(env)
    assert str(caught.value) == "missing environment variable(s): DLQ_URL, TOPIC_ARN"
    assert caught.value.variables == ("DLQ_URL", "TOPIC_ARN")


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("TABLE_NAME", "ticks ", "TABLE_NAME='ticks ' has leading or trailing whitespace (U+0020); remove it"),
    ("SMA_LONG", "twenty", "SMA_LONG='twenty' is not a whole number"),
    ("SMA_LONG", "3", "SMA_SHORT=5 must be smaller than SMA_LONG=3"),
    ("PARTIAL_BATCH_RESPONSE", "yes", "PARTIAL_BATCH_RESPONSE='yes' is not true or false"),
    ("ALERT_THRESHOLD", "AAPL:1,aapl:2", "ALERT_THRESHOLD='AAPL:1,aapl:2': AAPL has two thresholds"),
    ("ANOMALY_THRESHOLD_PERCENT", "-1", "ANOMALY_THRESHOLD_PERCENT=-1 is out of range 0..1000"),
    ("AWS_REGION", "us-east-1\n", "AWS_REGION='us-east-1\\n' is not an AWS region name like us-east-1"),
])
def test_a_wrong_value_fails_at_start_in_one_line_naming_the_variable(variable, value, message):
    with pytest.raises(SettingsError) as caught:
        FunctionEnvironment.parse({**written(), "AWS_LAMBDA_FUNCTION_NAME": "process-ticks", variable: value})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert variable in caught.value.variables


def test_the_functions_environment_holds_exactly_the_settings_declared_as_read_by_a_function():
    declared_for_functions = {v.name for v in SETTINGS if set(v.readers) & set(FUNCTIONS)}
    settings = {v.name for v in SETTINGS}
    assert {v.name for v in FUNCTION_VARIABLES if v.name in settings} == declared_for_functions
    # Each of its own variables says which function reads it.
    assert all(set(v.readers) <= set(FUNCTIONS) and v.readers for v in FUNCTION_VARIABLES if v.name not in settings)
    # And a setting among it is the setting's own declaration, not a copy.
    for item in fields(FunctionEnvironment):
        if declared(item).name in settings:
            assert declared(item) is declared(Settings.__dataclass_fields__[item.name])


def test_lambda_environment_is_what_init_writes():
    settings = Settings.from_env({"INGEST": "sqs"})
    options = {"raw_bucket": "raw-bucket", "dlq_url": "u", "topic_arn": "t", "partial_batch_response": False}
    assert settings.lambda_environment(**options, ingest_queue_url="q") == FunctionEnvironment.of(
        settings, **options, ingest_queue_url="q").environ()
    assert settings.lambda_environment(**options)["INGEST_QUEUE_URL"] == "(created by init)"
