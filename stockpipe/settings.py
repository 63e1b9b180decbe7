"""Every name, region and knob, read once from the environment (documented in .env.example).

No defaults live anywhere else: the CLI, init, the producer and both Lambdas read this. A wrong
value fails at start with one line naming the variable (the seeds' troubleshooting notes: a
trailing space in a stream name, a hidden U+200B, a region mismatch).
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stockpipe.domain.thresholds import Thresholds, parse_thresholds
from stockpipe.errors import StockpipeError

DEFAULT_REGION = "us-east-1"

# The oldest Lambda Python runtime the zip imports on: the package uses 3.11 features (datetime.UTC,
# ...). Keep in step with requires-python in pyproject.toml (a unit test checks it).
MIN_LAMBDA_PYTHON = (3, 11)
# IAM caps role names at 64 characters; init names each function's role <function name>-role.
IAM_ROLE_NAME_MAX = 64
ROLE_SUFFIX = "-role"
FUNCTION_NAME_MAX = IAM_ROLE_NAME_MAX - len(ROLE_SUFFIX)
# Every resource init creates carries the tag stockpipe:stack=<STACK_NAME>.
STACK_TAG_KEY = "stockpipe:stack"
# The raw bucket's other folders, besides RAW_PREFIX: Athena's results, and the payloads of dead
# letters too large for a queue message. Teardown deletes these three and nothing else in it.
ATHENA_RESULTS_PREFIX = "athena-results"
QUARANTINE_PREFIX = "quarantine"
# Where a variable was set, when not in the environment: {variable: ".env line 14"} (see stockpipe.dotenv).
Sources = Mapping[str, str]

# Defaults are the seeds' names. The raw bucket has none: it is derived per account and region
# (see Settings.raw_bucket_for) so that it is unique on real AWS too.
DEFAULTS: dict[str, str] = {
    # How ticks come in: a Kinesis stream (per-symbol order kept) or an SQS queue (seed 004: any
    # account type; order not kept, see docs/sqs.md).
    "INGEST": "kinesis",
    "STREAM_NAME": "stock-market-stream",
    "STREAM_MODE": "ON_DEMAND",
    "STREAM_SHARDS": "1",
    "TABLE_NAME": "stock-market-data",
    "ALERTS_LEDGER_TABLE": "stock-market-alerts-sent",
    # Per symbol: the newest stored tick and the prices before it (process-ticks reads it instead of
    # querying the tick table each batch).
    "HEADS_TABLE": "stock-market-heads",
    # INGEST=sqs: the queue the producer sends to, and per symbol the lock that lets one batch at a
    # time store its ticks (the queue runs batches side by side; a Kinesis shard runs them in turn).
    "INGEST_QUEUE_NAME": "stock-market-queue",
    "LOCKS_TABLE": "stock-market-locks",
    "QUEUE_BATCH_SIZE": "10",
    "QUEUE_MAX_RECEIVES": "10",
    "RAW_BUCKET": "",
    "RAW_PREFIX": "raw-data",
    "ATHENA_DATABASE": "stock_data",
    "ATHENA_TABLE": "stock_data_table",
    "ATHENA_WORKGROUP": "primary",
    "METRICS_NAMESPACE": "stockpipe",
    "DLQ_NAME": "stock-market-dlq",
    "TOPIC_NAME": "Stock_Trend_Alerts",
    "ALERTS_QUEUE_NAME": "stock-market-alerts-inbox",
    # Each reader of the alerts has a queue of its own subscribed to the topic, so that none takes
    # messages away from another: `stockpipe alerts` reads ALERTS_QUEUE_NAME, the compose project's
    # alerts container (`stockpipe alerts --inbox compose`), the dashboard and the demo's terminal
    # view these three (READER_QUEUES).
    "COMPOSE_ALERTS_QUEUE_NAME": "stock-market-alerts-compose",
    "DASHBOARD_QUEUE_NAME": "stock-market-alerts-dashboard",
    "DEMO_QUEUE_NAME": "stock-market-alerts-demo",
    "ALERT_EMAIL": "",
    "PROCESS_FUNCTION_NAME": "process-ticks",
    "TRENDS_FUNCTION_NAME": "trend-alerts",
    "LAMBDA_RUNTIME": "python3.12",
    "LAMBDA_MEMORY_MB": "1024",
    "KINESIS_BATCH_SIZE": "1000",
    "STREAMS_BATCH_SIZE": "1000",
    "KINESIS_BATCH_WINDOW_SECONDS": "1",
    "PARALLELIZATION_FACTOR": "1",
    "ANOMALY_THRESHOLD_PERCENT": "5",
    # Seed 004's price alert: one price for every symbol, or SYMBOL:PRICE pairs; empty: off.
    "ALERT_THRESHOLD": "",
    "MOVING_AVERAGE_WINDOW": "5",
    "SMA_SHORT": "5",
    "SMA_LONG": "20",
    "PRODUCER_SYMBOLS": "AAPL,MSFT,AMZN",
    "PRODUCER_RATE": "10",
    "PRODUCER_INTERVAL": "30",
    "PRODUCER_SEED": "42",
    "ENGINE_PORT": "4566",
    "ENGINE_DATA_DIR": ".stockpipe/engine",
    # `stockpipe dashboard`: loopback unless told otherwise (the page has no login).
    "DASHBOARD_HOST": "127.0.0.1",
    "DASHBOARD_PORT": "8000",
    # Names besides this machine's loopback ones (and the address it listens on) that the dashboard
    # answers to in the Host header, comma-separated: a page elsewhere cannot reach it through DNS rebinding.
    "DASHBOARD_ALLOWED_HOSTS": "",
    "LOG_RETENTION_DAYS": "7",
    # Tag stockpipe:stack=<STACK_NAME> marks every resource init creates.
    "STACK_NAME": "stockpipe",
    # SQS queue both stream triggers send a batch's description to once retries are exhausted.
    "ONFAILURE_QUEUE_NAME": "stock-market-onfailure",
    # Stream triggers: retries of a failing batch, and the age past which a record is given up on.
    "STREAM_MAX_RETRY_ATTEMPTS": "5",
    "STREAM_MAX_RECORD_AGE_SECONDS": "3600",
}
# INGEST: how ticks reach process-ticks.
INGESTS = ("kinesis", "sqs")
# What CloudWatch Logs accepts as a retention period.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)

_NAME_RULES: dict[str, tuple[str, str]] = {
    # variable: (pattern, what AWS allows)
    "STREAM_NAME": (r"[a-zA-Z0-9_.-]{1,128}", "letters, digits, _ . - (1-128)"),
    "TABLE_NAME": (r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)"),
    "ALERTS_LEDGER_TABLE": (r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)"),
    "HEADS_TABLE": (r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)"),
    "LOCKS_TABLE": (r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)"),
    # A standard queue: a .fifo name would need a FIFO dead-letter queue and a group per message.
    "INGEST_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "RAW_BUCKET": (r"(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "lower-case letters, digits, . - (3-63)"),
    "RAW_PREFIX": (r"[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*", "path segments of letters, digits, _ . -"),
    "ATHENA_DATABASE": (r"[a-z0-9_]{1,255}", "lower-case letters, digits, _ (1-255)"),
    "ATHENA_TABLE": (r"[a-z0-9_]{1,255}", "lower-case letters, digits, _ (1-255)"),
    "ATHENA_WORKGROUP": (r"[a-zA-Z0-9._-]{1,128}", "letters, digits, . _ - (1-128)"),
    "METRICS_NAMESPACE": (r"[a-zA-Z0-9._/#:-]{1,255}", "letters, digits, . _ / # : - (1-255)"),
    "DLQ_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "TOPIC_NAME": (r"[a-zA-Z0-9_-]{1,256}", "letters, digits, _ - (1-256)"),
    "ALERTS_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "COMPOSE_ALERTS_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "DASHBOARD_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "DEMO_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "PROCESS_FUNCTION_NAME": (r"[a-zA-Z0-9_-]{1,64}", "letters, digits, _ - (1-64)"),
    "TRENDS_FUNCTION_NAME": (r"[a-zA-Z0-9_-]{1,64}", "letters, digits, _ - (1-64)"),
    "LAMBDA_RUNTIME": (r"python3\.\d{1,2}", "a Python Lambda runtime such as python3.12"),
    "STACK_NAME": (r"[a-zA-Z0-9_.-]{1,64}", "letters, digits, _ . - (1-64)"),
    "ONFAILURE_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
}
# The alerts' readers, each with a queue of its own subscribed to the topic: (key, variable, who reads it).
READER_QUEUES: tuple[tuple[str, str, str], ...] = (
    ("inbox", "ALERTS_QUEUE_NAME", "stockpipe alerts"),
    ("compose-inbox", "COMPOSE_ALERTS_QUEUE_NAME", "the alerts container of docker compose"),
    ("dashboard-inbox", "DASHBOARD_QUEUE_NAME", "stockpipe dashboard"),
    ("demo-inbox", "DEMO_QUEUE_NAME", "the terminal view of stockpipe demo"),
)
# Every variable that names a resource (stockpipe doctor looks at each for stray characters).
NAME_VARIABLES: tuple[str, ...] = tuple(_NAME_RULES)
# The shape of a region name (us-east-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1). On real AWS
# the region must also be one botocore knows (see known_regions).
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+){1,3}-\d{1,2}")


class SettingsError(StockpipeError, ValueError):
    """A configuration value that cannot work. The message names the variable; `variables` lists
    the variables at fault, so that `located` can say where they were set."""

    def __init__(self, message: str, *variables: str) -> None:
        super().__init__(message)
        self.variables: tuple[str, ...] = variables

    def located(self, sources: Sources | None) -> SettingsError:
        """This error, saying where its variables were set when that is not the environment:
        "... (set in .env line 14)"."""
        places = [(variable, describe_source(variable, sources)) for variable in self.variables]
        places = [(variable, place) for variable, place in places if place != "environment"]
        if not places:
            return self
        if len(self.variables) == 1:
            note = f"set in {places[0][1]}"
        else:
            note = ", ".join(f"{variable} set in {place}" for variable, place in places)
        return SettingsError(f"{self} ({note})", *self.variables)


def describe_source(variable: str, sources: Sources | None) -> str:
    """Where a variable was set, for messages: ".env line 14" when a .env set it, else "environment"."""
    return (sources or {}).get(variable, "environment")


def character_problem(value: str) -> str | None:
    """What is wrong with a value's characters: whitespace at either end, or a hidden or non-ASCII
    character (named by code point, as it cannot be seen); None when nothing is."""
    if value != value.strip():
        end = value[0] if value[0].isspace() else value[-1]
        return f"has leading or trailing whitespace (U+{ord(end):04X}); remove it"
    for ch in value:
        if not ch.isprintable():
            return f"contains the hidden character U+{ord(ch):04X}; retype it"
        if not ch.isascii():
            return f"contains the non-ASCII character U+{ord(ch):04X}; retype it"
    return None


def _check_characters(variable: str, value: str) -> None:
    problem = character_problem(value)
    if problem:
        raise SettingsError(f"{variable}={value!r} {problem}", variable)


def _check_name(variable: str, value: str) -> str:
    _check_characters(variable, value)
    pattern, allowed = _NAME_RULES[variable]
    if not re.fullmatch(pattern, value):
        raise SettingsError(f"{variable}={value!r} is not a valid name: AWS allows {allowed}", variable)
    return value


def _check_function_name(variable: str, value: str) -> str:
    _check_name(variable, value)
    if len(value) > FUNCTION_NAME_MAX:
        raise SettingsError(
            f"{variable}={value!r} is {len(value)} characters; at most {FUNCTION_NAME_MAX} are allowed, as its "
            f"IAM role {Settings.role_name(value)!r} must fit IAM's {IAM_ROLE_NAME_MAX}-character limit", variable)
    return value


def _check_runtime(variable: str, value: str) -> str:
    _check_name(variable, value)
    minor = int(value.removeprefix("python3."))
    if (3, minor) < MIN_LAMBDA_PYTHON:
        raise SettingsError(f"{variable}={value!r} is too old: the stockpipe zip imports only on "
                            f"{runtime_name(MIN_LAMBDA_PYTHON)} or newer", variable)
    return value


def runtime_name(version: tuple[int, int]) -> str:
    """The Lambda runtime identifier of a Python version: (3, 11) -> "python3.11"."""
    return f"python{version[0]}.{version[1]}"


def _check_email(variable: str, value: str) -> str:
    _check_characters(variable, value)
    space = next((ch for ch in value if ch.isspace()), None)
    if space is not None:
        raise SettingsError(f"{variable}={value!r} contains whitespace (U+{ord(space):04X}); remove it", variable)
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise SettingsError(f"{variable}={value!r} is not an e-mail address", variable)
    return value


def _int(env: Mapping[str, str], variable: str, low: int, high: int) -> int:
    raw = env.get(variable) or DEFAULTS[variable]
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{variable}={raw!r} is not a whole number", variable) from None
    if not low <= value <= high:
        raise SettingsError(f"{variable}={value} is out of range {low}..{high}", variable)
    return value


def _record_age(env: Mapping[str, str], variable: str) -> int:
    """A stream trigger's maximum record age: -1 (no limit) or 60..604800 seconds, as AWS allows."""
    value = _int(env, variable, -1, 604800)
    if value != -1 and value < 60:
        raise SettingsError(f"{variable}={value} is not allowed: AWS takes -1 (no limit) or 60..604800 seconds",
                            variable)
    return value


