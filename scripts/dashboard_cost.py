#!/usr/bin/env python3
"""What the dashboard costs after a while of `stockpipe demo`: its CPU and memory, the engine's, and
what each of its looks asks of the engine.

    .venv/bin/python scripts/dashboard_cost.py                  # 10 minutes, figures at the end
    .venv/bin/python scripts/dashboard_cost.py --minutes 1 --json
    .venv/bin/python scripts/dashboard_cost.py --screenshot docs/dashboard.png   # and a picture of the page

It runs the demo as a user does (its own engine, init, the producer at PRODUCER_RATE, the dashboard
as a child process), keeps one client on the dashboard's event stream the whole time (as an open
page would), and reads the processes' CPU time and memory from /proc (Linux) every few seconds.
The screenshot needs Chromium (apt-get install -y chromium) and Playwright (make install).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockpipe.engine import free_port

ROOT = Path(__file__).resolve().parent.parent
# The /proc sampler is the bench's (bench/, a folder of this repository, not an installed package).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.procs import descendants, read_process  # noqa: E402

SAMPLE_SECONDS = 5.0
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Stream:
    """One client on the dashboard's event stream, as an open page."""

    url: str
    events: int = 0
    bytes: int = 0
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with urllib.request.urlopen(f"{self.url}/events", timeout=60) as answer:
            for line in answer:
                self.bytes += len(line)
                if line.startswith(b"event: "):
                    self.events += 1
                if self.stop.is_set():
                    return


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/health", timeout=5) as answer:
        found: dict[str, Any] = json.load(answer)
        return found


def screenshot(url: str, path: str) -> str:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        return "no screenshot: no Chromium here (apt-get install -y chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_function("() => document.querySelectorAll('#charts .chart .main-svg').length > 0", timeout=30_000)
        page.wait_for_timeout(3000)  # a few updates: the alert list and the lag chart fill in
        page.screenshot(path=path, full_page=True)
        browser.close()
    return f"screenshot: {path}"


def measure(minutes: float, shot: str | None) -> dict[str, Any]:
    seconds = minutes * 60
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    env.update(ENGINE_PORT=str(free_port()), DASHBOARD_PORT=str(free_port()))
    demo = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "demo", "--seconds", str(seconds + 60)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert demo.stdout is not None
    url = ""
    for line in demo.stdout:
        found = re.match(r"dashboard: (http://\S+)", line)
        if found:
            url = found[1]
            break
        if line.startswith("dashboard not started"):
            demo.send_signal(signal.SIGINT)
            raise SystemExit(f"dashboard_cost: {line.strip()}")
    if not url:
        raise SystemExit(f"dashboard_cost: the demo ended before its dashboard started (exit {demo.wait()})")
    threading.Thread(target=lambda: [None for _ in demo.stdout or ()], daemon=True).start()  # keep the pipe drained
    processes = {command_line(pid): pid for pid in descendants(demo.pid)}
    dashboard = next(pid for line, pid in processes.items() if " dashboard " in f"{line} ")
    engine = next(pid for line, pid in processes.items() if "-m stockpipe.engine" in line)
    stream = Stream(url)
    stream.start()
    began = time.monotonic()
    samples: list[dict[str, Any]] = []
    looks: list[dict[str, Any]] = []
    try:
        while time.monotonic() - began < seconds:
            time.sleep(SAMPLE_SECONDS)
            mine, theirs = read_process(dashboard), read_process(engine)
            if mine is None or theirs is None:
                raise SystemExit("dashboard_cost: the dashboard or the engine is gone")
            samples.append({"t": time.monotonic() - began, "cpu": mine.cpu, "rss": mine.rss_mb,
                            "peak": mine.peak_mb, "engine_cpu": theirs.cpu, "engine_rss": theirs.rss_mb})
            looks.append(health(url)["look"])
        final = health(url)
        picture = screenshot(url, shot) if shot else ""
    finally:
        stream.stop.set()
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
    last, minute_ago = samples[-1], next(s for s in reversed(samples) if s["t"] <= samples[-1]["t"] - 60)
    first_minute = next(s for s in samples if s["t"] >= 60)
    span = last["t"] - minute_ago["t"]
    return {
        "minutes": round(last["t"] / 60, 1),
        "dashboard": {
            "cpu_seconds": round(last["cpu"], 1),
            "cpu_percent_whole_run": round(100 * last["cpu"] / last["t"], 2),
            "cpu_percent_last_minute": round(100 * (last["cpu"] - minute_ago["cpu"]) / span, 2),
            "rss_mb_after_1_minute": round(first_minute["rss"], 1),
            "rss_mb_at_end": round(last["rss"], 1),
            "peak_rss_mb": round(max(sample["peak"] for sample in samples), 1),
            "requests_per_look": round(sum(look["requests"] for look in looks) / len(looks), 1),
            "look_ms_median": sorted(look["ms"] for look in looks)[len(looks) // 2],
            "events_sent": stream.events,
            "event_bytes_per_second": round(stream.bytes / last["t"]),
        },
        "engine": {
            "cpu_percent_last_minute": round(100 * (last["engine_cpu"] - minute_ago["engine_cpu"]) / span, 1),
            "rss_mb_at_end": round(last["engine_rss"], 1),
        },
        "counts_at_end": final["counts"],
        "lag_at_end": {key: value for key, value in final["lag"].items() if key != "source"},
        "screenshot": picture,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the demo runs (default 10)")
    parser.add_argument("--screenshot", help="save a picture of the page at the end (needs Chromium)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        raise SystemExit("dashboard_cost: reads the processes' CPU and memory from /proc (Linux only)")
    if args.minutes < 2:
        raise SystemExit("dashboard_cost: --minutes 2 at least (the figures compare the last minute with the first)")
    figures = measure(args.minutes, args.screenshot)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    d, e = figures["dashboard"], figures["engine"]
    print(f"after {figures['minutes']} minutes of the demo (counts: {figures['counts_at_end']})")
    print(f"  dashboard  CPU {d['cpu_seconds']} s in all: {d['cpu_percent_whole_run']} % of a core over the run, "
          f"{d['cpu_percent_last_minute']} % in the last minute")
    print(f"             memory {d['rss_mb_after_1_minute']} MB after 1 minute, {d['rss_mb_at_end']} MB at the end, "
          f"peak {d['peak_rss_mb']} MB")
    print(f"             {d['requests_per_look']} requests per look (median {d['look_ms_median']} ms); "
          f"{d['events_sent']} events, {d['event_bytes_per_second']} bytes/s to one open page")
    print(f"  engine     CPU {e['cpu_percent_last_minute']} % of a core in the last minute, memory {e['rss_mb_at_end']} MB")
    print(f"  lag        {figures['lag_at_end']}")
    if figures["screenshot"]:
        print(f"  {figures['screenshot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
