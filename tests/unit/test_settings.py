"""Settings: defaults are the seeds' names; a wrong value fails naming the variable."""

import re
import time
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from stockpipe.settings import (
    DEFAULTS,
    FUNCTION_NAME_MAX,
    MIN_LAMBDA_PYTHON,
    STACK_TAG_KEY,
    Settings,
    SettingsError,
    describe_source,
    known_regions,
    region_from,
    unique_names,
)


def test_defaults_are_the_seeds_names():
    s = Settings.from_env({})
    assert (s.stream_name, s.table_name, s.topic_name) == ("stock-market-stream", "stock-market-data", "Stock_Trend_Alerts")
    assert s.region == "us-east-1" and s.endpoint_url is None
    assert s.anomaly_threshold_percent == Decimal(5) and (s.sma_short, s.sma_long) == (5, 20)
    assert s.kinesis_batch_size == 1000


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
        # "$" in a search matched before the newline; botocore then failed with a traceback.
        ({"AWS_REGION": "us-east-1\n"},
         "AWS_REGION='us-east-1\\n' is not an AWS region name like us-east-1: it has leading or trailing "
         "whitespace (U+000A)"),
        ({"AWS_REGION": "us-east\u200b-1"},
         "AWS_REGION='us-east\\u200b-1' is not an AWS region name like us-east-1: it contains the hidden "
         "character U+200B"),
        ({"AWS_DEFAULT_REGION": "eu-west-1\n"},
         "AWS_DEFAULT_REGION='eu-west-1\\n' (AWS_REGION is unset) is not an AWS region name"),
        ({"AWS_REGION": "us-east-7"}, "AWS_REGION='us-east-7' is not a region botocore knows (nearest: us-east-"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-wset-1"},
         "AWS_DEFAULT_REGION='eu-wset-1' (AWS_REGION is unset) is not a region botocore knows (nearest: eu-west-1"),
        ({"AWS_REGION": "us-east-7", "AWS_ENDPOINT_URL": ""}, "AWS_REGION='us-east-7' is not a region botocore knows"),
        ({"ALERT_EMAIL": "ops\u200b@example.com"}, "ALERT_EMAIL='ops\\u200b@example.com' contains the hidden character U+200B"),
        ({"ALERT_EMAIL": "ops@example.com\u00a0"}, "ALERT_EMAIL='ops@example.com\\xa0' has leading or trailing whitespace (U+00A0)"),
        ({"ALERT_EMAIL": "\ufeffops@example.com"}, "ALERT_EMAIL='\\ufeffops@example.com' contains the hidden character U+FEFF"),
        ({"ALERT_EMAIL": "opé@example.com"}, "ALERT_EMAIL='opé@example.com' contains the non-ASCII character U+00E9"),
        ({"ALERT_EMAIL": " ops@example.com"}, "ALERT_EMAIL=' ops@example.com' has leading or trailing whitespace (U+0020)"),
        ({"ALERT_EMAIL": "ops @example.com"}, "ALERT_EMAIL='ops @example.com' contains whitespace (U+0020)"),
        ({"PROCESS_FUNCTION_NAME": "p" * 60},
         f"PROCESS_FUNCTION_NAME='{'p' * 60}' is 60 characters; at most 59 are allowed, as its IAM role "
         f"'{'p' * 60}-role' must fit IAM's 64-character limit"),
        ({"TRENDS_FUNCTION_NAME": "t" * 64}, "TRENDS_FUNCTION_NAME='tttt"),
        ({"LAMBDA_RUNTIME": "python3.10"},
         "LAMBDA_RUNTIME='python3.10' is too old: the stockpipe zip imports only on python3.11 or newer"),
        ({"LAMBDA_RUNTIME": "python3.9"}, "LAMBDA_RUNTIME='python3.9' is too old"),
        ({"LAMBDA_RUNTIME": "nodejs20.x"}, "LAMBDA_RUNTIME='nodejs20.x' is not a valid name"),
        ({"STACK_NAME": "my stack"}, "STACK_NAME='my stack' is not a valid name: AWS allows letters, digits, _ . - (1-64)"),
        ({"STACK_NAME": "s" * 65}, "STACK_NAME='sss"),
        ({"ONFAILURE_QUEUE_NAME": "on.failure"}, "ONFAILURE_QUEUE_NAME='on.failure' is not a valid name"),
        ({"STREAM_MAX_RETRY_ATTEMPTS": "-1"}, "STREAM_MAX_RETRY_ATTEMPTS=-1 is out of range 0..10000"),
        ({"STREAM_MAX_RETRY_ATTEMPTS": "10001"}, "STREAM_MAX_RETRY_ATTEMPTS=10001 is out of range 0..10000"),
        ({"STREAM_MAX_RECORD_AGE_SECONDS": "59"},
         "STREAM_MAX_RECORD_AGE_SECONDS=59 is not allowed: AWS takes -1 (no limit) or 60..604800 seconds"),
        ({"STREAM_MAX_RECORD_AGE_SECONDS": "0"}, "STREAM_MAX_RECORD_AGE_SECONDS=0 is not allowed"),
        ({"STREAM_MAX_RECORD_AGE_SECONDS": "-2"}, "STREAM_MAX_RECORD_AGE_SECONDS=-2 is out of range -1..604800"),
        ({"STREAM_MAX_RECORD_AGE_SECONDS": "604801"}, "STREAM_MAX_RECORD_AGE_SECONDS=604801 is out of range"),
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
    env = Settings.from_env({}).lambda_environment(raw_bucket="raw-b", dlq_url="u", topic_arn="a",
                                                   partial_batch_response=True)
    assert env["TABLE_NAME"] == "stock-market-data" and env["RAW_BUCKET"] == "raw-b" and env["TOPIC_ARN"] == "a"
    assert env["PARTIAL_BATCH_RESPONSE"] == "true"
    assert Settings.from_env(env).table_name == "stock-market-data"


