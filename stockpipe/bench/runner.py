"""One bench run: its own engine, the engine ceiling, the naive flow if asked, then our pipeline
(with the soak's three phases if asked), each followed tick by tick to the end, and the figures."""

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

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender
from stockpipe.bench import figures as fig
from stockpipe.bench.deploy import Deployer, Flow
from stockpipe.bench.follow import AlertFollower, StreamFollower, logged_at
from stockpipe.bench.ledger import AlertLedger, Layout, TickLedger, expected_alerts, per_symbol_counts
from stockpipe.bench.naive_trend import LONG, crossing
from stockpipe.bench.options import NAIVE_BATCH_SIZE, BenchOptions
from stockpipe.bench.procs import ProcessSampler
from stockpipe.bench.sending import SenderThread
from stockpipe.domain import Tick
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.errors import StockpipeError
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings, unique_names

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
# How often the main thread looks at the counts, and at the last function's log (flows that need it).
POLL_SECONDS, LOG_POLL_SECONDS = 0.1, 0.25
# After the last flow completes, how long the followers keep reading, so that a late repeat or an
# unexpected alert is still counted.
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

    def our_phases(self) -> list[Phase]:
        o = self.options
        if not o.soak:
            return [Phase("run", o.ticks, o.rate)]
        # The warm-up takes the functions' cold starts out of "before": the soak compares warm with warm.
        warmup = max(1, round(o.soak_rate * WARMUP_SECONDS))
        return [Phase("warmup", warmup, o.soak_rate), Phase("before", o.soak_ticks, o.soak_rate),
                Phase("push", o.ticks, o.rate), Phase("after", o.soak_ticks, o.soak_rate)]

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
        ceiling = deployer.ceiling(settings.kinesis_batch_size, settings.streams_batch_size)
        self.console.print(f"ceiling flow ready in {time.monotonic() - t:.1f}s")
        flows.append(self._follow(aws, self._spec(ceiling, settings, [Phase("run", o.ceiling_ticks, None)], {},
                                                  "Kinesis -> BatchWriteItem -> table stream -> log one line")))
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
        ours = FlowSpec("ours", "the pipeline as init deploys it", settings.stream_name, settings.table_name,
                        self.market(), phases, ours_expected, settings.kinesis_batch_size,
                        settings.streams_batch_size, queue_url=aws.queue_url(settings.alerts_queue_name))
        flows.append(self._follow(aws, ours))
        time.sleep(SETTLE_SECONDS)
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
                        settings.kinesis_batch_size, settings.streams_batch_size, queue_url=flow.queue_url,
                        last_stage_group=flow.stage2_log_group)

    # -- one flow ---------------------------------------------------------------------------

    def _follow(self, aws: AwsContext, spec: FlowSpec) -> fig.FlowRun:
        starts = [0]
        for phase in spec.phases[:-1]:
            starts.append(starts[-1] + phase.ticks)
        total = starts[-1] + spec.phases[-1].ticks
        ledger = TickLedger(Layout(spec.market), total, starts)
        alerts = AlertLedger(spec.expected, ledger.phase_of, len(spec.phases))
        stream = StreamFollower(aws, spec.table_name, ledger)
        followers: list[StreamFollower | AlertFollower] = [stream]
        if spec.queue_url:
            followers.append(AlertFollower(aws, spec.queue_url, alerts))
        run = fig.FlowRun(spec.label, spec.kinesis_batch, spec.streams_batch, ledger, alerts, [],
                          publishes=spec.queue_url is not None, last_stage_logged=spec.last_stage_group is not None,
                          description=spec.description)
        for follower in followers:
            follower.start()
        ticks = spec.market.ticks()
        sender = KinesisSender(aws, spec.stream_name)
        try:
            for number, phase in enumerate(spec.phases):
                last = number == len(spec.phases) - 1
                run.phases.append(self._phase(aws, spec, number, phase, ledger, alerts, followers, ticks, sender,
                                              spec.last_stage_group if last else None, stream))
        finally:
            for follower in followers:
                follower.stop()
        return run

    def _phase(self, aws: AwsContext, spec: FlowSpec, number: int, phase: Phase, ledger: TickLedger,
               alerts: AlertLedger, followers: list[StreamFollower | AlertFollower], ticks: Iterator[Tick],
               sender: KinesisSender, last_stage_group: str | None, stream: StreamFollower) -> fig.PhaseRun:
        assert self.sampler is not None
        self.sampler.sample()
        cpu_before = self.sampler.cpu_by_role()
        title = spec.label if len(spec.phases) == 1 else f"{spec.label} {phase.name}"
        size, expected = ledger.phase_size(number), alerts.expected_per_phase[number]
        thread = SenderThread(ticks, sender.send, ledger, ledger.phase_starts[number], size, phase.rate)
        run = fig.PhaseRun(phase.name, size, phase.rate, started=time.time())
        deadline = time.monotonic() + self.options.timeout
        logs = aws.client("logs")
        next_log_look = 0.0
        thread.start()
        try:
            with Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=self.console, transient=False) as progress:
                sent_bar = progress.add_task(f"{title}: sent", total=size)
                stored_bar = progress.add_task(f"{title}: stored", total=size)
                alerts_bar = progress.add_task(f"{title}: alerts", total=expected) if spec.queue_url else None
                while True:
                    for worker in (thread, *followers):
                        if worker.error is not None:
                            raise BenchError(f"{title}: {worker.name} failed: {type(worker.error).__name__}: "
                                             f"{worker.error}") from worker.error
                    sent, stored = ledger.sent_per_phase[number], ledger.stored_per_phase[number]
                    received = alerts.received_per_phase[number]
                    progress.update(sent_bar, completed=sent)
                    progress.update(stored_bar, completed=stored)
                    if alerts_bar is not None:
                        progress.update(alerts_bar, completed=received)
                    done = sent >= size and stored >= size and received >= expected
                    if done and last_stage_group and stream.last_sequence:
                        if time.monotonic() >= next_log_look:
                            next_log_look = time.monotonic() + LOG_POLL_SECONDS
                            run.last_stage = logged_at(logs, last_stage_group, f"last {stream.last_sequence}")
                        done = run.last_stage is not None
                    if done:
                        break
                    if time.monotonic() > deadline:
                        thread.stop()
                        stage = ", last stage not past the last record" if (
                            sent >= size and stored >= size and received >= expected) else ""
                        got = f", alerts {received}/{expected}" if spec.queue_url else ""
                        raise BenchError(
                            f"{title} did not finish within {self.options.timeout:.0f}s: sent {sent}/{size}, stored "
                            f"{stored}/{size}{got}{stage}; --timeout waits longer (engine log: {self.engine.log_path})")
                    time.sleep(POLL_SECONDS)
        finally:
            thread.stop()
        run.sent = thread.finished
        first_call = ledger.sent[ledger.phase_starts[number]]
        if not math.isnan(first_call):
            run.started = first_call  # when the first PutRecords of the phase began
        self.sampler.sample()
        cpu_after = self.sampler.cpu_by_role()
        run.cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
        return run

    # -- figures ----------------------------------------------------------------------------

    def _figures(self, aws: AwsContext, flows: list[fig.FlowRun], sampler: ProcessSampler, origin: float,
                 started_at: datetime) -> dict[str, Any]:
        return fig.assemble(
            flows, options=self.options.as_dict(), started=started_at.isoformat(timespec="seconds"),
            engine=aws.engine.name, roles=sampler.figures() if sampler.available else None,
            samples=sampler.samples, origin=origin, end=time.time())


def run_bench(settings: Settings, options: BenchOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the whole bench and return its figures (see stockpipe.bench.report for what they hold)."""
    return Bench(settings, options, console or Console(stderr=True)).run()


__all__ = ["BenchError", "run_bench"]