def _decimal(env: Mapping[str, str], variable: str, low: Decimal, high: Decimal) -> Decimal:
    raw = env.get(variable) or DEFAULTS[variable]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SettingsError(f"{variable}={raw!r} is not a number", variable) from None
    if not value.is_finite() or not low <= value <= high:
        raise SettingsError(f"{variable}={raw} is out of range {low}..{high}", variable)
    return value


def _ingest(env: Mapping[str, str], variable: str) -> str:
    value = (env.get(variable) or DEFAULTS[variable]).strip().lower()
    if value not in INGESTS:
        raise SettingsError(f"{variable}={env.get(variable)!r} is not one of {', '.join(INGESTS)}", variable)
    return value


def _thresholds(env: Mapping[str, str], variable: str) -> Thresholds:
    raw = env.get(variable) or DEFAULTS[variable]
    try:
        return parse_thresholds(raw)
    except ValueError as error:
        raise SettingsError(f"{variable}={raw!r}: {error}", variable) from None


def _choice(env: Mapping[str, str], variable: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(variable) or DEFAULTS[variable]).strip().upper()
    if value not in allowed:
        raise SettingsError(f"{variable}={env.get(variable)!r} is not one of {', '.join(allowed)}", variable)
    return value


def _host(env: Mapping[str, str], variable: str) -> str:
    """An interface to bind: a host name or an IP address (IPv6 without brackets)."""
    value = env.get(variable) or DEFAULTS[variable]
    _check_characters(variable, value)
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", value):
        raise SettingsError(f"{variable}={value!r} is not a host name or IP address to listen on", variable)
    return value


