"""Each lab's expected outcome, looked for in the running pipeline: one line per expectation, met (✓)
or not (✗, with the likeliest cause and what to do). Read-only: `stockpipe lab check` changes nothing
(lab 4's query and lab 6's backtest write their result files where every Athena query does, lab 2
browses the dead-letter queue the way `stockpipe dead-letters` does, leaving every message in it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from stockpipe import __version__
from stockpipe.aws.alerts import AlertPublisher
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.stream import count_stream_records
from stockpipe.lab.mistakes import MISTAKES, STATE, configuration_of, environment_of, function_of, planted
from stockpipe.provision import Stack
from stockpipe.provision.functions import Function
from stockpipe.provision.model import Action, Step
from stockpipe.provision.storage import GlueTable
from stockpipe.settings import DEFAULTS, environment
from stockpipe.status import Adapters

# The settings lab 3 asks the learner to change (the crossover windows and the anomaly threshold).
LAB3_SETTINGS = ("SMA_SHORT", "SMA_LONG", "ANOMALY_THRESHOLD_PERCENT")


@dataclass(frozen=True)
class Expectation:
    met: bool
    what: str  # what was found, or what is missing: one line
    hint: str = ""  # when not met: the likeliest cause and what to do

    @property
    def line(self) -> str:
        return f"✓ {self.what}" if self.met else f"✗ {self.what}: {self.hint}" if self.hint else f"✗ {self.what}"

    def as_dict(self) -> dict[str, Any]:
        return {"met": self.met, "what": self.what, "hint": self.hint, "line": self.line}


class Look:
    """What one check of a lab reads, each read at most once."""

    def __init__(self, aws: AwsContext, state: Path = STATE, environ: Mapping[str, str] | None = None) -> None:
        self.aws, self.state = aws, state
        self.environ = environment() if environ is None else environ  # what doctor reads (lab 5)
        self.stack = Stack(aws, report=lambda line: None)

    @cached_property
    def steps(self) -> list[Step]:
        return self.stack.plan()

    @cached_property
    def missing(self) -> list[Step]:
        return [step for step in self.steps if step.action is Action.CREATE]

    @cached_property
    def adapters(self) -> Adapters:
        return Adapters(self.aws)

    @cached_property
    def trends(self) -> dict[str, Any]:
        """trend-alerts as deployed (read once)."""
        return configuration_of(self.aws, function_of(self.stack, "trends"))


@dataclass(frozen=True)
class Lab:
    number: int
    title: str
    page: str
    goal: str
    expectations: Callable[[Look], list[Expectation]] = field(repr=False)


@dataclass(frozen=True)
class LabResult:
    lab: Lab
    expectations: list[Expectation]

    @property
    def passed(self) -> bool:
        return all(e.met for e in self.expectations)

    def text(self) -> str:
        verdict = "done" if self.passed else "not yet"
        met = sum(e.met for e in self.expectations)
        return "\n".join([*(e.line for e in self.expectations),
                          f"lab {self.lab.number} ({self.lab.title}): {verdict}, {met} of {len(self.expectations)} "
                          "expected outcomes there"])

    def as_dict(self) -> dict[str, Any]:
        return {"lab": self.lab.number, "title": self.lab.title, "page": self.lab.page, "passed": self.passed,
                "expectations": [e.as_dict() for e in self.expectations]}


# -- the expectations --------------------------------------------------------------------------------


def _deployed(look: Look) -> Expectation:
    stack = look.aws.settings.stack_name
    total = len(look.steps)
    if not look.missing:
        return Expectation(True, f"all {total} resources of stack {stack!r} exist at {look.aws.target_name}")
    first = look.missing[0].resource
    return Expectation(False, f"{len(look.missing)} of {total} resources of stack {stack!r} are missing (first: "
                       f"{first.kind} {first.name})", "make demo creates them (against an engine of your own: "
                       "stockpipe init); if the demo is running, this terminal may lack the line it printed "
                       "(export AWS_ENDPOINT_URL=...)")


def _deployed_first(expectations: Callable[[Look], list[Expectation]]) -> Callable[[Look], list[Expectation]]:
    """A lab's expectations after the one every lab but 0 and 7 starts with: the stack is there (when
    it is not, nothing else can be looked at)."""
    def checked(look: Look) -> list[Expectation]:
        deployed = _deployed(look)
        return [deployed] if look.missing else [deployed, *expectations(look)]
    return checked


def _lab0(look: Look) -> list[Expectation]:
    identity = look.aws.identity
    python = ".".join(map(str, sys.version_info[:3]))
    return [Expectation(True, f"stockpipe {__version__} on Python {python}"),
            Expectation(True, f"{look.aws.target_name} answers (account {identity.account_id}, region {look.aws.region})"),
            _deployed(look)]


def _lab1(look: Look) -> list[Expectation]:
    found: list[Expectation] = []
    settings = look.aws.settings
    if settings.ingest == "sqs":
        stored = look.adapters.table.count()
        found.append(Expectation(stored > 0, f"{stored} ticks came in through queue {settings.ingest_queue_name}",
                                 "is make demo still streaming? Or send some: stockpipe produce --count 50"))
    else:
        records = count_stream_records(look.aws, settings.stream_name)
        found.append(Expectation(records > 0, f"{records} ticks in stream {settings.stream_name}",
                                 "is make demo still streaming? Or send some: stockpipe produce --count 50"))
    return found


def _lab2(look: Look) -> list[Expectation]:
    found: list[Expectation] = []
    settings, adapters = look.aws.settings, look.adapters
    stored = adapters.table.count()
    found.append(Expectation(stored > 0, f"{stored} ticks stored in table {settings.table_name}",
                             "process-ticks has stored nothing yet: stockpipe doctor says why"))
    objects = len(adapters.archive.keys())
    found.append(Expectation(objects > 0, f"{objects} raw objects under s3://{look.aws.where.raw_bucket}/"
                             f"{settings.raw_prefix}/", "process-ticks has archived nothing yet: stockpipe doctor "
                             "says why"))
    letters = DeadLetterQueue(look.aws, look.aws.queue_url(settings.dlq_name)).browse(10)
    reasons = [str(letter.get("reason", "")) for letter in letters if letter.get("reason")]
    found.append(Expectation(bool(reasons), f"{len(letters)} bad tick(s) in the dead-letter queue {settings.dlq_name}"
                             + (f", the first because {reasons[0]!r}" if reasons else ""),
                             "send the poisoned tick of step 3 (stockpipe produce --source replay --file "
                             "poison.csv), then wait a few seconds"))
    return found


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def _lambda_time(text: str) -> datetime | None:
    """Lambda's LastModified (2026-12-07T03:12:39.400+0000) or an alert's tick time (...Z)."""
    for shape in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text.replace("Z", "+0000"), shape)
        except ValueError:
            continue
    return None


def _lab3(look: Look) -> list[Expectation]:
    found: list[Expectation] = []
    alerts = AlertPublisher(look.aws, look.aws.where.topic_arn, look.aws.settings.alerts_ledger_table)
    ids = alerts.published_ids()
    found.append(Expectation(bool(ids), f"{len(ids)} alerts published to topic {look.aws.settings.topic_name}",
                             "trend-alerts has published nothing yet: a crossover needs 20 ticks of a symbol; "
                             "stockpipe doctor says whether the flow stalls"))
    deployed = environment_of(look.trends)
    changed = [f"{name}={deployed.get(name)} (default {DEFAULTS[name]})" for name in LAB3_SETTINGS
               if _decimal(deployed.get(name)) != _decimal(DEFAULTS[name])]
    found.append(Expectation(bool(changed), f"trend-alerts runs {', '.join(changed)}" if changed else
                             f"trend-alerts runs the default {', '.join(LAB3_SETTINGS)}",
                             "step 2: export a new value (such as SMA_SHORT=3), then stockpipe init"))
    functions = [step for step in look.steps if isinstance(step.resource, Function)]
    differing = [step for step in functions if step.action is not Action.UNCHANGED]
    found.append(Expectation(not differing, "the functions run this terminal's settings and this build" if not
                             differing else f"{differing[0].resource.name} is not what this terminal's settings make "
                             f"({'; '.join(differing[0].changes)})",
                             "stockpipe init deploys them; or this terminal lacks the export line the demo printed"))
    since = _lambda_time(str(look.trends.get("LastModified", "")))
    after = [alert_id for alert_id in ids if since is not None and (at := _lambda_time(alert_id.split("#")[1]))
             is not None and at >= since]
    shown = since.strftime("%H:%M:%S") if since else "?"
    found.append(Expectation(bool(after), f"{len(after)} alert(s) on ticks after trend-alerts was deployed at {shown} "
                             "UTC", "none yet under the new setting: a crossover comes about once a wave at 10 ticks a "
                             "second; wait and check again (--wait 120)"))
    return found


def _lab4(look: Look) -> list[Expectation]:
    from stockpipe import query

    found: list[Expectation] = []
    settings = look.aws.settings
    catalog = next(step for step in look.steps if isinstance(step.resource, GlueTable))
    if catalog.action is Action.SKIP:
        found.append(Expectation(True, f"{look.aws.target_name} has no Glue: queries run on DuckDB in this process"))
    else:
        found.append(Expectation(True, f"the Glue table {settings.athena_database}.{settings.athena_table} is over "
                                 f"{settings.raw_location(look.aws.where.raw_bucket)}"))
    sql = f"SELECT count(*) AS ticks, count(DISTINCT symbol) AS symbols FROM {settings.athena_table}"
    try:
        result = query.run(look.aws, sql, note=lambda line: None)
        ticks, symbols = (int(value or 0) for value in result.rows[0][:2]) if result.rows else (0, 0)
        found.append(Expectation(ticks > 0, f"a query over the raw archive answers ({result.source}): {ticks} ticks of "
                                 f"{symbols} symbols", "the archive is empty: see lab 2"))
    except Exception as error:  # noqa: BLE001 - a check reports what failed, in one line
        found.append(Expectation(False, f"a query over the raw archive fails ({' '.join(str(error).split())[:160]})",
                                 "stockpipe doctor checks the query path"))
    return found


def _lab5(look: Look) -> list[Expectation]:
    from stockpipe.doctor import diagnose

    found: list[Expectation] = []
    record = planted(look.state)
    found.append(Expectation(record is not None, f"a mistake was planted at {record['planted_at']} (stockpipe lab "
                             "break)" if record else "no mistake planted here yet", "step 1: stockpipe lab break"))
    if record is not None:
        still = MISTAKES[str(record["mistake"])].present(look.aws, look.stack)
        found.append(Expectation(not still, "the planted mistake is gone" if not still else
                                 "the planted mistake is still there", "stockpipe doctor names it, and its fix"))
    diagnosis = diagnose(look.environ, look.aws.sources)
    problems = [f for f in diagnosis.findings if f.status.value == "problem"]
    found.append(Expectation(not problems, "stockpipe doctor finds nothing wrong" if not problems else
                             f"stockpipe doctor finds {len(problems)} problem(s)",
                             "run stockpipe doctor: each ✗ line names what is wrong and how to fix it"))
    return found


def _lab6(look: Look) -> list[Expectation]:
    """The backtest of the demo's symbols (PRODUCER_SYMBOLS) with this terminal's windows (SMA_SHORT,
    SMA_LONG: lab 3's), read from the archive as `stockpipe backtest` and the dashboard read it."""
    from stockpipe.backtesting import SelectionError, Window, read_archive
    from stockpipe.domain.backtest import BacktestError, backtest

    settings = look.aws.settings
    symbols, short, long = settings.producer_symbols, settings.sma_short, settings.sma_long
    named = ", ".join(symbols)
    try:
        archived = read_archive(look.aws, symbols, Window(), note=lambda line: None)
    except SelectionError as error:
        return [Expectation(False, f"the archive has no ticks of the demo's symbols to backtest ({error})",
                            "is make demo still streaming? stockpipe lab check 2 says whether ticks are archived")]
    except Exception as error:  # noqa: BLE001 - a check reports what failed, in one line
        return [Expectation(False, f"the archive could not be read ({' '.join(str(error).split())[:160]})",
                            "stockpipe doctor checks the query path")]
    counts = {symbol: len(series.prices) for symbol, series in archived.series.items()}
    found = [Expectation(True, f"the archive has {sum(counts.values()):,} ticks of {named} ("
                         + ", ".join(f"{symbol} {count:,}" for symbol, count in counts.items()) + ")")]
    try:
        report = backtest(archived.series, short, long)
    except BacktestError as error:
        return [*found, Expectation(False, f"no backtest of SMA-{short}/SMA-{long} yet: {error}",
                                    "the demo streams about 10 ticks a second: wait and check again (--wait 60)")]
    trades = {symbol: len(r.trades) for symbol, r in report.symbols.items()}
    idle = [symbol for symbol, count in trades.items() if not count]
    total = report.total
    found.append(Expectation(not idle, f"the backtest of SMA-{short}/SMA-{long} trades every one of them ("
                             + ", ".join(f"{symbol} {count}" for symbol, count in trades.items())
                             + f" trade(s); in total {total.total_return * 100:+.2f}% against buy and hold's "
                             f"{total.buy_and_hold_return * 100:+.2f}%)" if not idle else
                             f"no trade yet for {', '.join(idle)} with SMA-{short}/SMA-{long}",
                             "a trade needs a crossover: wait and check again (--wait 60)"))
    return found


def _lab7(look: Look) -> list[Expectation]:
    """What teardown removes is what carries the stack's tag; something of the same name made since by
    someone else (a log group a last invocation wrote to) is not the stack's, and teardown leaves it."""
    stack = look.aws.settings.stack_name
    present = [step.resource for step in look.steps if step.found is not None and step.found.owner == stack]
    if not present:
        return [Expectation(True, f"no resource of stack {stack!r} remains at {look.aws.target_name}")]
    return [Expectation(False, f"{len(present)} resources of stack {stack!r} remain at {look.aws.target_name} "
                        f"(first: {present[0].kind} {present[0].name})",
                        f"stockpipe init --teardown removes them (only what is tagged stockpipe:stack={stack})")]


LABS: dict[int, Lab] = {lab.number: lab for lab in (
    Lab(0, "set up", "workshop/lab0-setup.md", "the pipeline running on your laptop, from a clone or a package folder",
        _lab0),
    Lab(1, "ingest", "workshop/lab1-ingest.md", "ticks flowing from the producer into the stream", _deployed_first(_lab1)),
    Lab(2, "process", "workshop/lab2-process.md", "ticks stored, archived raw, and a bad one dead-lettered with its "
        "reason", _deployed_first(_lab2)),
    Lab(3, "alerts", "workshop/lab3-alerts.md", "crossover alerts through Streams and SNS, and a setting of yours "
        "deployed", _deployed_first(_lab3)),
    Lab(4, "query", "workshop/lab4-query.md", "the seeds' SQL over the raw archive, and a query of your own",
        _deployed_first(_lab4)),
    Lab(5, "break and fix", "workshop/lab5-break-and-fix.md", "a planted mistake found with stockpipe doctor and "
        "fixed", _deployed_first(_lab5)),
    Lab(6, "backtest", "workshop/lab6-backtest.md", "the archive replayed through trend-alerts' rule: trades, "
        "returns against buy and hold, in the terminal and on the dashboard", _deployed_first(_lab6)),
    Lab(7, "real AWS and cleanup", "workshop/lab7-real-aws.md", "what init would do on an account, and everything "
        "removed", _lab7),
)}


def lab_named(text: str) -> Lab | None:
    """A lab by its number ("3") or None."""
    return LABS.get(int(text)) if text.strip().isdigit() else None


def check_lab(aws: AwsContext, lab: Lab, *, state: Path = STATE, environ: Mapping[str, str] | None = None) -> LabResult:
    """``environ``: the configuration doctor reads for lab 5 (default: this process's environment)."""
    return LabResult(lab, lab.expectations(Look(aws, state, environ)))


__all__ = ["LABS", "Expectation", "Lab", "LabResult", "Look", "check_lab", "lab_named"]
