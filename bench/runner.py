"""One bench run: its own engine, the engine ceiling, the naive flow if asked, then our pipeline
(with the soak's three phases if asked), and the figures. Each phase is watched with a few small
calls while it runs, and read tick by tick once they say it is done (see watch.py and follow.py)."""

from __future__ import annotations

import math
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import figures as fig
from bench.deploy import Deployer, Flow
from bench.follow import LogWatcher
from bench.ledger import AlertLedger, Layout, TickLedger, expected_alerts, per_symbol_counts
from bench.naive_trend import LONG, crossing
from bench.options import NAIVE_BATCH_SIZE, BenchOptions
from bench.procs import ProcessSampler
from bench.sending import SenderThread
from bench.watch import Goal, Look, Watch
from stockpipe.aws.context import AwsContext
from stockpipe.aws.queue import QueueSender
from stockpipe.aws.stream import KinesisSender, Sender
from stockpipe.domain import Tick
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.errors import StockpipeError
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings, unique_names

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
# The cheap looks at a running phase come at most every POLL_SECONDS, and further apart when they
# take long: their calls may take POLL_SHARE of the wall clock (mostly waiting for the busy engine's
# lock, not its work), up to a look every POLL_MAX seconds.
POLL_SECONDS, POLL_SHARE, POLL_MAX = 0.15, 0.1, 0.5
# How often the main thread updates the bars and checks its workers.
TICK_SECONDS = 0.05
# After a full read that found the phase not yet done, the next one waits at least this long.
RETRY_SECONDS = 1.0
# After a flow's last phase, how long before the last read, so that a late repeat or an unexpected
# alert is still counted.
SETTLE_SECONDS = 1.0
# A soak starts with this long at the demo's rate, not measured: the functions' cold starts.
WARMUP_SECONDS = 3.0


class BenchError(StockpipeError):
    """A flow did not finish in time, or the bench could not follow it; the message gives the counts reached."""


@dataclass(frozen=True)
class Phase:
    name: str
    ticks: int
    rate: float | None


@dataclass
class FlowSpec:
    label: str
    description: str
    stream_name: str
    table_name: str
    market: SyntheticMarket
    phases: list[Phase]
    expected: dict[str, int]
    kinesis_batch: int
    streams_batch: int
    queue_url: str | None = None
    last_stage_group: str | None = None  # log group of the function whose line ends the flow
    heads_table: str | None = None  # our pipeline's heads: each symbol's newest tick stored or being stored
    ingest_queue: str | None = None  # INGEST=sqs: the queue the ticks are sent to instead of the stream


def naive_expected(market: SyntheticMarket, counts: list[int]) -> dict[str, int]:
    """The alerts the naive flow publishes: its own crossing rule on the last 21 prices of each tick."""
    layout = Layout(market)
    expected: dict[str, int] = {}
    for symbol, count in zip(market.symbols, counts, strict=True):
        prices: deque[Decimal] = deque(maxlen=LONG + 1)
        for tick in replace(market, symbols=(symbol,)).ticks(count):  # that symbol's walk alone
            prices.append(tick.price)
            signal = crossing(list(prices))
            if signal:
                index = layout.index_of(symbol, tick.timestamp)
                assert index is not None
                expected[f"{symbol}#{tick.timestamp}#{signal}"] = index
    return expected


