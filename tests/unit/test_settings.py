"""Settings: defaults are the seeds' names; a wrong value fails naming the variable."""

from decimal import Decimal

import pytest

from stockpipe.settings import Settings, SettingsError


def test_defaults_are_the_seeds_names():
    s = Settings.from_env({})
    assert (s.stream_name, s.table_name, s.topic_name) == ("stock-market-stream", "stock-market-data", "Stock_Trend_Alerts")
    assert s.region == "us-east-1" and s.endpoint_url is None
    assert s.anomaly_threshold_percent == Decimal(5) and (s.sma_short, s.sma_long) == (5, 20)
    assert s.kinesis_batch_size == 100


def test_the_raw_bucket_is_unique_per_account_and_region_unless_named():
    s = Settings.from_env({"AWS_REGION": "eu-west-1"})
    assert s.raw_bucket_for("123456789012") == "stockpipe-raw-123456789012-eu-west-1"
    assert Settings.from_env({"RAW_BUCKET": "my-bucket"}).raw_bucket_for("1") == "my-bucket"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STREAM_NAME": "stock-market-stream "}, "STREAM_NAME='stock-market-stream ' has leading or trailing whitespace"),
        ({"TABLE_NAME": "stock\u200b-market-data"}, "TABLE_NAME='stock\\u200b-market-data' contains the hidden character U+200B"),
        ({"RAW_BUCKET": "My_Bucket"}, "RAW_BUCKET='My_Bucket' is not a valid name"),
        ({"AWS_REGION": "us-east-2 "}, "AWS_REGION='us-east-2 ' is not an AWS region name"),
        ({"KINESIS_BATCH_SIZE": "ten"}, "KINESIS_BATCH_SIZE='ten' is not a whole number"),
        ({"ANOMALY_THRESHOLD_PERCENT": "-1"}, "ANOMALY_THRESHOLD_PERCENT=-1 is out of range"),
        ({"LOG_RETENTION_DAYS": "10"}, "LOG_RETENTION_DAYS=10 is not a period CloudWatch keeps logs for"),
        ({"STREAM_MODE": "on demand"}, "STREAM_MODE='on demand' is not one of ON_DEMAND, PROVISIONED"),
        ({"KINESIS_BATCH_WINDOW_SECONDS": "301"}, "KINESIS_BATCH_WINDOW_SECONDS=301 is out of range 0..300"),
        ({"ATHENA_TABLE": "Stock-Data"}, "ATHENA_TABLE='Stock-Data' is not a valid name"),
        ({"SMA_SHORT": "20", "SMA_LONG": "5"}, "SMA_SHORT=20 must be smaller than SMA_LONG=5"),
        ({"PRODUCER_SYMBOLS": "AAPL,$$$"}, "PRODUCER_SYMBOLS: '$$$' is not a ticker symbol"),
        ({"ALERT_EMAIL": "nobody"}, "ALERT_EMAIL='nobody' is not an e-mail address"),
    ],
)
def test_wrong_values_fail_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message)


def test_lambda_environment_carries_resolved_names():
    env = Settings.from_env({}).lambda_environment(raw_bucket="raw-b", dlq_url="u", topic_arn="a")
    assert env["TABLE_NAME"] == "stock-market-data" and env["RAW_BUCKET"] == "raw-b" and env["TOPIC_ARN"] == "a"
    assert Settings.from_env(env).table_name == "stock-market-data"