def test_every_message_is_one_line():
    for env in ({"AWS_REGION": "us-east-1\n"}, {"ALERT_EMAIL": "a@b.com\r\n"}, {"STREAM_NAME": "s\n"}):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env(env)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("region", ["us-east-7", "mars-north-1", "eu-wset-1"])
def test_an_emulator_takes_any_well_formed_region(region):
    assert Settings.from_env({"AWS_REGION": region, "AWS_ENDPOINT_URL": "http://localhost:4566"}).region == region
    assert region_from({"AWS_REGION": region, "AWS_ENDPOINT_URL": "http://localhost:4566"}) == region


def test_an_emulator_still_refuses_a_malformed_region():
    with pytest.raises(SettingsError, match=r"^AWS_REGION='us-east-1\\n' is not an AWS region name"):
        Settings.from_env({"AWS_REGION": "us-east-1\n", "AWS_ENDPOINT_URL": "http://localhost:4566"})


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "us-gov-west-1", "cn-north-1", "ap-southeast-2",
                                    "us-isob-east-1", "eusc-de-east-1"])
def test_real_aws_takes_the_regions_botocore_knows(region):
    assert Settings.from_env({"AWS_REGION": region}).region == region
    assert region_from({"AWS_DEFAULT_REGION": region}) == region