class Bench:
    def __init__(self, settings: Settings, options: BenchOptions, console: Console) -> None:
        self.base, self.options, self.console = settings, options, console
        self.prefix = f"bench{uuid.uuid4().hex[:6]}"
        self.engine = EmbeddedEngine(free_port(), region=settings.region)
        self.sampler: ProcessSampler | None = None

    def market(self) -> SyntheticMarket:
        return SyntheticMarket(self.options.symbols, seed=self.options.seed, start=START)

    def paced(self, ticks: int) -> list[Phase]:
        """``ticks`` at the run's pace: "at a steady rate" means warm, so a few seconds at the pace
        come first (the warm-up's own figures, cold starts and all, are reported beside them); all
        at once when the run has no pace."""
        rate = self.options.rate
        if rate is None:
            return [Phase("run", ticks, None)]
        return [Phase("warmup", max(1, round(rate * WARMUP_SECONDS)), rate), Phase("run", ticks, rate)]

    def our_phases(self) -> list[Phase]:
        o = self.options
        if not o.soak:
            return self.paced(o.ticks)
        # The warm-up takes the functions' cold starts out of "before": the soak compares warm with warm.
        warmup = max(1, round(o.soak_rate * WARMUP_SECONDS))
        return [Phase("warmup", warmup, o.soak_rate), Phase("before", o.soak_ticks, o.soak_rate),
                Phase("push", o.ticks, o.rate), Phase("after", o.soak_ticks, o.soak_rate)]

    def ceiling_phases(self) -> list[Phase]:
        """The ceiling at the same pace as ours (a paced run's figures are latencies, to be compared
        with the engine's own at that pace); as fast as it goes for a soak or an unpaced run."""
        o = self.options
        return [Phase("run", o.ceiling_ticks, None)] if o.soak else self.paced(o.ceiling_ticks)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        o, console = self.options, self.console
        phases = self.our_phases()
        total = sum(phase.ticks for phase in phases)
        symbols = len(o.symbols)
        with ThreadPoolExecutor(max_workers=1) as pool:
            # What the flows must raise, worked out while the engine starts.
            ours_expected = pool.submit(expected_alerts, self.market(), per_symbol_counts(total, symbols), self.base)
            naive_expected_alerts = pool.submit(naive_expected, self.market(),
                                                per_symbol_counts(o.naive_ticks, symbols)) if o.compare_naive else None
            console.print(f"starting the embedded engine; {total} ticks over {symbols} symbols"
                          f"{f' at {o.rate:g}/s' if o.rate else ''}; ceiling {o.ceiling_ticks} ticks"
                          f"{f'; naive {o.naive_ticks} ticks' if o.compare_naive else ''}")
            started_at = datetime.now(UTC)
            self.engine.start()
            try:
                return self._run(phases, ours_expected.result(),
                                 naive_expected_alerts.result() if naive_expected_alerts else None, started_at)
            finally:
                if self.sampler is not None:
                    self.sampler.stop()
                self.engine.stop()

    def _run(self, phases: list[Phase], ours_expected: dict[str, int], naive_alerts: dict[str, int] | None,
             started_at: datetime) -> dict[str, Any]:
        o = self.options
        env = {**os.environ, **unique_names(self.prefix), **o.environment(), "AWS_ENDPOINT_URL": self.engine.url}
        settings = Settings.from_env(env)
        aws = AwsContext(settings)
        assert self.engine.process is not None
        self.sampler = sampler = ProcessSampler(self.engine.process.pid, self._role_names(settings))
        origin = time.time()
        sampler.start()
        deployer = Deployer(aws, self.prefix)
        flows: list[fig.FlowRun] = []

        t = time.monotonic()
        queued = settings.ingest == "sqs"
        ceiling = deployer.ceiling(settings.queue_batch_size if queued else settings.kinesis_batch_size,
                                   settings.streams_batch_size)
        self.console.print(f"ceiling flow ready in {time.monotonic() - t:.1f}s")
        flows.append(self._follow(aws, self._spec(
            ceiling, settings, self.ceiling_phases(), {},
            f"{'SQS' if queued else 'Kinesis'} -> BatchWriteItem -> table stream -> log one line")))
        deployer.disable(ceiling)

        if naive_alerts is not None:
            t = time.monotonic()
            naive = deployer.naive(NAIVE_BATCH_SIZE)
            self.console.print(f"naive flow ready in {time.monotonic() - t:.1f}s")
            spec = self._spec(naive, settings, [Phase("run", o.naive_ticks, None)], naive_alerts,
                              "per tick Query + PutItem + PutObject; per record Query + Publish; batch 2")
            spec.kinesis_batch = spec.streams_batch = NAIVE_BATCH_SIZE
            flows.append(self._follow(aws, spec))
            deployer.disable(naive)

        t = time.monotonic()
        from stockpipe.provision import Stack

        Stack(aws, report=lambda line: None).up()
        self.console.print(f"our pipeline ready in {time.monotonic() - t:.1f}s (init)")
        ours = FlowSpec("ours", f"the pipeline as init deploys it{' (INGEST=sqs)' if queued else ''}",
                        settings.stream_name, settings.table_name, self.market(), phases, ours_expected,
                        settings.queue_batch_size if queued else settings.kinesis_batch_size,
                        settings.streams_batch_size, queue_url=aws.queue_url(settings.alerts_queue_name),
                        heads_table=settings.heads_table, ingest_queue=settings.ingest_queue_name if queued else None)
        flows.append(self._follow(aws, ours))
        sampler.stop()
        return self._figures(aws, flows, sampler, origin, started_at)

    def _role_names(self, settings: Settings) -> Callable[[str], str | None]:
        p = self.prefix
        names = {settings.process_function_name: "process-ticks", settings.trends_function_name: "trend-alerts",
                 f"{p}-ceiling-write": "ceiling-write", f"{p}-ceiling-log": "ceiling-log",
                 f"{p}-naive-process": "naive-process", f"{p}-naive-trend": "naive-trend"}
        return names.get

    def _spec(self, flow: Flow, settings: Settings, phases: list[Phase], expected: dict[str, int],
              description: str) -> FlowSpec:
        return FlowSpec(flow.label, description, flow.stream_name, flow.table_name, self.market(), phases, expected,
                        settings.queue_batch_size if flow.ingest_queue else settings.kinesis_batch_size,
                        settings.streams_batch_size, queue_url=flow.queue_url, last_stage_group=flow.stage2_log_group,
                        ingest_queue=flow.ingest_queue)

    # -- one flow ---------------------------------------------------------------------------

    def _follow(self, aws: AwsContext, spec: FlowSpec) -> fig.FlowRun:
        starts = [0]
        for phase in spec.phases[:-1]:
            starts.append(starts[-1] + phase.ticks)
        total = starts[-1] + spec.phases[-1].ticks
        ledger = TickLedger(Layout(spec.market), total, starts)
        alerts = AlertLedger(spec.expected, ledger.phase_of, len(spec.phases))
        watch = Watch.of(aws, ledger, alerts, table_name=spec.table_name, heads_table=spec.heads_table,
                         queue_url=spec.queue_url, last_stage_group=spec.last_stage_group)
        run = fig.FlowRun(spec.label, spec.kinesis_batch, spec.streams_batch, ledger, alerts, [],
                          publishes=spec.queue_url is not None, last_stage_logged=spec.last_stage_group is not None,
                          description=spec.description, alerts_drained=watch.alerts is not None and watch.alerts.drain)
        ticks = spec.market.ticks()
        sender: Sender = QueueSender(aws, spec.ingest_queue) if spec.ingest_queue else KinesisSender(aws, spec.stream_name)
        try:
            if watch.alerts is not None:
                watch.alerts.start()
            for number, phase in enumerate(spec.phases):
                run.phases.append(self._phase(spec, number, phase, ledger, alerts, watch, ticks, sender))
            # A late repeat of a tick or an unexpected alert is still counted.
            time.sleep(SETTLE_SECONDS)
            if watch.alerts is not None:
                watch.alerts.stop()
            watch.read()
        finally:
            watch.close()
        return run

    def _phase(self, spec: FlowSpec, number: int, phase: Phase, ledger: TickLedger, alerts: AlertLedger,
               watch: Watch, ticks: Iterator[Tick], sender: Sender) -> fig.PhaseRun:
        assert self.sampler is not None
        self.sampler.sample()
        cpu_before = self.sampler.cpu_by_role()
        title = spec.label if len(spec.phases) == 1 else f"{spec.label} {phase.name}"
        size, expected = ledger.phase_size(number), alerts.expected_per_phase[number]
        low = ledger.phase_starts[number]
        # The flow's last function is looked for in its log once the last phase is stored.
        last_stage = watch.logs if number == len(spec.phases) - 1 else None
        goal = Goal(low, low + size, ledger.records, expected)
        thread = SenderThread(ticks, sender.send, ledger, low, size, phase.rate)
        run = fig.PhaseRun(phase.name, size, phase.rate, started=time.time())
        deadline = time.monotonic() + self.options.timeout
        look, next_look, next_read = Look(), 0.0, 0.0
        cpu_end = cpu_before
        thread.start()
        try:
            with Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=self.console, transient=False, refresh_per_second=4) as progress:
                sent_bar = progress.add_task(f"{title}: sent", total=size)
                stored_bar = progress.add_task(f"{title}: stored", total=size)
                alerts_bar = progress.add_task(f"{title}: alerts", total=expected) if spec.queue_url else None
                while True:
                    for worker in (thread, watch.alerts):
                        if worker is not None and worker.error is not None:
                            raise BenchError(f"{title}: {worker.name} failed: {type(worker.error).__name__}: "
                                             f"{worker.error}") from worker.error
                    sent = ledger.sent_per_phase[number]
                    if time.monotonic() >= next_look:
                        began = time.monotonic()
                        look = watch.look(goal, sent >= size, last_stage)
                        run.looks += 1
                        took = time.monotonic() - began
                        next_look = time.monotonic() + min(POLL_MAX, max(POLL_SECONDS, took / POLL_SHARE))
                    stored = max(ledger.stored_per_phase[number], look.writing)
                    received = alerts.received_per_phase[number] + look.arrived
                    progress.update(sent_bar, completed=sent)
                    progress.update(stored_bar, completed=min(stored, size))
                    if alerts_bar is not None:
                        progress.update(alerts_bar, completed=received)
                    if sent >= size and time.monotonic() >= next_read and look.done(goal, received):
                        # The cheap signals say done: read what the flow did, once, after its timed window.
                        self.sampler.sample()
                        cpu_end = self.sampler.cpu_by_role()
                        began = time.monotonic()
                        watch.read()
                        look = replace(look, arrived=0)
                        run.reads += 1
                        run.read_seconds = time.monotonic() - began
                        if self._complete(run, goal, number, ledger, alerts, watch, last_stage):
                            break
                        next_read = time.monotonic() + RETRY_SECONDS
                    if time.monotonic() > deadline:
                        thread.stop()
                        raise BenchError(self._unfinished(title, spec, number, size, expected, ledger, alerts, look))
                    time.sleep(TICK_SECONDS)
        finally:
            thread.stop()
        run.sent = thread.finished
        first_call = ledger.sent[low]
        if not math.isnan(first_call):
            run.started = first_call  # when the first PutRecords of the phase began
        self.sampler.sample()
        cpu_after = self.sampler.cpu_by_role()
        run.cpu = {role: cpu_end.get(role, 0.0) - cpu_before.get(role, 0.0) for role in cpu_after}
        run.read_cpu = {role: cpu_after[role] - cpu_end.get(role, 0.0) for role in cpu_after}
        return run

    @staticmethod
    def _complete(run: fig.PhaseRun, goal: Goal, number: int, ledger: TickLedger, alerts: AlertLedger, watch: Watch,
                  last_stage: LogWatcher | None) -> bool:
        """Whether what was read shows the phase done: every tick stored, every alert received and,
        for a flow without alerts, its last function past the stream's last record."""
        if ledger.stored_per_phase[number] < goal.high - goal.low or alerts.received_per_phase[number] < goal.alerts:
            return False
        if last_stage is None:
            return True
        sequence = watch.stream.last_sequence
        if sequence is None:
            return False
        if last_stage.logged_at(sequence) is None:
            last_stage.poll()
        run.last_stage = last_stage.logged_at(sequence)
        return run.last_stage is not None

    def _unfinished(self, title: str, spec: FlowSpec, number: int, size: int, expected: int, ledger: TickLedger,
                    alerts: AlertLedger, look: Look) -> str:
        sent, stored = ledger.sent_per_phase[number], ledger.stored_per_phase[number]
        writing = f" (read after the flow; at least being written: {look.writing}/{size})" if look.writing else ""
        position = "" if look.position is None else f"; the table's stream holds {look.position} records"
        got = f", alerts {alerts.received_per_phase[number] + look.arrived}/{expected}" if spec.queue_url else ""
        stage = "" if look.logged is None else f"; the last function logged {look.logged} records"
        return (f"{title} did not finish within {self.options.timeout:.0f}s: sent {sent}/{size}, stored {stored}/{size}"
                f"{writing}{position}{got}{stage}; --timeout waits longer (engine log: {self.engine.log_path})")

    # -- figures ----------------------------------------------------------------------------

    def _figures(self, aws: AwsContext, flows: list[fig.FlowRun], sampler: ProcessSampler, origin: float,
                 started_at: datetime) -> dict[str, Any]:
        return fig.assemble(
            flows, options=self.options.as_dict(), started=started_at.isoformat(timespec="seconds"),
            engine=aws.engine.name, roles=sampler.figures() if sampler.available else None,
            samples=sampler.samples, origin=origin, end=time.time())


def run_bench(settings: Settings, options: BenchOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the whole bench and return its figures (see bench.report for what they hold)."""
    return Bench(settings, options, console or Console(stderr=True)).run()


__all__ = ["BenchError", "run_bench"]
