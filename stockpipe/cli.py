"""`stockpipe`: one entry point, one subcommand per job. Each works alone against whatever
AWS_ENDPOINT_URL names (unset: real AWS)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe.aws.context import AwsContext
from stockpipe.domain.signals import averages
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings, environment, parse_symbols

if TYPE_CHECKING:
    from stockpipe.aws.stream import Outgoing

log = logging.getLogger("stockpipe")


class UsageError(StockpipeError):
    """Bad arguments or state the user can fix; printed as one line."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _load_dotenv() -> dict[str, str]:
    """A .env in the working directory fills in what the environment does not set. Returns where
    each variable it set came from (".env line 9"), for the messages that name a variable."""
    from stockpipe import dotenv

    loaded = dotenv.load(Path.cwd() / ".env", environment())
    note = loaded.skipped_note()
    if note:
        print(f"stockpipe: {note}", file=sys.stderr)
    return loaded.sources


# -- subcommands ----------------------------------------------------------------------------


def cmd_emulator(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe.engine import EmbeddedEngine

    port = args.port or settings.engine_port
    data = Path(settings.engine_data_dir).resolve()
    if args.fresh and data.exists():
        import shutil

        shutil.rmtree(data)
    engine = EmbeddedEngine(port, host=args.host, region=settings.region, data_dir=data)
    try:
        engine.start()
        kept = "state restored from" if engine.restored else "state kept in"
        print(f"AWS engine (MiniStack) ready at {engine.url}  ({kept} {data}; log: {engine.log_path})", flush=True)
        print(f"  export AWS_ENDPOINT_URL={engine.url}   # then: stockpipe init, stockpipe produce ...", flush=True)
        while engine.process and engine.process.poll() is None:
            time.sleep(0.5)
        raise UsageError(f"the engine stopped unexpectedly (log: {engine.log_path})")
    except KeyboardInterrupt:
        print("stopping the engine", flush=True)
        return 0
    finally:
        engine.stop()


def cmd_init(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.provision import Stack

    stack = Stack(aws)
    started = time.monotonic()
    if args.teardown:
        results = stack.down()
        deleted = sum(result.startswith("deleted") for result in results.values())
        kept = sum(result.startswith("kept") for result in results.values())
        print(f"removed in {time.monotonic() - started:.1f}s: {deleted} deleted, {kept} kept (not ours or not "
              f"empty), {len(results) - deleted - kept} absent")
        return 0
    outcome = stack.up()
    skipped = f", {len(outcome.skipped)} skipped" if outcome.skipped else ""
    print(
        f"ready in {time.monotonic() - started:.1f}s: {len(outcome.created)} created, "
        f"{len(outcome.updated)} updated, {len(outcome.unchanged)} unchanged{skipped}"
    )
    return 0


def cmd_plan(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.provision import Action, Stack

    if args.package_bucket and args.deployer_policy != "cloudformation":
        raise UsageError("--package-bucket is for --deployer-policy cloudformation")
    if args.part is not None and not args.deployer_policy:
        raise UsageError("--part is for --deployer-policy")
    if args.deployer_policy:
        # The policy alone on stdout, for `aws iam create-policy --policy-document file://...`;
        # its ARNs name the account the target's STS answered for.
        from stockpipe.provision.deployer import MANAGED_POLICY_LIMIT, deployer_policy, parts

        documents = parts(deployer_policy(aws, args.deployer_policy, package_bucket=args.package_bucket))
        if args.part is None and len(documents) > 1:
            raise UsageError(f"the policy takes {len(documents)} managed policies (IAM allows {MANAGED_POLICY_LIMIT:,} "
                             f"characters in one): print each with --part 1 to --part {len(documents)}")
        part = args.part or 1
        if not 1 <= part <= len(documents):
            raise UsageError(f"--part {part}: the policy has {len(documents)} part(s)")
        print(json.dumps(documents[part - 1], indent=2))
        return 0
    stack = Stack(aws)
    steps = stack.plan()
    stack.describe_plan(steps)
    return 1 if any(step.action is Action.REFUSE for step in steps) else 0


def cmd_template(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.provision import template

    rendered = template.render(aws.settings, aws.engine)
    written = template.write(rendered, Path(args.out))
    gated = sum("Condition" in made for made in rendered.body["Resources"].values())
    print(f"{written[0]}: {rendered.resource_count} CloudFormation resources (INGEST={aws.settings.ingest}): the "
          f"{len(rendered.listed) - gated} `stockpipe init` makes, {gated} e-mail subscription(s) made when their "
          f"parameter is given, and {rendered.resource_count - len(rendered.listed)} resource policies; beside it: "
          f"{', '.join(p.name for p in written[1:])}")
    print(f"  aws cloudformation package --template-file {written[0]} --s3-bucket <a bucket for the code> "
          f"--output-template-file {written[0].parent / 'packaged.yaml'}")
    print(f"  aws cloudformation deploy --template-file {written[0].parent / 'packaged.yaml'} --stack-name "
          f"{aws.settings.stack_name} --capabilities CAPABILITY_NAMED_IAM")
    return 0


def cmd_replay_failed(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.aws.onfailure import OnFailureQueue

    queue = OnFailureQueue(aws)
    replayed = queue.replay(limit=args.limit, dry_run=args.dry_run, report=lambda line: print(line, flush=True))
    print(f"{replayed.batches} failed batch(es), {replayed.records} record(s) "
          f"{'would be replayed' if args.dry_run else 'replayed'}; {replayed.left} left in "
          f"{aws.settings.onfailure_queue_name}", file=sys.stderr)
    return 1 if replayed.errors else 0


def _source(args: argparse.Namespace, aws: AwsContext) -> Iterator[Outgoing]:
    settings = aws.settings
    from stockpipe.producer import sources

    symbols = _symbols(args.symbols, settings)
    if args.source == "synthetic":
        seed = args.seed if args.seed is not None else settings.producer_seed
        return sources.synthetic(symbols, seed, args.count, rate=_rate(args, settings))
    if args.source == "replay":
        return sources.replay(Path(args.file), checked=True)
    if args.source == "unsent":
        from stockpipe.producer.unsent import open_unsent

        return open_unsent(Path(args.file))
    if args.source == "archive":
        from stockpipe.aws.archive import RawArchive
        from stockpipe.aws.stream import Outgoing
        from stockpipe.processing import archived

        archive = RawArchive(aws, aws.where.raw_bucket, settings.raw_prefix)
        return (Outgoing(symbol, archived(key, line), f"{key}") for key, symbol, line in archive.lines())
    interval = args.interval or settings.producer_interval
    return sources.yahoo(symbols, interval, args.count)


def _symbols(given: str | None, settings: Settings) -> tuple[str, ...]:
    """--symbols, or PRODUCER_SYMBOLS when it is not given; given but empty is a mistake, not the default."""
    if given is None:
        return settings.producer_symbols
    if not given.strip(" ,"):
        raise UsageError("--symbols is empty: give a comma-separated list such as AAPL,MSFT, or leave it out")
    return parse_symbols(given)


def _rate(args: argparse.Namespace, settings: Settings) -> float | None:
    """Records per second, or None for as fast as the stream or queue takes them (0 asks for that too).
    Synthetic defaults to PRODUCER_RATE, replay to full speed; yfinance is paced by its poll interval."""
    if args.source == "yfinance":
        return None
    if args.rate is not None:
        return args.rate or None
    return settings.producer_rate if args.source == "synthetic" else None


def cmd_produce(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe.aws.queue import ingest_sender
    from stockpipe.aws.stream import DeliveryError
    from stockpipe.producer import ProduceStats, produce
    from stockpipe.producer.producer import FLUSH_SECONDS, Interrupted
    from stockpipe.producer.sources import check_replay
    from stockpipe.producer.unsent import open_unsent, save_unsent

    if args.count is not None and args.count <= 0:
        raise UsageError(f"--count {args.count}: give a number of ticks above 0 (or leave it out to run until Ctrl-C)")
    if args.rate is not None and args.rate < 0:
        raise UsageError(f"--rate {args.rate:g}: give ticks per second above 0 (or 0 for as fast as they are taken)")
    if args.source in ("replay", "unsent") and not args.file:
        raise UsageError(f"--source {args.source} needs --file")
    # The stream (or queue) first: a mistyped name or region fails in a second, not after reading a large file.
    sender = ingest_sender(aws)
    sender.check()
    total: int | None = args.count
    if args.source == "replay":
        total = check_replay(Path(args.file))  # the file's shape, read once in constant memory
    elif args.source == "unsent":
        total = sum(1 for _ in open_unsent(Path(args.file)))
    records: Iterable[Outgoing] = _source(args, aws)
    rate = _rate(args, settings)
    print(f"streaming to {sender.target} ({args.source}"
          f"{f', {rate:g}/s' if rate else ''}{f', {total} records' if total else ', until Ctrl-C'})", file=sys.stderr)
    progress = _progress(total)
    delivered = [0]

    def on_sent(stats: ProduceStats) -> None:
        delivered[0] = stats.sent
        progress(stats.sent)

    try:
        # yfinance yields a few quotes per poll, then sleeps: send them at once, not at the next poll.
        stats = produce(records, sender, rate=rate, on_sent=on_sent,
                        max_batch_delay=0 if args.source == "yfinance" else FLUSH_SECONDS,
                        finite=total is not None)
    except DeliveryError as error:
        spool = save_unsent(error.unsent)
        raise UsageError(f"{error}; {delivered[0]} record(s) were sent, the {len(error.unsent)} unsent are saved in {spool}: "
                         f"stockpipe produce --source unsent --file {spool} sends them again") from None
    except Interrupted as interrupted:
        kept = f"; {len(interrupted.unsent)} unsent record(s) saved in {save_unsent(interrupted.unsent)}" \
            if interrupted.unsent else ""
        print(f"\nstopped{kept}", file=sys.stderr)
        return 130
    finally:
        progress(None)
    print(f"sent {stats.sent} record(s) in {stats.batches} batch(es), {stats.seconds:.1f}s ({stats.rate:.0f}/s)",
          file=sys.stderr)
    return 0


def _progress(total: int | None) -> Callable[[int | None], None]:
    """A progress bar on a terminal; a line every few seconds otherwise."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       transient=False)
        task = bar.add_task("send", total=total)
        bar.start()

        def update(sent: int | None) -> None:
            if sent is None:
                bar.stop()
            else:
                bar.update(task, completed=sent)

        return update
    last = [0.0]

    def report(sent: int | None) -> None:
        if sent is not None and time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            print(f"  sent {sent}{f'/{total}' if total else ''}", file=sys.stderr, flush=True)

    return report


def _format_alert(alert: dict[str, Any]) -> str:
    parts = [str(alert.get("timestamp", "?")), f"{alert.get('signal', '?'):<7}", f"{alert.get('symbol', '?'):<6}",
             f"price {alert.get('price', '?')}"]
    short, long = averages(alert)
    if short is not None and long is not None:
        parts.append(f"sma_short {short:.2f} sma_long {long:.2f}")
    if alert.get("change_percent") is not None:
        parts.append(f"change {float(alert['change_percent']):+.2f}%")
    parts.append(str(alert.get("message", "")))
    return "  ".join(parts)


# `stockpipe alerts --inbox`: which reader's queue it reads (settings.READER_QUEUES).
INBOXES = {"alerts": "ALERTS_QUEUE_NAME", "compose": "COMPOSE_ALERTS_QUEUE_NAME"}


def cmd_alerts(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe.aws.alerts import AlertInbox

    inbox = AlertInbox(aws, aws.queue_url(settings.queue_of(INBOXES[args.inbox])))
    shown = 0
    try:
        while True:
            batch = inbox.pull(wait_seconds=5 if args.follow else 1)
            unshown = [receipt for _, receipt in batch]
            try:
                for alert, receipt in batch:
                    print(json.dumps(alert, default=_json_default, sort_keys=True) if args.json
                          else _format_alert(alert), flush=True)
                    inbox.ack(receipt)  # only once shown: `stockpipe alerts | head -3` leaves the rest queued
                    unshown.remove(receipt)
            except BaseException:
                inbox.release(unshown)
                raise
            shown += len(batch)
            if not batch and not args.follow:
                break
    except KeyboardInterrupt:
        pass
    if not args.json and not shown and not args.follow:
        print("no alerts waiting", file=sys.stderr)
    return 0


def cmd_dead_letters(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe.aws.deadletter import DeadLetterQueue

    messages = DeadLetterQueue(aws, aws.queue_url(settings.dlq_name)).browse(args.limit)
    for message in messages:
        message.pop("sent_at_ms", None)
        if args.json:
            print(json.dumps(message, sort_keys=True), flush=True)
        else:
            payload = message.get("payload", message.get("payload_base64", ""))
            if "payload_s3" in message:  # too large for a message: kept whole in S3
                payload = (f"{message['payload_excerpt']} (all {message['payload_bytes']} bytes: "
                           f"{message['payload_s3']})")
            where = message.get("sequence_number") or message.get("event_id") or message.get("message_id") or ""
            print(f"{message.get('stage', '?'):<14} {message.get('reason', '?')}\n"
                  f"{'':<14} payload: {payload[:200]}{'…' if len(payload) > 200 else ''}"
                  f"{f'  (record {where})' if where else ''}", flush=True)
    print(f"{len(messages)} record(s) in {settings.dlq_name} (left in the queue)", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe.status import Adapters

    status = Adapters(aws).status()
    if args.json:
        print(json.dumps(status.as_dict(), sort_keys=True))
        return 0
    rows = [
        ("ticks in the stream", status.stream_records, settings.stream_name) if settings.ingest == "kinesis" else
        ("ticks in the queue", status.stream_records, f"{settings.ingest_queue_name} (waiting or in flight)"),
        ("items in the table", status.table_items, settings.table_name),
        ("raw records in S3", status.raw_records, f"{status.raw_objects} objects"),
        ("dead-letter messages", status.dead_letters, settings.dlq_name),
        ("failed stream batches", status.failed_batches, settings.onfailure_queue_name),
        ("alerts sent", status.alerts_sent, settings.topic_name),
    ]
    from stockpipe.charts import bar

    # Bars against the ticks that came in: where they went, at a glance.
    top = max(value or 0 for _, value, _ in rows)
    for label, value, where in rows:
        shown = "?" if value is None else value
        print(f"{label:<22} {shown:>8}  {bar(value, top, 30):<30}  {where}")
    lag = status.lag
    source = "stream" if settings.ingest == "kinesis" else "queue"
    if lag is not None and lag.ingest_to_stored_ms_max is not None:
        print(f"{f'lag {source} -> table':<22} {lag.ingest_to_stored_ms_max:>6}ms  max over the newest tick of "
              f"{lag.symbols} symbol(s) (median {lag.ingest_to_stored_ms_median} ms); newest stored "
              f"{lag.newest_stored_seconds_ago:g} s ago")
    elif lag is not None and lag.symbols:
        print(f"{f'lag {source} -> table':<22} {'?':>8}  the newest items carry no ingested_at/stored_at "
              "(written before those fields existed)")
    return 0


def cmd_query(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe import query
    from stockpipe.aws.catalog import QUERIES, named_query, query_title

    if args.list:
        print(query.library(settings.athena_table, settings.anomaly_threshold_percent))
        return 0
    if bool(args.name) == bool(args.sql):
        raise UsageError(f"give one query: a name ({', '.join(QUERIES)}) or --sql 'SELECT ...'")
    if args.name and args.name not in QUERIES:
        raise UsageError(f"no query named {args.name!r}; choose one of {', '.join(QUERIES)} (or --sql)")
    if args.repair:
        print(query.repair(aws), file=sys.stderr)
    sql = args.sql or named_query(args.name, settings.athena_table, settings.anomaly_threshold_percent)
    progress = query.ReadProgress()
    try:
        result = query.run(aws, sql, args.engine, progress=progress)
    finally:
        progress.close()
    if args.json:
        query.write_json(result, sys.stdout)
    elif args.csv:
        query.write_csv(result, sys.stdout)
    else:
        query.write_table(result, query_title(args.name, settings.anomaly_threshold_percent) if args.name else None,
                          sys.stdout)
    print(query.summary(result), file=sys.stderr)
    return 0


def cmd_backtest(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe import query
    from stockpipe.backtesting import Window, read_archive, report_text
    from stockpipe.domain.backtest import BacktestError, Rule, backtest, report_json

    short = settings.sma_short if args.short is None else args.short
    long = settings.sma_long if args.long is None else args.long
    try:  # bad arguments: refused before anything is read, exit 2 as argparse's own
        Rule(short, long, args.cost_bps).check()
        window = Window.of(args.start, args.end)
    except ValueError as error:
        print(f"stockpipe backtest: error: {error}", file=sys.stderr)
        return 2
    symbols = _symbols(args.symbols, settings) if args.symbols is not None else ()
    progress = query.ReadProgress()
    try:
        archived = read_archive(aws, symbols, window, args.engine, progress=progress)
    finally:
        progress.close()
    try:
        report = backtest(archived.series, short, long, args.cost_bps)
    except BacktestError as error:
        raise UsageError(str(error)) from None
    if args.html:
        from stockpipe.backtest_page import render_html

        Path(args.html).write_text(render_html(report), encoding="utf-8")
    if args.json:
        print(json.dumps(report_json(report)))
    else:
        print(report_text(report))
    print(archived.source + (f"; page: {args.html}" if args.html else ""), file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace, sources: dict[str, str]) -> int:
    """Reads the configuration itself: a value Settings would refuse is one of its findings."""
    from stockpipe.doctor import diagnose

    diagnosis = diagnose(environment(), sources, stall_after=args.stall_after)
    print(diagnosis.json() if args.json else diagnosis.text(), flush=True)
    return diagnosis.exit_code


def cmd_dashboard(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    try:
        from stockpipe.dashboard.server import Dashboard
    except ImportError as error:
        raise UsageError(f"the dashboard is not installed ({error.name} is missing): "
                         "pip install 'stockpipe[dashboard]' (make install does it)") from None
    dashboard = Dashboard.open(aws, args.host or settings.dashboard_host,
                               settings.dashboard_port if args.port is None else args.port)

    def ready() -> None:
        print(f"dashboard: {dashboard.url}  (reading {aws.target_name}; Ctrl-C stops)", flush=True)

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on Ctrl-C or SIGTERM, then raises it again
        dashboard.serve(on_ready=ready)
    return 0


def _lab_target(aws: AwsContext) -> None:
    """The lab commands' first call: a target that does not answer is one line saying how to start one."""
    from stockpipe.aws.context import TargetError

    try:
        aws.identity  # noqa: B018 - the reachability check
    except TargetError as error:
        if aws.endpoint_url:
            raise UsageError(f"cannot reach {aws.target_name}: start the pipeline with make demo (or stockpipe "
                             "emulator, then stockpipe init in another terminal), and export the AWS_ENDPOINT_URL "
                             "it prints") from None
        raise UsageError(f"{error} (AWS_ENDPOINT_URL is unset, so this is real AWS; for the workshop's demo, paste "
                         "the line make demo printed: export AWS_ENDPOINT_URL=...)") from None


def cmd_lab_list(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.lab import LABS

    for lab in LABS.values():
        print(f"{lab.number}  {lab.title:<21} {lab.goal}  (docs/{lab.page})")
    return 0


def cmd_lab_check(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.lab import LABS, check_lab, lab_named

    lab = lab_named(args.number)
    if lab is None:
        known = ", ".join(f"{n} {each.title}" for n, each in LABS.items())
        print(f"stockpipe lab check: error: there is no lab {args.number!r}: the labs are {known}", file=sys.stderr)
        return 2
    _lab_target(aws)
    from stockpipe.waiting import WaitTimeout, wait_until

    results = []
    shown = time.monotonic()

    def passed() -> bool:
        results.append(check_lab(aws, lab))
        return results[-1].passed

    def waiting(_: object, left: float) -> None:
        nonlocal shown
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            met = sum(e.met for e in results[-1].expectations)
            print(f"  waiting: {met} of {len(results[-1].expectations)} there, {left:.0f} s left", file=sys.stderr,
                  flush=True)

    with contextlib.suppress(WaitTimeout):  # the outcome as it is then, met or not
        wait_until(passed, what=f"lab {lab.number}", timeout=max(0.0, args.wait), interval=2, progress=waiting)
    result = results[-1]
    print(json.dumps(result.as_dict(), sort_keys=True) if args.json else result.text(), flush=True)
    return 0 if result.passed else 1


def cmd_lab_break(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.lab import MISTAKES, plant

    if args.list:
        for mistake in MISTAKES.values():
            print(f"{mistake.name:<17} {mistake.note}")
        return 0
    if args.name is not None and args.name not in MISTAKES:
        raise UsageError(f"no mistake named {args.name!r}: stockpipe lab break --list names them "
                         f"({', '.join(MISTAKES)})")
    _lab_target(aws)
    mistake = plant(aws, args.name)
    which = f"'{mistake.name}'" if args.name else "one of the mistakes, chosen at random"
    print(f"planted {which} in {aws.target_name}. Find it: stockpipe doctor. Undo it: stockpipe lab reset", flush=True)
    return 0


def cmd_lab_reset(args: argparse.Namespace, aws: AwsContext) -> int:
    from stockpipe.lab import reset

    _lab_target(aws)
    undone = reset(aws)
    print(f"reset: {undone!r} undone; the deployment is as init makes it" if undone else
          "reset: nothing was planted here; the deployment is as init makes it", flush=True)
    return 0


def cmd_demo(args: argparse.Namespace, aws: AwsContext) -> int:
    settings = aws.settings
    from stockpipe.demo import run_demo

    return run_demo(settings, seconds=args.seconds, rate=args.rate, symbols=args.symbols)


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stockpipe",
        description="Real-time stock analytics on Kinesis, Lambda, DynamoDB, S3 and SNS. "
        "AWS_ENDPOINT_URL set: an emulator; unset: real AWS.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens underneath")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in (_engine_and_stack, _flow, _looking, _lab, _browser):
        add(sub)
    return parser


Commands = Any  # argparse's _SubParsersAction, private in typeshed


def _engine_and_stack(sub: Commands) -> None:
    p = sub.add_parser("emulator", help="run the embedded AWS engine (MiniStack) in the foreground")
    p.add_argument("--port", type=int, help="port to serve on (default ENGINE_PORT, 4566)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 in a container)")
    p.add_argument("--fresh", action="store_true",
                   help="start empty: delete the state kept in ENGINE_DATA_DIR (.stockpipe/engine) first")
    p.set_defaults(run=cmd_emulator)

    p = sub.add_parser("plan", help="print the target and what init would do to each resource; changes nothing")
    p.add_argument("--deployer-policy", nargs="?", const="init", choices=["init", "cloudformation"],
                   help="print instead the IAM policy (JSON) the person deploying needs, for the target's account: "
                   "for stockpipe init and its teardown (default), or for a CloudFormation stack of the same resources")
    p.add_argument("--part", type=int, metavar="N",
                   help="with --deployer-policy: its Nth managed policy, where it takes more than one (attach them all)")
    p.add_argument("--package-bucket", metavar="BUCKET",
                   help="with --deployer-policy cloudformation: the bucket `aws cloudformation package` uploads to")
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("init", help="create every resource (idempotent), or remove them with --teardown")
    p.add_argument("--teardown", action="store_true",
                   help="delete what init created (tagged stockpipe:stack=STACK_NAME), and nothing else")
    p.set_defaults(run=cmd_init)

    p = sub.add_parser("template", help="write the stack as a CloudFormation template, with the functions' zips "
                       "beside it (what init creates, for aws cloudformation package and deploy)")
    p.add_argument("--out", required=True, help="a new or empty folder (or one an earlier run wrote)")
    p.set_defaults(run=cmd_template)

    p = sub.add_parser("replay-failed", help="process again the stream batches AWS gave up on (the on-failure queue)")
    p.add_argument("--limit", type=int, default=100, help="at most this many failed batches (default 100)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be replayed")
    p.set_defaults(run=cmd_replay_failed)


def _flow(sub: Commands) -> None:
    p = sub.add_parser("produce", help="send ticks into the pipeline: the Kinesis stream, or the queue with INGEST=sqs")
    p.add_argument("--source", choices=["synthetic", "replay", "yfinance", "unsent", "archive"], default="synthetic",
                   help="archive: every raw record in S3 again (after a loss; what is stored already is skipped)")
    p.add_argument("--file", help="CSV for --source replay: timestamp,symbol,price,volume[,previous_close]; "
                   "for --source unsent, a stockpipe-unsent-*.jsonl file a failed run saved")
    p.add_argument("--symbols", help="comma-separated symbols (default PRODUCER_SYMBOLS)")
    p.add_argument("--rate", type=float, help="records per second (default PRODUCER_RATE; 0 = as fast as possible)")
    p.add_argument("--count", type=int, help="stop after this many ticks (synthetic, yfinance)")
    p.add_argument("--seed", type=int, help="synthetic market seed (default PRODUCER_SEED)")
    p.add_argument("--interval", type=float, help="yfinance poll interval in seconds (default PRODUCER_INTERVAL)")
    p.set_defaults(run=cmd_produce)

    p = sub.add_parser("alerts", help="print the alerts received through the topic's SQS subscription")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new alerts")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--inbox", choices=tuple(INBOXES), default="alerts",
                   help="whose queue to read: alerts = ALERTS_QUEUE_NAME (default), compose = COMPOSE_ALERTS_QUEUE_NAME "
                        "(the compose project's alerts container); each reader sees every alert")
    p.set_defaults(run=cmd_alerts)

    p = sub.add_parser("dead-letters", help="list the records that could not be stored, with the reason (kept)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=cmd_dead_letters)

    p = sub.add_parser("status", help="counts at every stage: stream, table, S3, dead letters, alerts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_status)


def _looking(sub: Commands) -> None:
    p = sub.add_parser("query", help="SQL over the raw archive: the seeds' queries by name, or your own; Athena, "
                       "or DuckDB in this process where the engine has no Athena")
    p.add_argument("name", nargs="?", help="top-movers, avg-volume, anomalies, volume-by-hour, avg-price, max-price "
                   "or high-volume (--list prints their SQL)")
    p.add_argument("--sql", help="your own SQL over the table (default name stock_data_table, ATHENA_TABLE)")
    p.add_argument("--engine", choices=["auto", "athena", "duckdb"], default="auto",
                   help="athena; duckdb: in this process, over the raw objects fetched from S3; auto (default): "
                   "Athena, and DuckDB where the engine or account has no Athena")
    p.add_argument("--list", action="store_true", help="print the named queries")
    p.add_argument("--repair", action="store_true", help="register every raw partition in Glue first")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--csv", action="store_true", help="CSV with a header row")
    shape.add_argument("--json", action="store_true", help="one JSON object per row")
    p.set_defaults(run=cmd_query)

    p = sub.add_parser("backtest", help="replay the archived ticks through trend-alerts' crossover rule: trades, "
                       "returns against buy and hold, drawdown, win rate, per symbol and in total")
    p.add_argument("--symbols", help="comma-separated symbols (default: every symbol with ticks in the window)")
    p.add_argument("--from", dest="start", metavar="T", help="first instant, UTC: 2026-03-02 or 2026-03-02T14:30 "
                   "(default: the first tick)")
    p.add_argument("--to", dest="end", metavar="T", help="last instant, included; a date alone covers its whole day "
                   "(default: the last tick)")
    p.add_argument("--short", type=int, metavar="N", help="short average's ticks (default SMA_SHORT)")
    p.add_argument("--long", type=int, metavar="N", help="long average's ticks (default SMA_LONG)")
    p.add_argument("--cost-bps", type=float, default=0.0, metavar="B",
                   help="costs in basis points per side, on both fills (default 0)")
    p.add_argument("--engine", choices=["auto", "athena", "duckdb"], default="auto",
                   help="how the archive is read, as for stockpipe query (default auto: Athena, DuckDB in this "
                   "process where there is none)")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained page: equity against buy and hold "
                   "with the trades marked, and the tables")
    p.set_defaults(run=cmd_backtest)

    p = sub.add_parser("doctor", help="check the configuration and the deployment for the usual mistakes: one line "
                       "per check, ok or the problem and its fix; changes nothing (exit 1 when a check fails)")
    p.add_argument("--json", action="store_true", help="the findings as one JSON object")
    p.add_argument("--stall-after", type=float, default=60.0, metavar="SECONDS",
                   help="a tick waiting this long in the stream is a stall (default 60)")
    p.set_defaults(run=cmd_doctor)


def _lab(sub: Commands) -> None:
    p = sub.add_parser("lab", help="the workshop's labs: list them, check a lab's outcome in the running pipeline, "
                       "plant lab 5's mistake and undo it (docs/workshop/)")
    lab = p.add_subparsers(dest="lab_command", required=True, metavar="lab-command")
    q = lab.add_parser("list", help="name the labs and their pages")
    q.set_defaults(run=cmd_lab_list)
    q = lab.add_parser("check", help="look at the running pipeline (read-only): one line per expected outcome of lab N, "
                       "✓ or ✗ with the likeliest cause; exit 0 when all are there, 1 when not")
    q.add_argument("number", metavar="N", help="the lab's number (stockpipe lab list)")
    q.add_argument("--json", action="store_true", help="the outcome as one JSON object (for an instructor's script)")
    q.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="look again every 2 s until the outcome is all there or SECONDS pass (default 0: look once)")
    q.set_defaults(run=cmd_lab_check)
    q = lab.add_parser("break", help="plant one of lab 5's mistakes in the running pipeline (NAME, or one at random)")
    q.add_argument("name", nargs="?", metavar="NAME", help="which mistake (--list names them); default: one at random")
    q.add_argument("--list", action="store_true", help="name the mistakes that can be planted")
    q.set_defaults(run=cmd_lab_break)
    q = lab.add_parser("reset", help="undo what lab break planted: the deployment as init makes it again")
    q.set_defaults(run=cmd_lab_reset)


def _browser(sub: Commands) -> None:
    p = sub.add_parser("dashboard", help="serve the pipeline live in a browser: charts, alerts, health, lag")
    p.add_argument("--host", help="interface to listen on (default DASHBOARD_HOST, 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port to listen on (default DASHBOARD_PORT, 8000; 0: any free one)")
    p.set_defaults(run=cmd_dashboard)

    p = sub.add_parser("demo", help="engine + init + synthetic producer + live dashboard (what make demo runs)")
    p.add_argument("--seconds", type=float, help="stop by itself after this long (default: at Ctrl-C)")
    p.add_argument("--rate", type=float, help="ticks per second (default PRODUCER_RATE)")
    p.add_argument("--symbols", help="comma-separated symbols (default PRODUCER_SYMBOLS)")
    p.set_defaults(run=cmd_demo)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # `docker stop`, `kill` and a closed terminal stop us the way Ctrl-C does: cleanly, stopping
    # whatever we started (the demo's engine, `stockpipe emulator`'s engine).
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _interrupt)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        # Plain lines for people; -v adds times and where each line comes from.
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if args.verbose
        else f"stockpipe {args.command}: %(levelname)s: %(message)s",
    )
    logging.addLevelName(logging.WARNING, "warning")
    aws: AwsContext | None = None
    from stockpipe.aws.errors import AwsError, explain, translated

    # How errors name the command: "stockpipe lab break: error: ..." for a command with subcommands.
    shown = " ".join([args.command, *([args.lab_command] if getattr(args, "lab_command", None) else [])])

    try:
        # AWS errors that reach here, from an adapter or from init, are ours (AwsError) from this line on.
        with translated():
            sources = _load_dotenv()
            if args.command == "doctor":  # it reads the configuration itself, every mistake in it a finding
                return cmd_doctor(args, sources)
            settings = Settings.from_env(sources=sources)
            aws = AwsContext(settings, sources=sources)
            # The dashboard starts whatever the engine's state: its page says "engine unreachable" until it answers.
            if args.command not in ("demo", "emulator", "dashboard", "lab", "template"):
                aws.identity  # noqa: B018 - the first call: fails in under 3 s, in one line, when nothing answers
            return int(args.run(args, aws) or 0)
    except AwsError as error:
        target, region = (aws.target_name, aws.region) if aws else ("AWS", "?")
        message = explain(error, target, region) or f"{error.kind}: {error}"
        print(f"stockpipe {shown}: error: {message}", file=sys.stderr)
        return 1
    except StockpipeError as error:
        print(f"stockpipe {shown}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`stockpipe alerts | head`): not an error, and no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