def _hosts(env: Mapping[str, str], variable: str) -> tuple[str, ...]:
    """Host names (or IP addresses), comma-separated; each as a Host header carries it (IPv6 in brackets)."""
    names = []
    for part in (env.get(variable) or DEFAULTS[variable]).split(","):
        name = part.strip().lower()
        if not name:
            continue
        _check_characters(variable, name)
        bare = name.removeprefix("[").removesuffix("]")
        if not re.fullmatch(r"[a-z0-9.:-]{1,253}", bare):
            raise SettingsError(f"{variable}: {name!r} is not a host name or IP address", variable)
        names.append(f"[{bare}]" if ":" in bare else bare)
    return tuple(names)


def _name(env: Mapping[str, str], variable: str) -> str:
    return _check_name(variable, env.get(variable, "") or DEFAULTS[variable])


def region_from(env: Mapping[str, str], *, sources: Sources | None = None) -> str:
    """AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1; refused unless well formed and, when the
    target is real AWS (AWS_ENDPOINT_URL unset or empty), a region botocore knows."""
    try:
        return _region(env)
    except SettingsError as error:
        raise error.located(sources) from None


def _region(env: Mapping[str, str]) -> str:
    if env.get("AWS_REGION"):
        variable, region, note = "AWS_REGION", env["AWS_REGION"], ""
    elif env.get("AWS_DEFAULT_REGION"):
        variable, region, note = "AWS_DEFAULT_REGION", env["AWS_DEFAULT_REGION"], " (AWS_REGION is unset)"
    else:
        return DEFAULT_REGION
    shown = f"{variable}={region!r}{note}"
    problem = character_problem(region)
    if problem:
        raise SettingsError(f"{shown} is not an AWS region name like us-east-1: it {problem}", variable)
    if not REGION_PATTERN.fullmatch(region):
        raise SettingsError(f"{shown} is not an AWS region name like us-east-1", variable)
    # On an emulator any well-formed region works. Inside Lambda, AWS itself set the region (and the
    # runtime's botocore may predate it).
    if env.get("AWS_ENDPOINT_URL") or env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return region
    known = known_regions()
    if known and region not in known:
        nearest = difflib.get_close_matches(region, sorted(known), n=3, cutoff=0.6)
        hint = f" (nearest: {', '.join(nearest)})" if nearest else ""
        raise SettingsError(f"{shown} is not a region botocore knows{hint}; check the spelling, or upgrade "
                            "boto3 if the region is new", variable)
    return region


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's bundled endpoint data: offline, read once.
    Empty if botocore is missing or its data has another shape (then no region is refused)."""
    try:
        from botocore.loaders import create_loader

        data = create_loader().load_data("endpoints")
        return frozenset(region for partition in data["partitions"] for region in partition["regions"])
    except Exception:  # noqa: BLE001 - a check that cannot run must not stop the pipeline
        return frozenset()


@dataclass(frozen=True)
class Settings:
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    ingest: str = DEFAULTS["INGEST"]
    stream_name: str = DEFAULTS["STREAM_NAME"]
    stream_mode: str = DEFAULTS["STREAM_MODE"]
    stream_shards: int = 1
    table_name: str = DEFAULTS["TABLE_NAME"]
    alerts_ledger_table: str = DEFAULTS["ALERTS_LEDGER_TABLE"]
    heads_table: str = DEFAULTS["HEADS_TABLE"]
    ingest_queue_name: str = DEFAULTS["INGEST_QUEUE_NAME"]
    locks_table: str = DEFAULTS["LOCKS_TABLE"]
    queue_batch_size: int = 10
    queue_max_receives: int = 10
    raw_bucket: str = ""
    raw_prefix: str = DEFAULTS["RAW_PREFIX"]
    athena_database: str = DEFAULTS["ATHENA_DATABASE"]
    athena_table: str = DEFAULTS["ATHENA_TABLE"]
    athena_workgroup: str = DEFAULTS["ATHENA_WORKGROUP"]
    metrics_namespace: str = DEFAULTS["METRICS_NAMESPACE"]
    dlq_name: str = DEFAULTS["DLQ_NAME"]
    topic_name: str = DEFAULTS["TOPIC_NAME"]
    alerts_queue_name: str = DEFAULTS["ALERTS_QUEUE_NAME"]
    compose_alerts_queue_name: str = DEFAULTS["COMPOSE_ALERTS_QUEUE_NAME"]
    dashboard_queue_name: str = DEFAULTS["DASHBOARD_QUEUE_NAME"]
    demo_queue_name: str = DEFAULTS["DEMO_QUEUE_NAME"]
    alert_email: str = ""
    process_function_name: str = DEFAULTS["PROCESS_FUNCTION_NAME"]
    trends_function_name: str = DEFAULTS["TRENDS_FUNCTION_NAME"]
    lambda_runtime: str = DEFAULTS["LAMBDA_RUNTIME"]
    lambda_memory_mb: int = 1024
    kinesis_batch_size: int = 1000
    streams_batch_size: int = 1000
    kinesis_batch_window_seconds: int = 1
    parallelization_factor: int = 1
    anomaly_threshold_percent: Decimal = Decimal(5)
    alert_threshold: Thresholds = Thresholds()
    moving_average_window: int = 5
    sma_short: int = 5
    sma_long: int = 20
    producer_symbols: tuple[str, ...] = ("AAPL", "MSFT", "AMZN")
    producer_rate: float = 10.0
    producer_interval: float = 30.0
    producer_seed: int = 42
    engine_port: int = 4566
    engine_data_dir: str = DEFAULTS["ENGINE_DATA_DIR"]
    dashboard_host: str = DEFAULTS["DASHBOARD_HOST"]
    dashboard_port: int = 8000
    dashboard_allowed_hosts: tuple[str, ...] = ()
    log_retention_days: int = 7
    stack_name: str = DEFAULTS["STACK_NAME"]
    onfailure_queue_name: str = DEFAULTS["ONFAILURE_QUEUE_NAME"]
    stream_max_retry_attempts: int = 5
    stream_max_record_age_seconds: int = 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, sources: Sources | None = None) -> Settings:
        """Read and check every setting. `sources` ({variable: ".env line 14"}, from stockpipe.dotenv)
        makes an error say where the wrong value was set: "... (set in .env line 14)"."""
        try:
            return cls._from_env(os.environ if env is None else env)
        except SettingsError as error:
            raise error.located(sources) from None

    @classmethod
    def _from_env(cls, env: Mapping[str, str]) -> Settings:
        email = env.get("ALERT_EMAIL", "")
        raw_bucket = env.get("RAW_BUCKET", "")
        settings = cls(
            region=_region(env),
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            ingest=_ingest(env, "INGEST"),
            stream_name=_name(env, "STREAM_NAME"),
            stream_mode=_choice(env, "STREAM_MODE", ("ON_DEMAND", "PROVISIONED")),
            stream_shards=_int(env, "STREAM_SHARDS", 1, 500),
            table_name=_name(env, "TABLE_NAME"),
            alerts_ledger_table=_name(env, "ALERTS_LEDGER_TABLE"),
            heads_table=_name(env, "HEADS_TABLE"),
            ingest_queue_name=_name(env, "INGEST_QUEUE_NAME"),
            locks_table=_name(env, "LOCKS_TABLE"),
            # Lambda takes up to 10 messages a batch without a batching window (MiniStack: 10 at most).
            queue_batch_size=_int(env, "QUEUE_BATCH_SIZE", 1, 10),
            queue_max_receives=_int(env, "QUEUE_MAX_RECEIVES", 1, 1000),
            raw_bucket=_check_name("RAW_BUCKET", raw_bucket) if raw_bucket else "",
            raw_prefix=_name(env, "RAW_PREFIX"),
            athena_database=_name(env, "ATHENA_DATABASE"),
            athena_table=_name(env, "ATHENA_TABLE"),
            athena_workgroup=_name(env, "ATHENA_WORKGROUP"),
            metrics_namespace=_name(env, "METRICS_NAMESPACE"),
            dlq_name=_name(env, "DLQ_NAME"),
            topic_name=_name(env, "TOPIC_NAME"),
            alerts_queue_name=_name(env, "ALERTS_QUEUE_NAME"),
            compose_alerts_queue_name=_name(env, "COMPOSE_ALERTS_QUEUE_NAME"),
            dashboard_queue_name=_name(env, "DASHBOARD_QUEUE_NAME"),
            demo_queue_name=_name(env, "DEMO_QUEUE_NAME"),
            alert_email=_check_email("ALERT_EMAIL", email) if email else "",
            process_function_name=_check_function_name(
                "PROCESS_FUNCTION_NAME", env.get("PROCESS_FUNCTION_NAME") or DEFAULTS["PROCESS_FUNCTION_NAME"]),
            trends_function_name=_check_function_name(
                "TRENDS_FUNCTION_NAME", env.get("TRENDS_FUNCTION_NAME") or DEFAULTS["TRENDS_FUNCTION_NAME"]),
            lambda_runtime=_check_runtime("LAMBDA_RUNTIME", env.get("LAMBDA_RUNTIME") or DEFAULTS["LAMBDA_RUNTIME"]),
            lambda_memory_mb=_int(env, "LAMBDA_MEMORY_MB", 128, 10240),
            kinesis_batch_size=_int(env, "KINESIS_BATCH_SIZE", 1, 10000),
            streams_batch_size=_int(env, "STREAMS_BATCH_SIZE", 1, 10000),
            kinesis_batch_window_seconds=_int(env, "KINESIS_BATCH_WINDOW_SECONDS", 0, 300),
            parallelization_factor=_int(env, "PARALLELIZATION_FACTOR", 1, 10),
            anomaly_threshold_percent=_decimal(env, "ANOMALY_THRESHOLD_PERCENT", Decimal(0), Decimal(1000)),
            alert_threshold=_thresholds(env, "ALERT_THRESHOLD"),
            moving_average_window=_int(env, "MOVING_AVERAGE_WINDOW", 1, 1000),
            sma_short=_int(env, "SMA_SHORT", 1, 1000),
            sma_long=_int(env, "SMA_LONG", 2, 1000),
            producer_symbols=parse_symbols(env.get("PRODUCER_SYMBOLS") or DEFAULTS["PRODUCER_SYMBOLS"]),
            producer_rate=float(_decimal(env, "PRODUCER_RATE", Decimal("0.01"), Decimal(100000))),
            producer_interval=float(_decimal(env, "PRODUCER_INTERVAL", Decimal(1), Decimal(86400))),
            producer_seed=_int(env, "PRODUCER_SEED", 0, 2**31 - 1),
            engine_port=_int(env, "ENGINE_PORT", 1, 65535),
            engine_data_dir=env.get("ENGINE_DATA_DIR") or DEFAULTS["ENGINE_DATA_DIR"],
            dashboard_host=_host(env, "DASHBOARD_HOST"),
            dashboard_port=_int(env, "DASHBOARD_PORT", 1, 65535),
            dashboard_allowed_hosts=_hosts(env, "DASHBOARD_ALLOWED_HOSTS"),
            log_retention_days=_int(env, "LOG_RETENTION_DAYS", 1, 3653),
            stack_name=_name(env, "STACK_NAME"),
            onfailure_queue_name=_name(env, "ONFAILURE_QUEUE_NAME"),
            stream_max_retry_attempts=_int(env, "STREAM_MAX_RETRY_ATTEMPTS", 0, 10000),
            stream_max_record_age_seconds=_record_age(env, "STREAM_MAX_RECORD_AGE_SECONDS"),
        )
        if settings.log_retention_days not in RETENTION_DAYS:
            raise SettingsError(f"LOG_RETENTION_DAYS={settings.log_retention_days} is not a period CloudWatch "
                                f"keeps logs for: one of {', '.join(map(str, RETENTION_DAYS))}", "LOG_RETENTION_DAYS")
        readers = [(variable, settings.queue_of(variable)) for _, variable, _ in READER_QUEUES]
        for index, (variable, name) in enumerate(readers):
            shared = next((other for other, taken in readers[:index] if taken == name), None)
            if shared:
                raise SettingsError(f"{variable}={name!r} is also {shared}: each reader of the alerts needs a queue of "
                                    "its own (a message read from a queue is gone for the others)", shared, variable)
        if settings.sma_short >= settings.sma_long:
            raise SettingsError(f"SMA_SHORT={settings.sma_short} must be smaller than SMA_LONG={settings.sma_long}",
                                "SMA_SHORT", "SMA_LONG")
        return settings

    def queue_of(self, variable: str) -> str:
        """The queue name a reader's variable holds (READER_QUEUES): ALERTS_QUEUE_NAME -> alerts_queue_name."""
        name: str = getattr(self, variable.lower())
        return name

    @staticmethod
    def role_name(function_name: str) -> str:
        """The IAM role init creates for a function: the one place for the rule (IAM allows 64
        characters, hence FUNCTION_NAME_MAX)."""
        return f"{function_name}{ROLE_SUFFIX}"

    def raw_bucket_for(self, account_id: str) -> str:
        """RAW_BUCKET, or one derived from account and region: bucket names are global on AWS."""
        return self.raw_bucket or f"stockpipe-raw-{account_id}-{self.region}"

    def raw_location(self, bucket: str) -> str:
        """The S3 folder the Athena table reads: where process-ticks archives raw ticks."""
        return f"s3://{bucket}/{self.raw_prefix}/"

    def athena_output(self, bucket: str) -> str:
        """Athena's result files, beside the raw data but outside the table's folder."""
        return f"s3://{bucket}/{ATHENA_RESULTS_PREFIX}/"

    def lambda_environment(self, *, raw_bucket: str, dlq_url: str, topic_arn: str,
                           partial_batch_response: bool, ingest_queue_url: str | None = None) -> dict[str, str]:
        """What the functions need, passed as their environment: the same variables, resolved.

        ``partial_batch_response``: the engine honours a stream trigger's ReportBatchItemFailures
        (AWS, LocalStack), so a handler may report where a failed batch must resume instead of raising.
        ``ingest_queue_url``: INGEST=sqs, the queue process-ticks is triggered by (it delays the retry
        of a message that failed); its symbols' locks are in LOCKS_TABLE."""
        optional = {"ALERT_THRESHOLD": str(self.alert_threshold)} if self.alert_threshold else {}
        if self.ingest == "sqs":
            optional.update(LOCKS_TABLE=self.locks_table, INGEST_QUEUE_URL=ingest_queue_url or "(created by init)")
        return {
            "PARTIAL_BATCH_RESPONSE": "true" if partial_batch_response else "false",
            "TABLE_NAME": self.table_name,
            "ALERTS_LEDGER_TABLE": self.alerts_ledger_table,
            "HEADS_TABLE": self.heads_table,
            "RAW_BUCKET": raw_bucket,
            "RAW_PREFIX": self.raw_prefix,
            "ATHENA_DATABASE": self.athena_database,
            "ATHENA_TABLE": self.athena_table,
            "DLQ_URL": dlq_url,
            "TOPIC_ARN": topic_arn,
            "ANOMALY_THRESHOLD_PERCENT": str(self.anomaly_threshold_percent),
            "MOVING_AVERAGE_WINDOW": str(self.moving_average_window),
            "SMA_SHORT": str(self.sma_short),
            "SMA_LONG": str(self.sma_long),
            "METRICS_NAMESPACE": self.metrics_namespace,
            **optional,
        }


