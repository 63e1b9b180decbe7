"""`stockpipe demo`: the embedded engine, init, the synthetic producer, a live view in the terminal
and the dashboard in the browser (`stockpipe dashboard`, a child process).

Everything it starts it stops again, on Ctrl-C or after --seconds. The terminal view reads the alerts
from a queue of its own (DEMO_QUEUE_NAME), so the dashboard and `stockpipe alerts` see every one too.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from rich.console import Console, Group, JustifyMethod
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.context import AwsContext
from stockpipe.aws.errors import AwsError, explain, translated
from stockpipe.aws.queue import ingest_sender
from stockpipe.charts import sparkline
from stockpipe.dashboard.process import DashboardProcess, missing_packages
from stockpipe.domain import sma
from stockpipe.domain.thresholds import Thresholds
from stockpipe.engine import EmbeddedEngine, free_port, port_in_use
from stockpipe.producer import produce, synthetic
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings, parse_symbols
from stockpipe.status import Adapters, PipelineStatus

HISTORY = 60
SIGNAL_STYLE = {"BUY": "bold green", "SELL": "bold red", "ANOMALY": "bold yellow", "THRESHOLD": "bold cyan"}
# Without ALERT_THRESHOLD the demo sets one per symbol this far above its synthetic base price: two
# thirds of the wave's amplitude, so that each symbol crosses it about once a wave (40 ticks).
DEMO_THRESHOLD_ABOVE = 0.02


@dataclass
class DemoState:
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    first_alert_after: float | None = None
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=12))
    alert_count: int = 0
    status: PipelineStatus | None = None
    producer_error: str | None = None
    pipeline_error: str | None = None  # the latest look at the pipeline that failed (resources removed ...)


def _alert_line(alert: dict[str, Any]) -> Text:
    signal = str(alert.get("signal", "?"))
    line = Text()
    line.append(str(alert.get("timestamp", ""))[11:19] + " ", style="dim")
    line.append(f"{signal:<10}", style=SIGNAL_STYLE.get(signal, ""))
    line.append(f"{alert.get('symbol', '?'):<6} {float(alert.get('price', 0)):>9.2f}  ")
    line.append(str(alert.get("message", "")))
    return line


def _dashboard(state: DemoState, adapters: Adapters, symbols: tuple[str, ...], engine_url: str,
               page: str | None) -> Group:
    s = state.status
    elapsed = time.monotonic() - state.started
    flow = Text()
    flow.append(f"sent {state.sent}", style="bold")
    if s:
        flow.append(f"  →  stored {s.table_items}  →  raw archived in {s.raw_objects} S3 objects")
        flow.append(f"   dead letters {s.dead_letters}", style="red" if s.dead_letters else "dim")
        flow.append(f"   alerts {s.alerts_sent}", style="bold magenta")
    if state.first_alert_after is not None:
        flow.append(f"   first alert after {state.first_alert_after:.1f}s", style="dim")
    table = Table(expand=True, box=None, header_style="bold")
    short, long = adapters.settings.sma_short, adapters.settings.sma_long
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("symbol", "left"), ("price", "right"), ("chg %", "right"), (f"SMA-{short}", "right"), (f"SMA-{long}", "right"),
        (f"last {HISTORY} ticks", "left"), ("trend", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)
    for symbol in symbols:
        items = adapters.table.latest(symbol, max(HISTORY, long))  # enough for the long average too
        if not items:
            table.add_row(symbol, "…", "", "", "", "", "")
            continue
        prices = [item["price"] for item in items]
        fast, slow = sma(prices, short), sma(prices, long)
        change = items[-1].get("change_percent")
        trend = Text("—", style="dim")
        if fast is not None and slow is not None:
            trend = Text("▲ up", style="green") if fast > slow else Text("▼ down", style="red")
        table.add_row(
            symbol,
            f"{prices[-1]:.2f}",
            Text(f"{change:+.2f}", style="yellow" if items[-1].get("anomaly") else "") if change is not None else "",
            f"{fast:.2f}" if fast is not None else "…",
            f"{slow:.2f}" if slow is not None else "…",
            Text(sparkline([float(p) for p in prices[-HISTORY:]]), style="cyan"),
            trend,
        )
    alerts = Group(*(_alert_line(a) for a in reversed(state.alerts))) if state.alerts else Text("waiting…", style="dim")
    shown = f" — dashboard {page}" if page else ""
    title = (f"stockpipe demo — engine {engine_url}{shown} — {int(elapsed // 60):02d}:{int(elapsed % 60):02d}"
             " — Ctrl-C stops")
    parts: list[Any] = [Panel(Group(flow, Text(), table), title=title, title_align="left"),
                        Panel(alerts, title="alerts (SNS → SQS)", title_align="left")]
    if state.producer_error:
        parts.append(Text(f"producer stopped: {state.producer_error}", style="bold red"))
    if state.pipeline_error:
        parts.append(Text(f"cannot read the pipeline: {state.pipeline_error}", style="bold red"))
    return Group(*parts)


def demo_thresholds(symbols: tuple[str, ...], seed: int) -> Thresholds:
    """A price threshold per symbol that its synthetic series crosses about once a wave."""
    market = SyntheticMarket(symbols, seed)
    return Thresholds(by_symbol=tuple(sorted(
        (symbol, Decimal(str(market.base_price(symbol) * (1 + DEMO_THRESHOLD_ABOVE))).quantize(Decimal("0.01")))
        for symbol in symbols)))


def second_terminal(engine_url: str, chosen_threshold: Thresholds | None) -> str:
    """The line another terminal pastes to work with this demo's pipeline: its engine, and the price
    alert the demo chose itself (so that `stockpipe plan` there finds every resource unchanged)."""
    line = f"export AWS_ENDPOINT_URL={engine_url}"
    return f"{line} ALERT_THRESHOLD={chosen_threshold}" if chosen_threshold else line


def run_demo(settings: Settings, *, seconds: float | None = None, rate: float | None = None,
             symbols: str | None = None) -> int:
    demo = Demo(settings, parse_symbols(symbols) if symbols else settings.producer_symbols)
    try:
        demo.start(rate)
        demo.watch(seconds)
    except KeyboardInterrupt:
        demo.console.print("stopping …")
    finally:
        demo.stop()
    return demo.summary(seconds)


class Demo:
    """What `stockpipe demo` starts (an engine, the stack, the dashboard, the producer), watches, and
    stops again."""

    def __init__(self, settings: Settings, symbols: tuple[str, ...]) -> None:
        self.console = Console()
        self.interactive = self.console.is_terminal
        if not self.interactive:
            self.console = Console(soft_wrap=True)  # a log, not a screen: one line per event
        self.settings, self.symbols = settings, symbols
        port = settings.engine_port
        if port_in_use(port):
            port = free_port()
            self.console.print(f"port {settings.engine_port} is busy; the demo engine uses {port} instead")
        self.engine = EmbeddedEngine(port, region=settings.region)
        self.stopping = threading.Event()
        self.state = DemoState()
        self.producer: threading.Thread | None = None
        self.page: DashboardProcess | None = None

    def start(self, rate: float | None) -> None:
        console = self.console
        console.print(f"starting the embedded AWS engine (MiniStack) on port {self.engine.port} …")
        self.engine.start()
        # The demo's own engine, whatever AWS_ENDPOINT_URL says: the context carries it, not os.environ.
        settings = replace(self.settings, endpoint_url=self.engine.url)
        chosen_threshold: Thresholds | None = None
        if not settings.alert_threshold:  # a price alert the synthetic market shows (seed 004's rule)
            chosen_threshold = demo_thresholds(self.symbols, settings.producer_seed)
            settings = replace(settings, alert_threshold=chosen_threshold)
            console.print(f"price alerts at ALERT_THRESHOLD={settings.alert_threshold} (set ALERT_THRESHOLD to "
                          "choose others)", highlight=False)
        self.settings = settings
        self.aws = AwsContext(settings)
        from stockpipe.provision import Stack

        Stack(self.aws, report=lambda line: console.print(line, highlight=False)).up()
        self.adapters = Adapters(self.aws)
        self.inbox = AlertInbox(self.aws, self.aws.queue_url(settings.demo_queue_name))
        self.page = _start_dashboard(console, self.engine.url, settings)
        sender = ingest_sender(self.aws)
        pace = rate or settings.producer_rate
        self.state.started = time.monotonic()
        self.producer = threading.Thread(target=self._produce, args=(sender, pace), name="producer", daemon=True)
        self.producer.start()
        console.print(f"streaming synthetic ticks for {', '.join(self.symbols)} at {pace:g}/s into {sender.target} "
                      f"(INGEST={settings.ingest}) …", highlight=False)
        console.print("another terminal, in this folder, sees this pipeline once it has run:", highlight=False)
        console.print(f"  {second_terminal(self.engine.url, chosen_threshold)}", highlight=False, soft_wrap=True)

    def _produce(self, sender: Any, pace: float) -> None:
        def on_sent(stats: Any) -> None:
            self.state.sent = stats.sent

        try:
            produce(synthetic(self.symbols, self.settings.producer_seed, None, rate=pace), sender, rate=pace,
                    stop=self.stopping, on_sent=on_sent)
        except Exception as error:  # shown on the dashboard; the demo keeps what it has
            self.state.producer_error = f"{type(error).__name__}: {error}"

    def watch(self, seconds: float | None) -> None:
        """The alerts and the counts, live in a terminal (a line every 5 s in a log), until ``seconds``."""
        state = self.state
        deadline = None if seconds is None else state.started + seconds
        last_line = 0.0
        with Live(console=self.console, refresh_per_second=4, transient=False) if self.interactive else _NoLive() as live:
            while deadline is None or time.monotonic() < deadline:
                for alert in self._look():
                    if state.first_alert_after is None:
                        state.first_alert_after = time.monotonic() - state.started
                    state.alerts.append(alert)
                    state.alert_count += 1
                    if not self.interactive:
                        self.console.print(_alert_line(alert))
                if self.interactive:
                    live.update(_dashboard(state, self.adapters, self.symbols, self.engine.url,
                                           self.page.url if self.page else None))
                elif time.monotonic() - last_line >= 5 and state.status is not None:
                    last_line = time.monotonic()
                    s = state.status
                    self.console.print(f"[{time.monotonic() - state.started:5.0f}s] sent {state.sent}  stored "
                                       f"{s.table_items}  raw objects {s.raw_objects}  dead letters {s.dead_letters}  "
                                       f"alerts {s.alerts_sent}")

    def _look(self) -> list[dict[str, Any]]:
        """The alerts received in the last second, and the counts (kept in the state)."""
        try:
            with translated():
                received = self.inbox.receive(wait_seconds=1)
                self.state.status = self.adapters.status(full=False)
            self.state.pipeline_error = None
            return received
        except AwsError as error:
            # Someone removed resources (stockpipe init --teardown in another terminal): say so and
            # keep going, so that Ctrl-C still stops everything this demo started.
            message = explain(error, self.aws.target_name, self.aws.region) or f"{error.kind}: {error}"
            if message != self.state.pipeline_error and not self.interactive:
                self.console.print(f"cannot read the pipeline: {message}", highlight=False)
            self.state.pipeline_error = message
            time.sleep(1)
            return []

    def stop(self) -> None:
        self.stopping.set()
        if self.producer is not None:
            self.producer.join(timeout=10)
        if self.page is not None:
            self.page.stop()
        self.engine.stop()

    def summary(self, seconds: float | None) -> int:
        """The closing line, and the exit code: 1 when the producer failed or no alert came in time."""
        state = self.state
        summary = f"demo ended: {state.sent} ticks sent, {state.alert_count} alerts received"
        if state.first_alert_after is not None:
            summary += f", first alert {state.first_alert_after:.1f}s after streaming began"
        self.console.print(summary)
        if state.producer_error:
            print(f"stockpipe demo: error: producer stopped: {state.producer_error}", file=sys.stderr)
            return 1
        if seconds is not None and state.alert_count == 0:
            print(f"stockpipe demo: error: no alert within {seconds:g}s (engine log: {self.engine.log_path})",
                  file=sys.stderr)
            return 1
        return 0


def _start_dashboard(console: Console, engine_url: str, settings: Settings) -> DashboardProcess | None:
    """The dashboard on DASHBOARD_PORT (a free port when it is taken), or one line saying why not."""
    missing = missing_packages()
    if missing:
        console.print(f"dashboard not started: {', '.join(missing)} not installed "
                      "(pip install 'stockpipe[dashboard]'; make install does it)", highlight=False)
        return None
    page = DashboardProcess(engine_url, settings.dashboard_host, settings.dashboard_port)
    if page.moved_from is not None:
        console.print(f"port {page.moved_from} is busy; the dashboard uses {page.port} instead", highlight=False)
    if not page.start():
        console.print(f"dashboard not started: it did not answer (log: {page.log_path})", highlight=False)
        return None
    console.print(f"dashboard: {page.url}  (open it in a browser)", highlight=False)
    return page


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, renderable: Any) -> None:
        return None
