"""Every name, region and knob, read once from the environment (documented in .env.example).

No defaults live anywhere else: the CLI, init, the producer and both Lambdas read this. A wrong
value fails at start with one line naming the variable (the seeds' troubleshooting notes: a
trailing space in a stream name, a hidden U+200B, a region mismatch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

DEFAULT_REGION = "us-east-1"

# Defaults are the seeds' names. The raw bucket has none: it is derived per account and region
# (see Settings.raw_bucket_for) so that it is unique on real AWS too.
DEFAULTS: dict[str, str] = {
    "STREAM_NAME": "stock-market-stream",
    "STREAM_MODE": "ON_DEMAND",
    "STREAM_SHARDS": "1",
    "TABLE_NAME": "stock-market-data",
    "ALERTS_LEDGER_TABLE": "stock-market-alerts-sent",
    "RAW_BUCKET": "",
    "RAW_PREFIX": "raw-data",
    "ATHENA_DATABASE": "stock_data",
    "ATHENA_TABLE": "stock_data_table",
    "ATHENA_WORKGROUP": "primary",
    "DLQ_NAME": "stock-market-dlq",
    "TOPIC_NAME": "Stock_Trend_Alerts",
    "ALERTS_QUEUE_NAME": "stock-market-alerts-inbox",
    "ALERT_EMAIL": "",
    "PROCESS_FUNCTION_NAME": "process-ticks",
    "TRENDS_FUNCTION_NAME": "trend-alerts",
    "LAMBDA_RUNTIME": "python3.12",
    "KINESIS_BATCH_SIZE": "100",
    "STREAMS_BATCH_SIZE": "100",
    "KINESIS_BATCH_WINDOW_SECONDS": "1",
    "ANOMALY_THRESHOLD_PERCENT": "5",
    "MOVING_AVERAGE_WINDOW": "5",
    "SMA_SHORT": "5",
    "SMA_LONG": "20",
    "PRODUCER_SYMBOLS": "AAPL,MSFT,AMZN",
    "PRODUCER_RATE": "10",
    "PRODUCER_INTERVAL": "30",
    "PRODUCER_SEED": "42",
    "ENGINE_PORT": "4566",
    "LOG_RETENTION_DAYS": "7",
}
# What CloudWatch Logs accepts as a retention period.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)

_NAME_RULES: dict[str, tuple[str, str]] = {
    # variable: (pattern, what AWS allows)
    "STREAM_NAME": (r"[a-zA-Z0-9_.-]{1,128}", "letters, digits, _ . - (1-128)"),
    "TABLE_NAME": (r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)"),
    "ALERTS_LEDGER_TABLE": (r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)"),
    "RAW_BUCKET": (r"(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "lower-case letters, digits, . - (3-63)"),
    "RAW_PREFIX": (r"[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*", "path segments of letters, digits, _ . -"),
    "ATHENA_DATABASE": (r"[a-z0-9_]{1,255}", "lower-case letters, digits, _ (1-255)"),
    "ATHENA_TABLE": (r"[a-z0-9_]{1,255}", "lower-case letters, digits, _ (1-255)"),
    "ATHENA_WORKGROUP": (r"[a-zA-Z0-9._-]{1,128}", "letters, digits, . _ - (1-128)"),
    "DLQ_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "TOPIC_NAME": (r"[a-zA-Z0-9_-]{1,256}", "letters, digits, _ - (1-256)"),
    "ALERTS_QUEUE_NAME": (r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)"),
    "PROCESS_FUNCTION_NAME": (r"[a-zA-Z0-9_-]{1,64}", "letters, digits, _ - (1-64)"),
    "TRENDS_FUNCTION_NAME": (r"[a-zA-Z0-9_-]{1,64}", "letters, digits, _ - (1-64)"),
    "LAMBDA_RUNTIME": (r"python3\.(9|1[0-9])", "a Python Lambda runtime such as python3.12"),
}
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")


class SettingsError(ValueError):
    """A configuration value that cannot work. The message names the variable."""


def _check_name(variable: str, value: str) -> str:
    if value != value.strip():
        raise SettingsError(f"{variable}={value!r} has leading or trailing whitespace; remove it")
    if not value.isascii() or not value.isprintable():
        bad = next(ch for ch in value if not (ch.isascii() and ch.isprintable()))
        raise SettingsError(f"{variable}={value!r} contains the hidden character U+{ord(bad):04X}; retype it")
    pattern, allowed = _NAME_RULES[variable]
    if not re.fullmatch(pattern, value):
        raise SettingsError(f"{variable}={value!r} is not a valid name: AWS allows {allowed}")
    return value


def _int(env: Mapping[str, str], variable: str, low: int, high: int) -> int:
    raw = env.get(variable) or DEFAULTS[variable]
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{variable}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{variable}={value} is out of range {low}..{high}")
    return value


def _decimal(env: Mapping[str, str], variable: str, low: Decimal, high: Decimal) -> Decimal:
    raw = env.get(variable) or DEFAULTS[variable]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SettingsError(f"{variable}={raw!r} is not a number") from None
    if not value.is_finite() or not low <= value <= high:
        raise SettingsError(f"{variable}={raw} is out of range {low}..{high}")
    return value


def _choice(env: Mapping[str, str], variable: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(variable) or DEFAULTS[variable]).strip().upper()
    if value not in allowed:
        raise SettingsError(f"{variable}={env.get(variable)!r} is not one of {', '.join(allowed)}")
    return value


def _name(env: Mapping[str, str], variable: str) -> str:
    return _check_name(variable, env.get(variable, "") or DEFAULTS[variable])


def region_from(env: Mapping[str, str]) -> str:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    if not REGION_PATTERN.match(region):
        raise SettingsError(f"AWS_REGION={region!r} is not an AWS region name like us-east-1")
    return region


@dataclass(frozen=True)
class Settings:
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    stream_name: str = DEFAULTS["STREAM_NAME"]
    stream_mode: str = DEFAULTS["STREAM_MODE"]
    stream_shards: int = 1
    table_name: str = DEFAULTS["TABLE_NAME"]
    alerts_ledger_table: str = DEFAULTS["ALERTS_LEDGER_TABLE"]
    raw_bucket: str = ""
    raw_prefix: str = DEFAULTS["RAW_PREFIX"]
    athena_database: str = DEFAULTS["ATHENA_DATABASE"]
    athena_table: str = DEFAULTS["ATHENA_TABLE"]
    athena_workgroup: str = DEFAULTS["ATHENA_WORKGROUP"]
    dlq_name: str = DEFAULTS["DLQ_NAME"]
    topic_name: str = DEFAULTS["TOPIC_NAME"]
    alerts_queue_name: str = DEFAULTS["ALERTS_QUEUE_NAME"]
    alert_email: str = ""
    process_function_name: str = DEFAULTS["PROCESS_FUNCTION_NAME"]
    trends_function_name: str = DEFAULTS["TRENDS_FUNCTION_NAME"]
    lambda_runtime: str = DEFAULTS["LAMBDA_RUNTIME"]
    kinesis_batch_size: int = 100
    streams_batch_size: int = 100
    kinesis_batch_window_seconds: int = 1
    anomaly_threshold_percent: Decimal = Decimal(5)
    moving_average_window: int = 5
    sma_short: int = 5
    sma_long: int = 20
    producer_symbols: tuple[str, ...] = ("AAPL", "MSFT", "AMZN")
    producer_rate: float = 10.0
    producer_interval: float = 30.0
    producer_seed: int = 42
    engine_port: int = 4566
    log_retention_days: int = 7

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        email = env.get("ALERT_EMAIL", "").strip()
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise SettingsError(f"ALERT_EMAIL={email!r} is not an e-mail address")
        raw_bucket = env.get("RAW_BUCKET", "")
        settings = cls(
            region=region_from(env),
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            stream_name=_name(env, "STREAM_NAME"),
            stream_mode=_choice(env, "STREAM_MODE", ("ON_DEMAND", "PROVISIONED")),
            stream_shards=_int(env, "STREAM_SHARDS", 1, 500),
            table_name=_name(env, "TABLE_NAME"),
            alerts_ledger_table=_name(env, "ALERTS_LEDGER_TABLE"),
            raw_bucket=_check_name("RAW_BUCKET", raw_bucket) if raw_bucket else "",
            raw_prefix=_name(env, "RAW_PREFIX"),
            athena_database=_name(env, "ATHENA_DATABASE"),
            athena_table=_name(env, "ATHENA_TABLE"),
            athena_workgroup=_name(env, "ATHENA_WORKGROUP"),
            dlq_name=_name(env, "DLQ_NAME"),
            topic_name=_name(env, "TOPIC_NAME"),
            alerts_queue_name=_name(env, "ALERTS_QUEUE_NAME"),
            alert_email=email,
            process_function_name=_name(env, "PROCESS_FUNCTION_NAME"),
            trends_function_name=_name(env, "TRENDS_FUNCTION_NAME"),
            lambda_runtime=_name(env, "LAMBDA_RUNTIME"),
            kinesis_batch_size=_int(env, "KINESIS_BATCH_SIZE", 1, 10000),
            streams_batch_size=_int(env, "STREAMS_BATCH_SIZE", 1, 10000),
            kinesis_batch_window_seconds=_int(env, "KINESIS_BATCH_WINDOW_SECONDS", 0, 300),
            anomaly_threshold_percent=_decimal(env, "ANOMALY_THRESHOLD_PERCENT", Decimal(0), Decimal(1000)),
            moving_average_window=_int(env, "MOVING_AVERAGE_WINDOW", 1, 1000),
            sma_short=_int(env, "SMA_SHORT", 1, 1000),
            sma_long=_int(env, "SMA_LONG", 2, 1000),
            producer_symbols=parse_symbols(env.get("PRODUCER_SYMBOLS") or DEFAULTS["PRODUCER_SYMBOLS"]),
            producer_rate=float(_decimal(env, "PRODUCER_RATE", Decimal("0.01"), Decimal(100000))),
            producer_interval=float(_decimal(env, "PRODUCER_INTERVAL", Decimal(1), Decimal(86400))),
            producer_seed=_int(env, "PRODUCER_SEED", 0, 2**31 - 1),
            engine_port=_int(env, "ENGINE_PORT", 1, 65535),
            log_retention_days=_int(env, "LOG_RETENTION_DAYS", 1, 3653),
        )
        if settings.log_retention_days not in RETENTION_DAYS:
            raise SettingsError(f"LOG_RETENTION_DAYS={settings.log_retention_days} is not a period CloudWatch "
                                f"keeps logs for: one of {', '.join(map(str, RETENTION_DAYS))}")
        if settings.sma_short >= settings.sma_long:
            raise SettingsError(f"SMA_SHORT={settings.sma_short} must be smaller than SMA_LONG={settings.sma_long}")
        return settings

    def raw_bucket_for(self, account_id: str) -> str:
        """RAW_BUCKET, or one derived from account and region: bucket names are global on AWS."""
        return self.raw_bucket or f"stockpipe-raw-{account_id}-{self.region}"

    def raw_location(self, bucket: str) -> str:
        """The S3 folder the Athena table reads: where process-ticks archives raw ticks."""
        return f"s3://{bucket}/{self.raw_prefix}/"

    def athena_output(self, bucket: str) -> str:
        """Athena's result files, beside the raw data but outside the table's folder."""
        return f"s3://{bucket}/athena-results/"

    def lambda_environment(self, *, raw_bucket: str, dlq_url: str, topic_arn: str) -> dict[str, str]:
        """What the functions need, passed as their environment: the same variables, resolved."""
        return {
            "TABLE_NAME": self.table_name,
            "ALERTS_LEDGER_TABLE": self.alerts_ledger_table,
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
        }


def unique_names(prefix: str) -> dict[str, str]:
    """A whole pipeline's resource names under one prefix, as environment variables: for a run
    that must not touch (or be touched by) the default resources, such as a test or the bench."""
    return {
        "STREAM_NAME": f"{prefix}-stream",
        "TABLE_NAME": f"{prefix}-ticks",
        "ALERTS_LEDGER_TABLE": f"{prefix}-alerts-sent",
        "RAW_BUCKET": f"{prefix}-stockpipe-raw",
        "DLQ_NAME": f"{prefix}-dlq",
        "TOPIC_NAME": f"{prefix}-alerts",
        "ALERTS_QUEUE_NAME": f"{prefix}-alerts-inbox",
        "PROCESS_FUNCTION_NAME": f"{prefix}-process-ticks",
        "TRENDS_FUNCTION_NAME": f"{prefix}-trend-alerts",
        "ATHENA_DATABASE": f"{prefix}_stock_data",  # the Glue table keeps its name inside its own database
    }


def parse_symbols(text: str) -> tuple[str, ...]:
    from stockpipe.domain.ticks import SYMBOL_PATTERN

    symbols = tuple(part.strip().upper() for part in text.split(",") if part.strip())
    if not symbols:
        raise SettingsError("PRODUCER_SYMBOLS is empty; give a comma-separated list such as AAPL,MSFT")
    for symbol in symbols:
        if not SYMBOL_PATTERN.match(symbol):
            raise SettingsError(f"PRODUCER_SYMBOLS: {symbol!r} is not a ticker symbol")
    return symbols


def require(env: Mapping[str, str], *variables: str) -> dict[str, str]:
    """For the Lambdas: variables init resolved (URLs, ARNs). Missing ones are named together."""
    missing = [name for name in variables if not env.get(name)]
    if missing:
        raise SettingsError(f"missing environment variable(s): {', '.join(missing)}")
    return {name: env[name] for name in variables}


__all__ = ["DEFAULTS", "Settings", "SettingsError", "parse_symbols", "region_from", "require", "unique_names"]