def unique_names(prefix: str) -> dict[str, str]:
    """A whole pipeline's resource names under one prefix, as environment variables: for a run
    that must not touch (or be touched by) the default resources, such as a test or the bench."""
    return {
        "STREAM_NAME": f"{prefix}-stream",
        "TABLE_NAME": f"{prefix}-ticks",
        "ALERTS_LEDGER_TABLE": f"{prefix}-alerts-sent",
        "HEADS_TABLE": f"{prefix}-heads",
        "INGEST_QUEUE_NAME": f"{prefix}-queue",
        "LOCKS_TABLE": f"{prefix}-locks",
        "RAW_BUCKET": f"{prefix}-stockpipe-raw",
        "DLQ_NAME": f"{prefix}-dlq",
        "TOPIC_NAME": f"{prefix}-alerts",
        "ALERTS_QUEUE_NAME": f"{prefix}-alerts-inbox",
        "COMPOSE_ALERTS_QUEUE_NAME": f"{prefix}-alerts-compose",
        "DASHBOARD_QUEUE_NAME": f"{prefix}-alerts-dashboard",
        "DEMO_QUEUE_NAME": f"{prefix}-alerts-demo",
        "PROCESS_FUNCTION_NAME": f"{prefix}-process-ticks",
        "TRENDS_FUNCTION_NAME": f"{prefix}-trend-alerts",
        "ATHENA_DATABASE": f"{prefix}_stock_data",  # the Glue table keeps its name inside its own database
        "ONFAILURE_QUEUE_NAME": f"{prefix}-onfailure",
        "STACK_NAME": prefix,
    }


