"""Every name, region and knob, each declared once below, and read once from the environment.

A setting is one field of ``Settings`` declared with ``setting(...)``: its variable, its default as
.env.example writes it, how its text is read (a wrong value fails at start with one line naming the
variable: the seeds' troubleshooting notes are a trailing space in a stream name, a hidden U+200B, a
region mismatch), what it means (its comment in .env.example) and who reads it. From that one
declaration come:

- parsing: ``Settings.from_env`` (and ``DEFAULTS``, the text of each default);
- the functions' environment: ``FunctionEnvironment``, what init writes and each handler parses once
  at its cold start (the settings that a function reads, and what init resolves for it);
- the names doctor scans (``NAME_VARIABLES``) and the alerts' readers, each with a queue of its own
  (``READER_QUEUES``, checked for two readers on one queue);
- .env.example and the docs' configuration page (stockpipe.configuration renders both; a unit test
  holds the file equal to the rendering).

This module is also the one place of the package that reads the process environment
(``environment()``). It needs the standard library only: scripts/compose.py imports it outside the
virtualenv, and it ships in the Lambda zips. That is why it is a dataclass with field metadata and
not pydantic-settings, which would add 2.9 MB to each zip (95 KB without) and 80 to 250 ms to a
cold start of 170 ms (docs/configuration.md, "How a setting is declared").
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import MISSING, dataclass, field, fields, replace
from dataclasses import Field as DataclassField
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from stockpipe.domain.thresholds import Thresholds, parse_thresholds
from stockpipe.errors import StockpipeError

T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
# Where `stockpipe emulator` listens unless ENGINE_PORT says otherwise (LocalStack's port too).
DEFAULT_ENGINE_PORT = 4566

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
# Athena's result files are deleted this many days after a query wrote them (a query run again makes
# them again); the raw prefix follows RAW_GLACIER_DAYS and RAW_EXPIRE_DAYS, the quarantine is kept.
ATHENA_RESULTS_EXPIRE_DAYS = 7
# Where a variable was set, when not in the environment: {variable: ".env line 14"} (see stockpipe.dotenv).
Sources = Mapping[str, str]
# INGEST: how ticks reach process-ticks.
INGESTS = ("kinesis", "sqs")
# What CloudWatch Logs accepts as a retention period.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
# The shape of a region name (us-east-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1). On real AWS
# the region must also be one botocore knows (see known_regions).
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+){1,3}-\d{1,2}")


def environment() -> MutableMapping[str, str]:
    """The process environment: the one place the package reads it. The CLI first fills it in from
    a .env (stockpipe.dotenv); each handler parses it once, as a FunctionEnvironment."""
    return os.environ


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


# -- the declaration's parts: who reads a variable, where .env.example shows it ----------------


class Reader(Enum):
    """Who reads a variable (the configuration page's "read by" column)."""

    INIT = "init"
    CLI = "CLI"
    PRODUCER = "producer"
    PROCESS = "process-ticks"
    TRENDS = "trend-alerts"
    DASHBOARD = "dashboard"
    ENGINE = "embedded engine"
    COMPOSE = "docker compose"
    BOTO3 = "boto3"


FUNCTIONS = (Reader.PROCESS, Reader.TRENDS)


class Section(Enum):
    """The parts of .env.example and of the configuration page, in their order: (title, intro)."""

    AWS = ("Where AWS is", "")
    RESOURCES = ("Resource names (defaults: the names in the project's write-ups)", "")
    PROCESSING = ("Processing", "")
    PRODUCER = ("Producer", "")
    ENGINE = ("Embedded engine", "")
    DASHBOARD = ("Dashboard (`stockpipe dashboard`, also started by `stockpipe demo`)", "")
    COMPOSE = ("docker compose (`docker compose up`, or `make up`; docs/compose.md)",
               "The compose project runs the engine, init, the producer, an alerts printer and the dashboard "
               "in containers (the dashboard published on 127.0.0.1:DASHBOARD_PORT). `make up` checks this "
               "file first with the CLI's rules; plain `docker compose up` runs the same stack without the "
               "checks. Inside it, the containers reach the engine at http://engine:4566 whatever "
               "AWS_ENDPOINT_URL says; on this machine the engine answers at ENGINE_PORT (above), on "
               "127.0.0.1 only.")

    @property
    def title(self) -> str:
        return self.value[0]

    @property
    def intro(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class Variable:
    """One environment variable, declared once.

    ``default``: as .env.example writes it (a setting's value when the variable is unset or empty).
    ``parse``: (variable, text) -> value; raises SettingsError naming the variable. None: stockpipe
    does not read it (boto3's credentials, docker compose's variables). ``read_env``: instead of
    ``parse``, for a value read from the whole environment (AWS_REGION falls back to AWS_DEFAULT_REGION).
    ``meaning``: its comment; "\\n" starts a new paragraph, and one that starts with a space is kept
    as written. ``inbox``: (key, who) when it names the queue of a reader of the alerts.
    ``example``: what .env.example sets when it is not the default; ``commented``: shown there as
    ``# NAME=example``, left unset."""

    name: str
    default: str
    meaning: str
    readers: tuple[Reader, ...]
    parse: Callable[[str, str], Any] | None = None
    read_env: Callable[[Mapping[str, str]], Any] | None = None
    show: Callable[[Any], str] = str
    section: Section | None = None
    inbox: tuple[str, str] | None = None
    example: str | None = None
    commented: bool = False

    def read(self, env: Mapping[str, str]) -> Any:
        """Its value in ``env``: the default when unset or empty."""
        if self.read_env is not None:
            return self.read_env(env)
        assert self.parse is not None, f"{self.name} is not read by stockpipe"
        return self.parse(self.name, env.get(self.name) or self.default)

    @property
    def shown(self) -> str:
        """Its value in .env.example."""
        return self.default if self.example is None else self.example


_VARIABLE = "stockpipe.variable"


def setting(variable: str, default: str, parse: Callable[[str, str], T], meaning: str, *readers: Reader,
            section: Section | None = None, inbox: tuple[str, str] | None = None) -> T:
    """A field of Settings, declared once: its value when unset is ``default`` read as the variable is."""
    declared = Variable(variable, default, meaning, readers, parse, section=section, inbox=inbox)
    return field(default=parse(variable, default), metadata={_VARIABLE: declared})


def setting_from_env(variable: str, default: str, read: Callable[[Mapping[str, str]], T], meaning: str,
                     *readers: Reader, section: Section | None = None, example: str | None = None) -> T:
    """A field of Settings read from the whole environment (boto3's variables, with boto3's rules)."""
    declared = Variable(variable, default, meaning, readers, read_env=read, section=section, example=example)
    return field(default=read({}), metadata={_VARIABLE: declared})


def declared(item: DataclassField[Any]) -> Variable:
    """The declaration of a Settings (or FunctionEnvironment) field."""
    variable: Variable = item.metadata[_VARIABLE]
    return variable


# -- how a text is read: each raises SettingsError naming the variable, in one line ------------


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


@dataclass(frozen=True)
class Name:
    """A resource name: no stray character, and the pattern AWS allows (said in words when refused).
    ``optional``: empty is allowed (and means none)."""

    pattern: str
    allowed: str
    optional: bool = False

    def __call__(self, variable: str, text: str) -> str:
        if self.optional and not text:
            return ""
        _check_characters(variable, text)
        if not re.fullmatch(self.pattern, text):
            raise SettingsError(f"{variable}={text!r} is not a valid name: AWS allows {self.allowed}", variable)
        return text


def role_name(function_name: str) -> str:
    """The IAM role init creates for a function: the one place for the rule (IAM allows 64
    characters, hence FUNCTION_NAME_MAX)."""
    return f"{function_name}{ROLE_SUFFIX}"


@dataclass(frozen=True)
class FunctionName(Name):
    """A function's name, short enough for its role's name to fit IAM's limit."""

    def __call__(self, variable: str, text: str) -> str:
        value = super().__call__(variable, text)
        if len(value) > FUNCTION_NAME_MAX:
            raise SettingsError(
                f"{variable}={value!r} is {len(value)} characters; at most {FUNCTION_NAME_MAX} are allowed, as its "
                f"IAM role {role_name(value)!r} must fit IAM's {IAM_ROLE_NAME_MAX}-character limit", variable)
        return value


@dataclass(frozen=True)
class Runtime(Name):
    """A Python Lambda runtime the zip imports on."""

    def __call__(self, variable: str, text: str) -> str:
        value = super().__call__(variable, text)
        if (3, int(value.removeprefix("python3."))) < MIN_LAMBDA_PYTHON:
            raise SettingsError(f"{variable}={value!r} is too old: the stockpipe zip imports only on "
                                f"{runtime_name(MIN_LAMBDA_PYTHON)} or newer", variable)
        return value


def runtime_name(version: tuple[int, int]) -> str:
    """The Lambda runtime identifier of a Python version: (3, 11) -> "python3.11"."""
    return f"python{version[0]}.{version[1]}"


STREAM = Name(r"[a-zA-Z0-9_.-]{1,128}", "letters, digits, _ . - (1-128)")
TABLE = Name(r"[a-zA-Z0-9_.-]{3,255}", "letters, digits, _ . - (3-255)")
# A standard queue: a .fifo name would need a FIFO dead-letter queue and a group per message.
QUEUE = Name(r"[a-zA-Z0-9_-]{1,80}", "letters, digits, _ - (1-80)")
BUCKET = Name(r"(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "lower-case letters, digits, . - (3-63)", optional=True)
PREFIX = Name(r"[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*", "path segments of letters, digits, _ . -")
GLUE = Name(r"[a-z0-9_]{1,255}", "lower-case letters, digits, _ (1-255)")
WORKGROUP = Name(r"[a-zA-Z0-9._-]{1,128}", "letters, digits, . _ - (1-128)")
NAMESPACE = Name(r"[a-zA-Z0-9._/#:-]{1,255}", "letters, digits, . _ / # : - (1-255)")
TOPIC = Name(r"[a-zA-Z0-9_-]{1,256}", "letters, digits, _ - (1-256)")
DASHBOARD_NAME = Name(r"[a-zA-Z0-9_-]{1,255}", "letters, digits, _ - (1-255)")
FUNCTION = FunctionName(r"[a-zA-Z0-9_-]{1,64}", "letters, digits, _ - (1-64)")
RUNTIME = Runtime(r"python3\.\d{1,2}", "a Python Lambda runtime such as python3.12")
STACK = Name(r"[a-zA-Z0-9_.-]{1,64}", "letters, digits, _ . - (1-64)")


def whole(low: int, high: int) -> Callable[[str, str], int]:
    def parse(variable: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SettingsError(f"{variable}={text!r} is not a whole number", variable) from None
        if not low <= value <= high:
            raise SettingsError(f"{variable}={value} is out of range {low}..{high}", variable)
        return value
    return parse


def _record_age(variable: str, text: str) -> int:
    """A stream trigger's maximum record age: -1 (no limit) or 60..604800 seconds, as AWS allows."""
    value = whole(-1, 604800)(variable, text)
    if value != -1 and value < 60:
        raise SettingsError(f"{variable}={value} is not allowed: AWS takes -1 (no limit) or 60..604800 seconds",
                            variable)
    return value


def _retention(variable: str, text: str) -> int:
    value = whole(1, 3653)(variable, text)
    if value not in RETENTION_DAYS:
        raise SettingsError(f"{variable}={value} is not a period CloudWatch keeps logs for: one of "
                            f"{', '.join(map(str, RETENTION_DAYS))}", variable)
    return value


def optional_days(low: int, high: int, *, off: str = "") -> Callable[[str, str], int | None]:
    """A number of days, or None: empty (or ``off``, when given) means none."""
    def parse(variable: str, text: str) -> int | None:
        if not text or text == off:
            return None
        return whole(low, high)(variable, text)
    return parse


def check_raw_lifecycle(glacier: int | None, expire: int | None) -> None:
    if glacier is not None and expire is not None and expire <= glacier:
        raise SettingsError(f"RAW_EXPIRE_DAYS={expire} must be greater than RAW_GLACIER_DAYS={glacier} (raw objects "
                            "move to Glacier first); set RAW_GLACIER_DAYS=0 to expire them without moving them",
                            "RAW_EXPIRE_DAYS", "RAW_GLACIER_DAYS")


def number(low: Decimal, high: Decimal) -> Callable[[str, str], Decimal]:
    def parse(variable: str, text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise SettingsError(f"{variable}={text!r} is not a number", variable) from None
        if not value.is_finite() or not low <= value <= high:
            raise SettingsError(f"{variable}={text} is out of range {low}..{high}", variable)
        return value
    return parse


def rate(low: Decimal, high: Decimal) -> Callable[[str, str], float]:
    return lambda variable, text: float(number(low, high)(variable, text))


def one_of(allowed: tuple[str, ...], normal: Callable[[str], str]) -> Callable[[str, str], str]:
    """One of ``allowed``, once stripped and put in ``normal`` case."""
    def parse(variable: str, text: str) -> str:
        value = normal(text.strip())
        if value not in allowed:
            raise SettingsError(f"{variable}={text!r} is not one of {', '.join(allowed)}", variable)
        return value
    return parse


def _thresholds(variable: str, text: str) -> Thresholds:
    try:
        return parse_thresholds(text)
    except ValueError as error:
        raise SettingsError(f"{variable}={text!r}: {error}", variable) from None


# What an e-mail setting must look like (a template parameter's AllowedPattern too).
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"


def _email(variable: str, text: str) -> str:
    if not text:
        return ""
    _check_characters(variable, text)
    space = next((ch for ch in text if ch.isspace()), None)
    if space is not None:
        raise SettingsError(f"{variable}={text!r} contains whitespace (U+{ord(space):04X}); remove it", variable)
    if not re.fullmatch(EMAIL_PATTERN, text):
        raise SettingsError(f"{variable}={text!r} is not an e-mail address", variable)
    return text


def _host(variable: str, text: str) -> str:
    """An interface to bind: a host name or an IP address (IPv6 without brackets)."""
    _check_characters(variable, text)
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", text):
        raise SettingsError(f"{variable}={text!r} is not a host name or IP address to listen on", variable)
    return text


def _hosts(variable: str, text: str) -> tuple[str, ...]:
    """Host names (or IP addresses), comma-separated; each as a Host header carries it (IPv6 in brackets)."""
    names = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        _check_characters(variable, name)
        bare = name.removeprefix("[").removesuffix("]")
        if not re.fullmatch(r"[a-z0-9.:-]{1,253}", bare):
            raise SettingsError(f"{variable}: {name!r} is not a host name or IP address", variable)
        names.append(f"[{bare}]" if ":" in bare else bare)
    return tuple(names)


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


def _symbols(variable: str, text: str) -> tuple[str, ...]:
    return parse_symbols(text)


def _text(variable: str, text: str) -> str:
    return text


def _flag(variable: str, text: str) -> bool:
    if text not in ("true", "false"):
        raise SettingsError(f"{variable}={text!r} is not true or false", variable)
    return text == "true"


def _show_flag(value: bool) -> str:
    return "true" if value else "false"


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


def _endpoint(env: Mapping[str, str]) -> str | None:
    return env.get("AWS_ENDPOINT_URL") or None


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region the installed botocore knows (stockpipe.aws.regions, offline). Empty where boto3
    cannot be imported (scripts/compose.py reads these settings with the standard library alone):
    then no region is refused for being unknown."""
    try:
        from stockpipe.aws.regions import known_regions as bundled
    except ImportError:
        return frozenset()
    return bundled()


def check_windows(short: int, long: int) -> None:
    if short >= long:
        raise SettingsError(f"SMA_SHORT={short} must be smaller than SMA_LONG={long}", "SMA_SHORT", "SMA_LONG")


# -- the settings, each declared once ----------------------------------------------------------

INIT, CLI, PRODUCER, PROCESS, TRENDS = Reader.INIT, Reader.CLI, Reader.PRODUCER, Reader.PROCESS, Reader.TRENDS
DASHBOARD, ENGINE, BOTO3 = Reader.DASHBOARD, Reader.ENGINE, Reader.BOTO3
# Everything that calls AWS (the functions get these two from Lambda and the engine, not from init).
EVERYONE = (BOTO3, INIT, CLI, PRODUCER, DASHBOARD, PROCESS, TRENDS)


@dataclass(frozen=True)
class Settings:
    """Every setting, in the order .env.example lists them. Defaults are the seeds' names. The raw
    bucket has none: it is derived per account and region (see raw_bucket_for) so that it is unique
    on real AWS too."""

    endpoint_url: str | None = setting_from_env(
        "AWS_ENDPOINT_URL", "", _endpoint,
        "Set: an emulator (MiniStack or LocalStack) at this URL. Unset or empty: real AWS, with your usual "
        "credentials (profile, SSO, environment). Nothing else switches between the two. `stockpipe demo` and "
        "the tests start their own engine and ignore this.", *EVERYONE, section=Section.AWS,
        example=f"http://localhost:{DEFAULT_ENGINE_PORT}")
    region: str = setting_from_env(
        "AWS_REGION", DEFAULT_REGION, _region,
        "The region of every resource (on an emulator any well-formed name works).", *EVERYONE)

    stack_name: str = setting(
        "STACK_NAME", "stockpipe", STACK,
        "Every resource init creates is tagged stockpipe:stack=<STACK_NAME>. Init refuses to take over a "
        "resource of the same name that is not tagged so (unless it is empty); teardown deletes only what "
        "carries the tag, and in the bucket only our prefixes. Two stacks in one account: two names.",
        INIT, CLI, section=Section.RESOURCES)
    ingest: str = setting(
        "INGEST", "kinesis", one_of(INGESTS, str.lower),
        "How ticks come in: kinesis (a stream; each symbol's ticks in order) or sqs (seed 004's variant, for "
        "accounts without Kinesis: a standard queue whose batches run side by side, in any order; "
        "docs/sqs.md). init makes the stream or the queue (and its locks table), never both; to switch, "
        "`stockpipe init --teardown` with the old value first, or its stream or queue stays.",
        INIT, CLI, PRODUCER, DASHBOARD)
    stream_name: str = setting(
        "STREAM_NAME", "stock-market-stream", STREAM,
        "The Kinesis stream the producer writes and process-ticks reads (INGEST=kinesis).",
        INIT, CLI, PRODUCER, DASHBOARD)
    stream_mode: str = setting(
        "STREAM_MODE", "ON_DEMAND", one_of(("ON_DEMAND", "PROVISIONED"), str.upper),
        "ON_DEMAND (the seeds' choice: no capacity to manage, billed per stream-hour and per GB) or "
        "PROVISIONED with STREAM_SHARDS shards (one shard takes 1,000 records/s and costs less at a trickle).",
        INIT)
    stream_shards: int = setting(
        "STREAM_SHARDS", "1", whole(1, 500),
        "Shards of a PROVISIONED stream (1-500); ON_DEMAND ignores it.", INIT)
    table_name: str = setting(
        "TABLE_NAME", "stock-market-data", TABLE,
        "Tick table: partition key symbol, sort key timestamp (both strings), stream NEW_IMAGE.",
        INIT, CLI, DASHBOARD, PROCESS, TRENDS)
    alerts_ledger_table: str = setting(
        "ALERTS_LEDGER_TABLE", "stock-market-alerts-sent", TABLE,
        "One item per alert published: how a redelivered stream batch publishes nothing twice.",
        INIT, CLI, DASHBOARD, TRENDS)
    heads_table: str = setting(
        "HEADS_TABLE", "stock-market-heads", TABLE,
        "One item per symbol: the newest stored tick and the prices before it, so process-ticks enriches a "
        "batch without querying the tick table (a query grows with the table on MiniStack).",
        INIT, CLI, DASHBOARD, PROCESS)
    ingest_queue_name: str = setting(
        "INGEST_QUEUE_NAME", "stock-market-queue", QUEUE,
        "INGEST=sqs: the queue the producer sends to (seed 004's StockQueue). A message that failed "
        "QUEUE_MAX_RECEIVES times goes to DLQ_NAME as it was sent (the queue's redrive policy).",
        INIT, CLI, PRODUCER)
    locks_table: str = setting(
        "LOCKS_TABLE", "stock-market-locks", TABLE,
        "INGEST=sqs: one item per symbol while a batch stores that symbol's ticks, so that the queue's "
        "batches, which run side by side, store a symbol's ticks one batch at a time (as a shard does).",
        INIT, PROCESS)
    raw_bucket: str = setting(
        "RAW_BUCKET", "", BUCKET,
        "Raw tick archive. Empty: stockpipe-raw-<account id>-<region>, unique on real AWS too.",
        INIT, CLI, DASHBOARD, PROCESS, TRENDS)
    raw_prefix: str = setting(
        "RAW_PREFIX", "raw-data", PREFIX,
        "Raw objects go under <RAW_PREFIX>/dt=YYYY-MM-DD/symbol=XXX/ (Athena partitions).",
        INIT, CLI, DASHBOARD, PROCESS)
    athena_database: str = setting(
        "ATHENA_DATABASE", "stock_data", GLUE,
        "Glue database and table over the raw archive, for Athena (`stockpipe query`): the seeds' names. "
        "Engines without Glue/Athena (LocalStack community) skip them; nothing else depends on them.",
        INIT, CLI, PROCESS)
    athena_table: str = setting(
        "ATHENA_TABLE", "stock_data_table", GLUE,
        "The Glue table's name, inside ATHENA_DATABASE.", INIT, CLI, PROCESS)
    athena_workgroup: str = setting(
        "ATHENA_WORKGROUP", "primary", WORKGROUP,
        "The Athena workgroup queries run in.", CLI)
    query_cache_dir: str = setting(
        "QUERY_CACHE_DIR", "", _text,
        "Where `stockpipe query` and `stockpipe backtest`, answering with DuckDB in this process (engines "
        "without Athena), keep a copy of each raw object they read, so that the next run reads only the "
        "objects new since (a parameter sweep reads the archive once). Raw objects are written once and "
        "never changed; a copy is named by its key and ETag and used only at the listed size. Empty: no "
        "copies kept. Nothing removes old copies: delete the folder to reclaim the space.", CLI)
    metrics_namespace: str = setting(
        "METRICS_NAMESPACE", "stockpipe", NAMESPACE,
        "CloudWatch namespace of the functions' per-batch metrics (received, stored, duplicates, "
        "quarantined, alerts, batch time, lag), written as one embedded-metric-format log line per batch: "
        "no API call.", PROCESS, TRENDS)
    dlq_name: str = setting(
        "DLQ_NAME", "stock-market-dlq", QUEUE,
        "Records that could not be stored, with the reason and the original payload.",
        INIT, CLI, DASHBOARD)
    onfailure_queue_name: str = setting(
        "ONFAILURE_QUEUE_NAME", "stock-market-onfailure", QUEUE,
        "Where AWS (and LocalStack) put the position of a stream batch they gave up on, after the retries "
        "below; `stockpipe replay-failed` reads the records back from the stream and processes them again.",
        INIT, CLI, DASHBOARD)
    topic_name: str = setting(
        "TOPIC_NAME", "Stock_Trend_Alerts", TOPIC,
        "The SNS topic trend-alerts publishes every alert to.", INIT, CLI)
    alerts_queue_name: str = setting(
        "ALERTS_QUEUE_NAME", "stock-market-alerts-inbox", QUEUE,
        "SQS queues subscribed to the topic, one per reader, so that no reader takes an alert away from "
        "another (a message read from a queue is gone from it): `stockpipe alerts` reads ALERTS_QUEUE_NAME, "
        "`stockpipe dashboard` DASHBOARD_QUEUE_NAME (run one dashboard per queue), and the terminal view of "
        "`stockpipe demo` DEMO_QUEUE_NAME. A queue nobody reads keeps its alerts 14 days.",
        INIT, CLI, inbox=("inbox", "stockpipe alerts"))
    compose_alerts_queue_name: str = setting(
        "COMPOSE_ALERTS_QUEUE_NAME", "stock-market-alerts-compose", QUEUE,
        "The compose project's alerts container (`stockpipe alerts --inbox compose`): a queue of its own, so "
        "that it and `stockpipe alerts` on this machine each print every alert while both run.",
        INIT, CLI, inbox=("compose-inbox", "the alerts container of docker compose"))
    dashboard_queue_name: str = setting(
        "DASHBOARD_QUEUE_NAME", "stock-market-alerts-dashboard", QUEUE,
        "The dashboard's queue (`stockpipe dashboard`; one dashboard per queue).",
        INIT, DASHBOARD, inbox=("dashboard-inbox", "stockpipe dashboard"))
    demo_queue_name: str = setting(
        "DEMO_QUEUE_NAME", "stock-market-alerts-demo", QUEUE,
        "The queue of the terminal view of `stockpipe demo`.",
        INIT, CLI, inbox=("demo-inbox", "the terminal view of stockpipe demo"))
    alert_email: str = setting(
        "ALERT_EMAIL", "", _email,
        "Also send alerts to this e-mail address (AWS asks the address to confirm first).", INIT, CLI)
    ops_topic_name: str = setting(
        "OPS_TOPIC_NAME", "stock-market-ops", TOPIC,
        "The SNS topic the pipeline's CloudWatch alarms notify (dead letters, batches given up on, ticks "
        "waiting, function errors and throttles; docs/real-aws.md, \"Alarms and the dashboard\").", INIT, CLI)
    ops_email: str = setting(
        "OPS_EMAIL", "", _email,
        "Also send the alarms to this e-mail address (AWS asks the address to confirm first).", INIT, CLI)
    cloudwatch_dashboard_name: str = setting(
        "CLOUDWATCH_DASHBOARD_NAME", "stock-market-pipeline", DASHBOARD_NAME,
        "The CloudWatch dashboard init makes: the functions' metrics, the queues and triggers the alarms "
        "watch, and the alarms' states.", INIT, CLI)
    process_function_name: str = setting(
        "PROCESS_FUNCTION_NAME", "process-ticks", FUNCTION,
        f"Function names: at most {FUNCTION_NAME_MAX} characters, as each role is <name>{ROLE_SUFFIX} and IAM "
        f"allows {IAM_ROLE_NAME_MAX}.", INIT, CLI)
    trends_function_name: str = setting(
        "TRENDS_FUNCTION_NAME", "trend-alerts", FUNCTION,
        "Lambda #2, triggered by the tick table's stream; publishes the alerts.", INIT, CLI)
    lambda_runtime: str = setting(
        "LAMBDA_RUNTIME", "python3.12", RUNTIME,
        f"{runtime_name(MIN_LAMBDA_PYTHON)} or newer: the functions' code uses 3.11 features.", INIT)
    lambda_memory_mb: int = setting(
        "LAMBDA_MEMORY_MB", "1024", whole(128, 10240),
        "Memory of each function (128-10240 MB). Lambda gives CPU in proportion (1769 MB = one vCPU): at "
        "1024 MB a 1000-tick batch takes about 0.6 s, so one invocation keeps up with a full shard "
        "(docs/real-aws.md, \"On AWS, on paper\"); the emulators ignore it.", INIT)
    log_retention_days: int = setting(
        "LOG_RETENTION_DAYS", "7", _retention,
        "Days the functions' CloudWatch logs are kept (the seeds' 7, to keep the bill small).", INIT)
    tick_ttl_days: int | None = setting(
        "TICK_TTL_DAYS", "", optional_days(1, 36500),
        "Days a tick stays in TABLE_NAME after its own timestamp (1-36500). Empty: for ever. Set: init enables "
        "DynamoDB's TTL on the tick table and the alert ledger (attribute expires_at, epoch seconds), every item "
        "carries its expiry (a ledger item that of its alert's tick), and DynamoDB deletes it some time after "
        "(AWS: within days; MiniStack: within a minute); HEADS_TABLE, one item per symbol, never expires. The "
        "functions ignore a tick from one minute before its expiry, whether it is deleted yet or not, so "
        "alerts never depend on the reaper's timing: crossovers are judged on the ticks of the last "
        "TICK_TTL_DAYS, exactly as without a TTL while a symbol's SMA window fits in that time. A symbol "
        "silent for longer starts afresh (its first SMA_LONG ticks judge no crossover); a tick already that "
        "old when it comes (a backfill, an old archive replayed) is archived to S3 but not stored or judged. "
        "The raw archive keeps everything (RAW_GLACIER_DAYS, RAW_EXPIRE_DAYS).", INIT, PROCESS, TRENDS)
    raw_glacier_days: int | None = setting(
        "RAW_GLACIER_DAYS", "90", optional_days(1, 36500, off="0"),
        "Days after which raw objects (under RAW_PREFIX only) move to S3 Glacier Flexible Retrieval (the "
        "seeds' 90; Athena cannot read them there until restored; S3 skips objects under 128 KB by default, "
        "and most raw objects are smaller: docs/real-aws.md). 0: they stay in S3 Standard. Init sets it "
        "as a lifecycle rule of the raw bucket, beside one that deletes Athena's results "
        f"after {ATHENA_RESULTS_EXPIRE_DAYS} days (a query run again makes them again); the quarantine is kept "
        "(the only copy of records that could not be stored).", INIT)
    raw_expire_days: int | None = setting(
        "RAW_EXPIRE_DAYS", "", optional_days(1, 36500),
        "Days after which raw objects (under RAW_PREFIX only) are deleted; greater than RAW_GLACIER_DAYS "
        "(Glacier bills at least 90 days an object). Empty: kept for ever.", INIT)

    kinesis_batch_size: int = setting(
        "KINESIS_BATCH_SIZE", "1000", whole(1, 10000),
        "Records per Lambda invocation at most (Kinesis -> process-ticks, DynamoDB stream -> trend-alerts); a "
        "trickle makes smaller batches. 1000: 1.8x the rate of 100 on the embedded engine; 10000 is faster "
        "still there (docs/performance.md), but a table-stream batch that large nears Lambda's 6 MB payload "
        "on AWS.", INIT, section=Section.PROCESSING)
    streams_batch_size: int = setting(
        "STREAMS_BATCH_SIZE", "1000", whole(1, 10000),
        "Records per trend-alerts invocation at most (the table's stream; 1-10000).", INIT)
    # Lambda takes up to 10 messages a batch without a batching window (MiniStack: 10 at most).
    queue_batch_size: int = setting(
        "QUEUE_BATCH_SIZE", "10", whole(1, 10),
        "INGEST=sqs: messages per process-ticks batch (1-10, seed 004's 10; MiniStack takes 10 at most), and "
        "receives of one message before the queue gives up on it (1-1000). A message that failed comes back "
        "after 1, 2, 4 ... 60 s; other messages of its batch are not delivered again.", INIT)
    queue_max_receives: int = setting(
        "QUEUE_MAX_RECEIVES", "10", whole(1, 1000),
        "INGEST=sqs: receives of one message before the queue moves it to DLQ_NAME (1-1000).", INIT)
    kinesis_batch_window_seconds: int = setting(
        "KINESIS_BATCH_WINDOW_SECONDS", "1", whole(0, 300),
        "Seconds the process-ticks trigger (Kinesis, or the queue with INGEST=sqs) may wait to fill a batch "
        "(0-300). Raw ticks are archived one S3 object per batch and partition, so on AWS 1 s turns ~10 PUTs "
        "a second into ~1 at 10 ticks/s, for at most 1 s more latency. AWS and LocalStack honour it; "
        "MiniStack ignores it (it batches what is there).", INIT)
    parallelization_factor: int = setting(
        "PARALLELIZATION_FACTOR", "1", whole(1, 10),
        "Batches of one shard processed at once by both triggers (1-10); records of one symbol stay in order. "
        "Raise it on AWS when a shard's batches take longer than the shard fills (docs/real-aws.md, \"On AWS, "
        "on paper\").", INIT)
    stream_max_retry_attempts: int = setting(
        "STREAM_MAX_RETRY_ATTEMPTS", "5", whole(0, 10000),
        "Both stream triggers, on AWS and LocalStack: a batch that fails is retried this many times "
        "(0-10000), split in halves to isolate what fails, and not retried once its records are older than "
        "this many seconds (-1 = until they expire, else 60-604800); then its position goes to "
        "ONFAILURE_QUEUE_NAME. MiniStack ignores these three and retries a failing batch until it succeeds.",
        INIT)
    stream_max_record_age_seconds: int = setting(
        "STREAM_MAX_RECORD_AGE_SECONDS", "3600", _record_age,
        "Both stream triggers: records older than this are not retried (-1 = until they expire).", INIT)
    alarm_lag_seconds: int = setting(
        "ALARM_LAG_SECONDS", "300", whole(1, 86400),
        "Alarm when ticks wait longer than this to be processed: the Kinesis trigger's iterator age "
        "(INGEST=kinesis), the ingest queue's oldest message (INGEST=sqs).", INIT)
    anomaly_threshold_percent: Decimal = setting(
        "ANOMALY_THRESHOLD_PERCENT", "5", number(Decimal(0), Decimal(1000)),
        "A tick is an anomaly when |change % against previous close| is above this.", CLI, PROCESS)
    alert_threshold: Thresholds = setting(
        "ALERT_THRESHOLD", "", _thresholds,
        "Seed 004's price alert: a THRESHOLD alert when a symbol's price crosses to at or above this (the "
        "tick before it below; once per crossing, not on every tick above). One price for every symbol "
        "(1200), SYMBOL:PRICE pairs (AAPL:200,MSFT:450), or both (1200,AAPL:200). Empty: off. `stockpipe "
        "demo` sets one its synthetic market crosses when this is empty.", CLI, TRENDS)
    moving_average_window: int = setting(
        "MOVING_AVERAGE_WINDOW", "5", whole(1, 1000),
        "Ticks in the moving average stored with each tick.", PROCESS)
    sma_short: int = setting(
        "SMA_SHORT", "5", whole(1, 1000),
        "Crossover windows: SMA_SHORT crossing above SMA_LONG is BUY, below is SELL.", DASHBOARD, TRENDS)
    sma_long: int = setting(
        "SMA_LONG", "20", whole(2, 1000),
        "The long window, in ticks (larger than SMA_SHORT).", DASHBOARD, TRENDS)

    producer_symbols: tuple[str, ...] = setting(
        "PRODUCER_SYMBOLS", "AAPL,MSFT,AMZN", _symbols,
        "The symbols the producer streams, comma-separated.", PRODUCER, section=Section.PRODUCER)
    producer_rate: float = setting(
        "PRODUCER_RATE", "10", rate(Decimal("0.01"), Decimal(100000)),
        "Synthetic ticks per second.", PRODUCER)
    producer_interval: float = setting(
        "PRODUCER_INTERVAL", "30", rate(Decimal(1), Decimal(86400)),
        "Seconds between Yahoo Finance polls (--source yfinance).", PRODUCER)
    producer_seed: int = setting(
        "PRODUCER_SEED", "42", whole(0, 2**31 - 1),
        "Seed of the synthetic market: the same seed gives the same ticks and the same alerts.", PRODUCER)

    engine_port: int = setting(
        "ENGINE_PORT", str(DEFAULT_ENGINE_PORT), whole(1, 65535),
        "Port of `stockpipe emulator` (and of `stockpipe demo`, which picks a free one if it is taken).",
        ENGINE, section=Section.ENGINE)
    engine_data_dir: str = setting(
        "ENGINE_DATA_DIR", ".stockpipe/engine", _text,
        "Where `stockpipe emulator` keeps the engine's state across a graceful stop (Ctrl-C, SIGTERM); "
        "`stockpipe emulator --fresh` starts empty. A hard kill loses what came since the last graceful stop "
        "(MiniStack saves only when it stops), but the raw objects, which it writes to disk at once: "
        "`stockpipe produce --source archive` puts them through again and restores the items and alerts. "
        "The demo and the tests start engines of their own, in memory.", ENGINE)

    dashboard_host: str = setting(
        "DASHBOARD_HOST", "127.0.0.1", _host,
        "The page and its API have no login: they listen on loopback unless told otherwise (the compose "
        "service listens on all interfaces inside its container, published on 127.0.0.1 only).",
        DASHBOARD, section=Section.DASHBOARD)
    dashboard_port: int = setting(
        "DASHBOARD_PORT", "8000", whole(1, 65535),
        "`stockpipe demo` picks a free port if this one is taken, and prints the address. The compose "
        "dashboard listens on it too, inside its container and on 127.0.0.1.", DASHBOARD)
    dashboard_allowed_hosts: tuple[str, ...] = setting(
        "DASHBOARD_ALLOWED_HOSTS", "", _hosts,
        "The dashboard answers only requests addressed to it: 127.0.0.1, localhost or [::1] with its port, "
        "and the address it listens on. Other names it should answer to (a machine name for a class to use), "
        "comma-separated; a web page elsewhere cannot then reach it through a name of its own (DNS "
        "rebinding).", DASHBOARD)
    reader_state_dir: str = setting(
        "READER_STATE_DIR", ".stockpipe/readers", _text,
        "Where `stockpipe alerts` and the dashboard remember, per reader queue, the alerts they showed and "
        "since when: a small JSON file each. With it a reader fills from the ledger (ALERTS_LEDGER_TABLE) "
        "the alerts its queue missed (deleted while they were published, a delivery dropped) or that came "
        "while it was stopped, each once, marked as recovered (docs/reliability.md, \"Every alert to every "
        "reader once\"). Relative to the working folder.", CLI, DASHBOARD)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, sources: Sources | None = None) -> Settings:
        """Read and check every setting (default: from the process's environment). `sources`
        ({variable: ".env line 14"}, from stockpipe.dotenv) makes an error say where the wrong value
        was set: "... (set in .env line 14)"."""
        try:
            return cls._from_env(environment() if env is None else env)
        except SettingsError as error:
            raise error.located(sources) from None

    @classmethod
    def _from_env(cls, env: Mapping[str, str]) -> Settings:
        settings = cls(**{item.name: declared(item).read(env) for item in fields(cls)})
        readers = [(variable, settings.queue_of(variable)) for _, variable, _ in READER_QUEUES]
        for index, (variable, name) in enumerate(readers):
            shared = next((other for other, taken in readers[:index] if taken == name), None)
            if shared:
                raise SettingsError(f"{variable}={name!r} is also {shared}: each reader of the alerts needs a queue of "
                                    "its own (a message read from a queue is gone for the others)", shared, variable)
        check_windows(settings.sma_short, settings.sma_long)
        check_raw_lifecycle(settings.raw_glacier_days, settings.raw_expire_days)
        return settings

    def queue_of(self, variable: str) -> str:
        """The queue name a reader's variable holds (READER_QUEUES): ALERTS_QUEUE_NAME -> alerts_queue_name."""
        name: str = getattr(self, _ATTRIBUTES[variable])
        return name

    @staticmethod
    def role_name(function_name: str) -> str:
        """The IAM role init creates for a function (see role_name)."""
        return role_name(function_name)

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
        """What init writes in the functions' environment: FunctionEnvironment.of(...).environ()."""
        return FunctionEnvironment.of(self, raw_bucket=raw_bucket, dlq_url=dlq_url, topic_arn=topic_arn,
                                      partial_batch_response=partial_batch_response,
                                      ingest_queue_url=ingest_queue_url).environ()


def _sections(variables: list[Variable]) -> tuple[Variable, ...]:
    """Each variable with its section: the one declared, else the one before it."""
    placed, current = [], None
    for variable in variables:
        current = variable.section or current
        placed.append(replace(variable, section=current))
    return tuple(placed)


# Every setting's declaration, in order; what stockpipe reads and what .env.example documents.
SETTINGS: tuple[Variable, ...] = _sections([declared(item) for item in fields(Settings)])
_ATTRIBUTES = {declared(item).name: item.name for item in fields(Settings)}
# The pipeline's own settings and their defaults as text (AWS_REGION and AWS_ENDPOINT_URL are boto3's).
DEFAULTS: dict[str, str] = {v.name: v.default for v in SETTINGS if BOTO3 not in v.readers}
# The alerts' readers, each with a queue of its own subscribed to the topic: (key, variable, who reads it).
READER_QUEUES: tuple[tuple[str, str, str], ...] = tuple((v.inbox[0], v.name, v.inbox[1]) for v in SETTINGS if v.inbox)
# Every variable that names a resource (stockpipe doctor looks at each for stray characters).
NAME_VARIABLES: tuple[str, ...] = tuple(v.name for v in SETTINGS if isinstance(v.parse, Name))

# What .env.example documents besides the settings: read by others, never parsed here.
OTHER_VARIABLES: tuple[Variable, ...] = (
    Variable("AWS_ACCESS_KEY_ID", "", "Emulators accept any key; leave these out for real AWS and use a profile "
             "instead. With AWS_ENDPOINT_URL unset and AWS_PROFILE set, these two lines are not used (the CLI "
             "says so).", (BOTO3,), section=Section.AWS, example="test"),
    Variable("AWS_SECRET_ACCESS_KEY", "", "Its secret (an emulator takes any).", (BOTO3,), section=Section.AWS,
             example="test"),
    Variable("ENGINE_LOG_LEVEL", "WARNING", "MiniStack's own log level (its log goes to a file the CLI names).",
             (ENGINE,), section=Section.ENGINE),
    Variable("ENGINE", "localstack",
             "Which AWS engine: localstack or ministack.\n"
             "  localstack  LOCALSTACK_IMAGE below. Runs each Lambda in a container of its own, so it mounts\n"
             "              the Docker socket. 4.14.0 needs no account but gets no more security fixes.\n"
             "  ministack   built from PYTHON_IMAGE; no Docker socket, healthy in about a second.",
             (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("LOCALSTACK_IMAGE", "localstack/localstack:4.14.0",
             "LocalStack images after 4.14.0 (March 2026) exit without LOCALSTACK_AUTH_TOKEN.",
             (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("LOCALSTACK_AUTH_TOKEN", "",
             "Your token from app.localstack.cloud, for a newer image; handed to the engine only. Keep .env out "
             "of git (it is in .gitignore and .dockerignore).", (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("DOCKER_SOCKET", "/var/run/docker.sock",
             "The Docker socket mounted into LocalStack, which starts each Lambda in a container of its own and "
             "runs it in public.ecr.aws/lambda/python:<LAMBDA_RUNTIME's version>, pulled by `make up` first. "
             "Rootless Docker: $XDG_RUNTIME_DIR/docker.sock (`docker context inspect` shows it). `make up` "
             "checks it.", (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("LOCALSTACK_DEBUG", "0",
             "1: LocalStack logs at debug level (each Lambda container, pull and package install). Noisy.",
             (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("LOCALSTACK_VOLUME", "stockpipe-localstack-cache",
             "Named volume on LocalStack's /var/lib/localstack, where 4.14.0 installs kinesis-mock from npm at "
             "first use. Compose creates it at the first `up`; `docker compose down` (and `make down`) keeps "
             "it, so an offline machine still has kinesis-mock; `docker compose down -v` removes it. Give "
             "another project that runs LocalStack at the same time a volume of its own.",
             (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("PYTHON_IMAGE", "python:3.11-slim-bookworm",
             "Base of our images (stockpipe, MiniStack): any Debian Python 3.11+ image with venv. Where no "
             "registry can be reached: `docker pull python:3.11-slim-bookworm` and `docker save -o python.tar "
             "python:3.11-slim-bookworm` on a machine that can, then `docker load -i python.tar` here; or set "
             "this to a Debian Python 3.11+ image this machine already has (`docker image ls` lists them).",
             (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("PRODUCER_SOURCE", "synthetic",
             "What the producer container streams: synthetic, or yfinance (live quotes; its image then also "
             "installs yfinance, so `make up` rebuilds it).", (Reader.COMPOSE,), section=Section.COMPOSE),
    Variable("COMPOSE_PROJECT_NAME", "stockpipe",
             "Names the containers and the network (stockpipe-engine-1 ...); another name, another project.",
             (Reader.COMPOSE,), section=Section.COMPOSE),
)
# Every variable .env.example documents, by name.
VARIABLES: dict[str, Variable] = {v.name: v for v in (*SETTINGS, *OTHER_VARIABLES)}


# -- the functions' environment: what init writes, and each handler parses once ----------------

_HOW = "stockpipe.how"
_WRITTEN, _GIVEN = "written by init", "given by Lambda or the engine"
_REQUIRED: Any = object()  # a variable init always writes: missing, the function fails at start


def _from_settings(attribute: str, *, absent: Any = _REQUIRED) -> Any:
    """A field of FunctionEnvironment that is a setting, declared there. ``absent``: its value when init
    leaves the variable out (then only written when it differs); none: the variable is required."""
    variable = declared(Settings.__dataclass_fields__[attribute])
    if absent is _REQUIRED:
        return field(metadata={_VARIABLE: variable, _HOW: _WRITTEN})
    return field(default=absent, metadata={_VARIABLE: variable, _HOW: _WRITTEN})


def _given(attribute: str) -> Any:
    """A setting the function reads as Lambda (AWS_REGION) or the engine (AWS_ENDPOINT_URL) set it."""
    return field(metadata={_VARIABLE: declared(Settings.__dataclass_fields__[attribute]), _HOW: _GIVEN})


def _resolved(name: str, parse: Callable[[str, str], Any], meaning: str, *readers: Reader,
              show: Callable[[Any], str] = str, absent: Any = _REQUIRED, given: bool = False) -> Any:
    """A variable only the functions have: init resolves it (a URL, an ARN), or Lambda gives it."""
    variable = Variable(name, "", meaning, readers, parse, show=show)
    metadata = {_VARIABLE: variable, _HOW: _GIVEN if given else _WRITTEN}
    return field(metadata=metadata) if absent is _REQUIRED else field(default=absent, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class FunctionEnvironment:
    """What a function's process environment holds, typed: init writes it (``of(...).environ()``) and
    each handler parses it once at its cold start (``FunctionEnvironment.parse(environment())``). The
    settings among it are declared in Settings; a variable init writes that is missing or wrong fails
    the function at start, in one line naming the variable. Both functions get the same variables."""

    # Given by Lambda and the engine, never written by init.
    function_name: str = _resolved(
        "AWS_LAMBDA_FUNCTION_NAME", _text, "The function's name (Lambda sets it; empty outside Lambda).",
        *FUNCTIONS, given=True)
    region: str = _given("region")
    endpoint_url: str | None = _given("endpoint_url")
    # Settings, as init read them.
    table_name: str = _from_settings("table_name")
    alerts_ledger_table: str = _from_settings("alerts_ledger_table")
    heads_table: str = _from_settings("heads_table")
    raw_bucket: str = _from_settings("raw_bucket")  # resolved: never empty here
    raw_prefix: str = _from_settings("raw_prefix")
    athena_database: str = _from_settings("athena_database")
    athena_table: str = _from_settings("athena_table")
    metrics_namespace: str = _from_settings("metrics_namespace")
    anomaly_threshold_percent: Decimal = _from_settings("anomaly_threshold_percent")
    moving_average_window: int = _from_settings("moving_average_window")
    sma_short: int = _from_settings("sma_short")
    sma_long: int = _from_settings("sma_long")
    alert_threshold: Thresholds = _from_settings("alert_threshold", absent=Thresholds())  # written when set
    locks_table: str | None = _from_settings("locks_table", absent=None)  # INGEST=sqs only
    tick_ttl_days: int | None = _from_settings("tick_ttl_days", absent=None)  # written when set
    # Resolved by init from the names above and the engine it finds.
    dlq_url: str = _resolved("DLQ_URL", _text, "The dead-letter queue's URL (DLQ_NAME).", *FUNCTIONS)
    topic_arn: str = _resolved("TOPIC_ARN", _text, "The alerts topic's ARN (TOPIC_NAME).", TRENDS)
    partial_batch_response: bool = _resolved(
        "PARTIAL_BATCH_RESPONSE", _flag, "true where the engine honours a stream trigger's "
        "ReportBatchItemFailures (AWS, LocalStack): a handler then reports where a failed batch must resume "
        "instead of raising.", *FUNCTIONS, show=_show_flag)
    ingest_queue_url: str | None = _resolved(
        "INGEST_QUEUE_URL", _text, "INGEST=sqs: the queue that triggers process-ticks (it delays the retry "
        "of a message that failed).", PROCESS, absent=None)

    @classmethod
    def of(cls, settings: Settings, *, raw_bucket: str, dlq_url: str, topic_arn: str, partial_batch_response: bool,
           ingest_queue_url: str | None = None, function_name: str = "") -> FunctionEnvironment:
        """What init writes for a function; ``function_name``: the name Lambda gives it, for the value to
        equal what the function parses. INGEST=sqs adds the locks table and the ingest queue's URL."""
        queued = settings.ingest == "sqs"
        taken = {item.name: getattr(settings, item.name) for item in fields(cls)
                 if item.name in Settings.__dataclass_fields__}
        return cls(**{**taken, "function_name": function_name, "raw_bucket": raw_bucket, "dlq_url": dlq_url,
                      "topic_arn": topic_arn, "partial_batch_response": partial_batch_response,
                      "locks_table": settings.locks_table if queued else None,
                      "ingest_queue_url": (ingest_queue_url or "(created by init)") if queued else None})

    @classmethod
    def parse(cls, environ: Mapping[str, str]) -> FunctionEnvironment:
        """The function's environment, checked as Settings checks each value; the variables init writes
        and that are missing are named together."""
        specs = [(item, declared(item), item.metadata[_HOW]) for item in fields(cls)]
        missing = [v.name for item, v, how in specs if how == _WRITTEN and item.default is MISSING
                   and not environ.get(v.name)]
        if missing:
            raise SettingsError(f"missing environment variable(s): {', '.join(missing)}", *missing)
        values: dict[str, Any] = {}
        for item, variable, how in specs:
            if how == _GIVEN:
                values[item.name] = variable.read(environ)
            elif environ.get(variable.name):
                assert variable.parse is not None
                values[item.name] = variable.parse(variable.name, environ[variable.name])
            else:
                values[item.name] = item.default
        parsed = cls(**values)
        check_windows(parsed.sma_short, parsed.sma_long)
        return parsed

    def environ(self) -> dict[str, str]:
        """The variables init writes: all but those Lambda and the engine give, and an optional one
        only when it is set."""
        written = {}
        for item in fields(self):
            variable, value = declared(item), getattr(self, item.name)
            if item.metadata[_HOW] == _GIVEN or (item.default is not MISSING and value == item.default):
                continue
            written[variable.name] = variable.show(value)
        return written

    @property
    def settings(self) -> Settings:
        """These values as Settings, the others at their defaults (what AwsContext takes)."""
        return Settings(**{item.name: getattr(self, item.name) for item in fields(self)
                           if item.name in Settings.__dataclass_fields__ and getattr(self, item.name) is not None})

    @property
    def raw_location(self) -> str:
        """Where process-ticks archives raw ticks (the Athena table's folder)."""
        return self.settings.raw_location(self.raw_bucket)


# Every variable of the functions' environment, and those Lambda and the engine set (init writes the others).
FUNCTION_VARIABLES: tuple[Variable, ...] = tuple(declared(item) for item in fields(FunctionEnvironment))
FUNCTION_GIVEN: frozenset[str] = frozenset(declared(item).name for item in fields(FunctionEnvironment)
                                           if item.metadata[_HOW] == _GIVEN)


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
        "OPS_TOPIC_NAME": f"{prefix}-ops",
        "CLOUDWATCH_DASHBOARD_NAME": f"{prefix}-pipeline",
        "STACK_NAME": prefix,
    }


__all__ = ["DEFAULTS", "FUNCTION_GIVEN", "FUNCTION_NAME_MAX", "FUNCTION_VARIABLES", "IAM_ROLE_NAME_MAX", "MIN_LAMBDA_PYTHON",
           "NAME_VARIABLES", "OTHER_VARIABLES", "READER_QUEUES", "SETTINGS", "STACK_TAG_KEY", "VARIABLES",
           "FunctionEnvironment", "Reader", "Section", "Settings", "SettingsError", "Sources", "Variable",
           "describe_source", "environment", "known_regions", "parse_symbols", "region_from", "runtime_name",
           "unique_names"]