def test_aws_region_wins_over_aws_default_region():
    assert region_from({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-7"}) == "eu-west-1"
    assert region_from({}) == "us-east-1"


def test_inside_lambda_the_region_aws_set_is_trusted():
    # The runtime's botocore may predate the region it runs in.
    assert region_from({"AWS_REGION": "ap-newregion-9", "AWS_LAMBDA_FUNCTION_NAME": "process-ticks"}) == "ap-newregion-9"


def test_known_regions_are_read_offline_and_once():
    known_regions.cache_clear()
    started = time.perf_counter()
    regions = known_regions()
    assert {"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"} <= regions
    assert time.perf_counter() - started < 2
    started = time.perf_counter()
    assert known_regions() is regions and time.perf_counter() - started < 0.01


@pytest.mark.parametrize("runtime", ["python3.11", "python3.12", "python3.13", "python3.14"])
def test_runtimes_the_zip_imports_on(runtime):
    assert Settings.from_env({"LAMBDA_RUNTIME": runtime}).lambda_runtime == runtime


def test_the_minimum_runtime_is_the_package_minimum():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert minimum and (int(minimum[1]), int(minimum[2])) == MIN_LAMBDA_PYTHON


def test_role_names_come_from_one_rule_and_fit_iam():
    assert Settings.role_name("process-ticks") == "process-ticks-role"
    longest = "f" * FUNCTION_NAME_MAX
    s = Settings.from_env({"PROCESS_FUNCTION_NAME": longest})
    assert len(s.role_name(s.process_function_name)) == 64


def test_new_provisioning_settings_and_their_defaults():
    s = Settings.from_env({})
    assert (s.stack_name, s.onfailure_queue_name) == ("stockpipe", "stock-market-onfailure")
    assert (s.stream_max_retry_attempts, s.stream_max_record_age_seconds) == (5, 3600)
    assert STACK_TAG_KEY == "stockpipe:stack"
    s = Settings.from_env({"STACK_NAME": "dev.stack_1", "ONFAILURE_QUEUE_NAME": "my-onfailure",
                           "STREAM_MAX_RETRY_ATTEMPTS": "0", "STREAM_MAX_RECORD_AGE_SECONDS": "-1"})
    assert (s.stack_name, s.onfailure_queue_name, s.stream_max_retry_attempts, s.stream_max_record_age_seconds) == (
        "dev.stack_1", "my-onfailure", 0, -1)
    for age in ("60", "604800"):
        assert Settings.from_env({"STREAM_MAX_RECORD_AGE_SECONDS": age}).stream_max_record_age_seconds == int(age)
    assert Settings.from_env({"STREAM_MAX_RETRY_ATTEMPTS": "10000"}).stream_max_retry_attempts == 10000


def test_unique_names_cover_the_stack_and_are_all_valid():
    names = unique_names("sp1234abcd")
    assert names["STACK_NAME"] == "sp1234abcd" and names["ONFAILURE_QUEUE_NAME"] == "sp1234abcd-onfailure"
    assert set(names) <= set(DEFAULTS)
    s = Settings.from_env(names)
    assert s.stack_name == "sp1234abcd" and s.onfailure_queue_name == "sp1234abcd-onfailure"
    defaults = Settings.from_env({})
    assert s.onfailure_queue_name != defaults.onfailure_queue_name and s.dlq_name != defaults.dlq_name


def test_an_error_says_where_a_value_from_dotenv_was_set():
    sources = {"AWS_REGION": ".env line 2", "SMA_SHORT": ".env line 14"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"AWS_REGION": "us-east-7"}, sources=sources)
    assert str(caught.value).endswith(" (set in .env line 2)") and caught.value.variables == ("AWS_REGION",)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SMA_SHORT": "30"}, sources=sources)
    assert str(caught.value) == "SMA_SHORT=30 must be smaller than SMA_LONG=20 (SMA_SHORT set in .env line 14)"
    with pytest.raises(SettingsError, match=r"^AWS_REGION='us-east-7' .* \(set in \.env line 2\)$"):
        region_from({"AWS_REGION": "us-east-7"}, sources=sources)


def test_an_error_about_an_environment_value_has_no_location():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STREAM_NAME": "a b"}, sources={"AWS_REGION": ".env line 2"})
    assert "(set in" not in str(caught.value)


def test_describe_source():
    assert describe_source("AWS_REGION", {"AWS_REGION": ".env line 14"}) == ".env line 14"
    assert describe_source("STREAM_NAME", {"AWS_REGION": ".env line 14"}) == "environment"
    assert describe_source("STREAM_NAME", None) == "environment"


def test_each_reader_of_the_alerts_has_a_queue_of_its_own():
    s = Settings.from_env({})
    queues = (s.alerts_queue_name, s.dashboard_queue_name, s.demo_queue_name)
    assert queues == ("stock-market-alerts-inbox", "stock-market-alerts-dashboard", "stock-market-alerts-demo")
    names = unique_names("sp1234abcd")
    mine = Settings.from_env(names)
    assert (mine.dashboard_queue_name, mine.demo_queue_name) == ("sp1234abcd-alerts-dashboard", "sp1234abcd-alerts-demo")
    assert len({mine.alerts_queue_name, mine.dashboard_queue_name, mine.demo_queue_name}) == 3
    with pytest.raises(SettingsError, match=r"^DEMO_QUEUE_NAME='a b' has|^DEMO_QUEUE_NAME='a b' is not a valid name"):
        Settings.from_env({"DEMO_QUEUE_NAME": "a b"})


def test_the_dashboard_listens_on_loopback_unless_told_otherwise():
    s = Settings.from_env({})
    assert (s.dashboard_host, s.dashboard_port) == ("127.0.0.1", 8000)
    told = Settings.from_env({"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": "8080"})
    assert (told.dashboard_host, told.dashboard_port) == ("0.0.0.0", 8080)
    assert Settings.from_env({"DASHBOARD_HOST": "::1"}).dashboard_host == "::1"
    with pytest.raises(SettingsError, match=r"^DASHBOARD_PORT=70000 is out of range 1\.\.65535$"):
        Settings.from_env({"DASHBOARD_PORT": "70000"})
    with pytest.raises(SettingsError, match=r"^DASHBOARD_HOST='local host' is not a host name or IP address"):
        Settings.from_env({"DASHBOARD_HOST": "local host"})
    with pytest.raises(SettingsError, match=r"^DASHBOARD_HOST='127\.0\.0\.1 ' has leading or trailing whitespace"):
        Settings.from_env({"DASHBOARD_HOST": "127.0.0.1 "})


# Reads of the process environment that are not yet routed through settings.environment(): the fault
# injection of the reliability suite (to be built by the tests instead), and the bench (a development
# tool on its way out of the installed package).
NOT_YET_THROUGH_SETTINGS: tuple[str, ...] = ()


def test_only_settings_reads_the_process_environment():
    import ast

    root = Path(__file__).parents[2]
    readers = []
    for folder in ("stockpipe", "init", "lambdas", "services"):
        for path in sorted((root / folder).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if name == "stockpipe/settings.py" or name.startswith(NOT_YET_THROUGH_SETTINGS):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                        and node.attr in ("environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"):
                    readers.append(f"{name}:{node.lineno}: os.{node.attr}")
                if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                        {alias.name for alias in node.names} & {"environ", "environb", "getenv", "getenvb"}:
                    readers.append(f"{name}:{node.lineno}: from os import ...")
    assert readers == [], "read it through stockpipe.settings.environment()"


def test_settings_import_with_the_standard_library_alone():
    """scripts/compose.py imports stockpipe.settings outside the virtualenv (`make up`), and skips the
    pipeline's checks when it cannot: a third-party import here would turn them off without a word."""
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import stockpipe.settings, stockpipe.configuration\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names | {'stockpipe'}"
             " and m != '__main__'))")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(root)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