def parse_symbols(text: str) -> tuple[str, ...]:
    from stockpipe.domain.ticks import SYMBOL_PATTERN

    symbols = tuple(part.strip().upper() for part in text.split(",") if part.strip())
    if not symbols:
        raise SettingsError("PRODUCER_SYMBOLS is empty; give a comma-separated list such as AAPL,MSFT",
                            "PRODUCER_SYMBOLS")
    for symbol in symbols:
        if not SYMBOL_PATTERN.match(symbol):
            raise SettingsError(f"PRODUCER_SYMBOLS: {symbol!r} is not a ticker symbol", "PRODUCER_SYMBOLS")
    return symbols


def require(env: Mapping[str, str], *variables: str) -> dict[str, str]:
    """For the Lambdas: variables init resolved (URLs, ARNs). Missing ones are named together."""
    missing = [name for name in variables if not env.get(name)]
    if missing:
        raise SettingsError(f"missing environment variable(s): {', '.join(missing)}", *missing)
    return {name: env[name] for name in variables}


__all__ = ["DEFAULTS", "FUNCTION_NAME_MAX", "IAM_ROLE_NAME_MAX", "MIN_LAMBDA_PYTHON", "NAME_VARIABLES", "READER_QUEUES",
           "STACK_TAG_KEY",
           "Settings",
           "SettingsError", "Sources", "describe_source", "known_regions", "parse_symbols", "region_from", "require",
           "runtime_name", "unique_names"]
