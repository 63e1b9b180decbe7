"""The bench's figures document, its JSON and SVG files, and the console report, from a run made up
by hand (no engine): what each file holds and where it goes."""

import io
import json
from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest
from rich.console import Console

from bench.figures import FlowRun, PhaseRun, assemble
from bench.ledger import AlertLedger, Layout, TickLedger
from bench.procs import RoleFigures, Sample
from bench.report import print_report, stamp, write_json, write_outputs, write_svg
from bench.runner import START
from stockpipe.producer.sources import SyntheticMarket

MARKET = SyntheticMarket(("AAPL", "MSFT"), seed=5, start=START)
T0 = 1_800_000_000.0
SVG = "{http://www.w3.org/2000/svg}"


def flow(label, ticks, per_second, phases=(("run", None),), alerts=None, publishes=True, last_stage=False):
    """A flow whose ticks were sent at T0 + i/per_second / 2 and stored 100 ms later, one phase after another."""
    size = ticks // len(phases)
    starts = [i * size for i in range(len(phases))]
    ledger = TickLedger(Layout(MARKET), size * len(phases), starts)
    runs = []
    for number, (name, rate) in enumerate(phases):
        first = starts[number]
        runs.append(PhaseRun(name, size, rate, started=T0 + first / per_second / 2, cpu={"engine": 1.5}, looks=40,
                             reads=1, read_seconds=0.25, read_cpu={"engine": 0.2, "bench": 0.1}))
        for offset, tick in enumerate(list(MARKET.ticks(first + size))[first:]):
            sent = T0 + (first + offset) / per_second / 2
            ledger.mark_sent(first + offset, 1, sent)
            ledger.mark_stored(tick.symbol, tick.timestamp, sent + 0.1)
        runs[-1].sent = T0 + (first + size) / per_second / 2
        if last_stage:
            runs[-1].last_stage = T0 + (first + size) / per_second / 2 + 0.2
    book = AlertLedger(alerts or {}, ledger.phase_of, len(phases))
    for alert_id, index in (alerts or {}).items():
        book.mark(alert_id, ledger.sent[index] + 0.15)
    return FlowRun(label, 100, 100, ledger, book, runs, publishes=publishes, last_stage_logged=last_stage)


def document(soak=False, paced=False):
    alerts = {"AAPL#2026-01-05T14:30:05.000Z#BUY": 210 if paced else 10}  # paced: in the run, after the warm-up
    ours_phases = (("warmup", 10.0), ("before", 10.0), ("push", None), ("after", 10.0)) if soak else (("run", None),)
    ceiling_phases = (("run", None),)
    if paced:
        ours_phases = ceiling_phases = (("warmup", 1000.0), ("run", 1000.0))
    flows = [flow("ceiling", 400, 4000, ceiling_phases, publishes=False, last_stage=True),
             flow("naive", 40, 20, alerts={}, last_stage=True),
             flow("ours", 400, 1000, ours_phases, alerts=alerts)]
    samples = [Sample(T0 + i, {"engine": 100.0 + i, "bench": 80.0, "process-ticks": 60.0}) for i in range(3)]
    roles = {"engine": RoleFigures(12.5, 150.0, 101.0, 1), "process-ticks": RoleFigures(3.0, 70.0, 60.0, 2),
             "bench": RoleFigures(2.0, 90.0, 80.0, 1)}
    return assemble(flows, options={"rate": 1000.0 if paced else None, "symbol_count": 2, "soak": soak}, started="2026-11-30T07:00:00+00:00",
                    engine="MiniStack 1.5.33", roles=roles, samples=samples, origin=T0 - 1, end=T0 + 3, cpus=2)


def test_the_document_holds_each_flow_its_ratios_processes_memory_and_series():
    figures = document()
    ours, ceiling = figures["flows"]["ours"], figures["flows"]["ceiling"]
    assert ours["main"]["stored_per_s"]["overall"] == pytest.approx(400 / 0.2995, rel=0.01)
    assert ours["main"]["latency_ms"]["stored"]["p50"] == 100.0
    assert ours["main"]["latency_ms"]["alert"]["p99"] == 150.0
    assert ours["main"]["complete"] and ceiling["main"]["complete"]
    assert ours["alerts"] == {"publishes": True, "drained_while_running": False, "expected": 1, "received": 1,
                              "duplicates": 0, "unexpected": 0, "missing": 0, "missing_examples": [],
                              "unexpected_examples": []}
    assert ours["main"]["watching"] == {"looks": 40, "reads": 1, "read_seconds": 0.25,
                                        "read_cpu_seconds": {"bench": 0.1, "engine": 0.2}}
    assert ceiling["main"]["last_stage_seconds"] == pytest.approx(400 / 8000 + 0.2, abs=0.001)
    assert figures["ratios"]["ours_to_ceiling"] == pytest.approx(
        ours["main"]["end_to_end_per_s"] / ceiling["main"]["end_to_end_per_s"], rel=0.01)
    assert figures["ratios"]["ours_to_naive"] > 1
    assert figures["processes"]["engine"] == {"cpu_seconds": 12.5, "peak_rss_mb": 150.0, "processes": 1}
    assert list(figures["processes"]) == ["engine", "process-ticks", "bench"]
    assert figures["memory"]["engine_end_mb"] == 102.0
    line = figures["timeline"]
    assert len(line["t"]) == len(line["stored_per_s"]["ours"]) == len(line["latency_ms"]["stored_p50"])
    assert sum(line["stored_per_s"]["ours"]) * line["interval_seconds"] == pytest.approx(400)
    assert line["memory_mb"]["workers"] == [60.0, 60.0, 60.0]
    assert figures["soak"] is None


def test_a_ceiling_whose_last_function_never_logged_the_last_record_is_not_complete():
    ceiling = flow("ceiling", 100, 1000, publishes=False, last_stage=True)
    ceiling.phases[0].last_stage = None
    figures = assemble([ceiling, flow("ours", 100, 1000)], options={}, started="", engine="", roles=None,
                       samples=[], origin=T0, end=T0 + 1)
    assert not figures["flows"]["ceiling"]["main"]["complete"]
    assert figures["flows"]["ceiling"]["main"]["end_to_end_per_s"] is None
    assert figures["ratios"]["ours_to_ceiling"] is None
    assert figures["processes"] is None and figures["memory"] is None


def test_a_soak_compares_latency_before_and_after_the_push():
    figures = document(soak=True)
    assert figures["flows"]["ours"]["main_phase"] == "push"
    assert figures["soak"]["push_ticks"] == 100
    assert figures["soak"]["stored_p50_ratio"] == 1.0
    assert figures["soak"]["before"]["stored"]["p50"] == 100.0


def test_the_json_file_and_latest_json_hold_the_whole_document(tmp_path):
    figures = document()
    path = write_json(figures, tmp_path / "out", "bench-x")
    assert path == tmp_path / "out" / "bench-x.json"
    assert json.loads(path.read_text()) == json.loads((tmp_path / "out" / "latest.json").read_text()) == figures


def test_the_chart_is_an_svg_beside_latest_svg(tmp_path):
    path = write_svg(document(soak=True), tmp_path, "bench-x")
    root = ElementTree.parse(path).getroot()  # well-formed XML
    assert root.tag == f"{SVG}svg"
    assert (tmp_path / "latest.svg").read_bytes() == path.read_bytes()


def test_the_chart_draws_every_flow_our_latency_and_the_memory_with_each_phase_named(tmp_path):
    root = ElementTree.parse(write_svg(document(soak=True), tmp_path, "bench-x")).getroot()
    texts = [element.text for element in root.iter(f"{SVG}text")]
    for label in ("ceiling: stored", "naive: stored", "ours: stored", "ours: sent", "ours: stored p50",
                  "ours: stored p99", "ours: alert p50", "engine", "bench", "Lambda workers (all)",
                  "ours warmup", "ours push", "ours after", "ceiling", "naive", "latency, ms (log scale)",
                  "seconds since the bench's engine was up"):
        assert label in texts, label
    assert any(text and text.startswith("make bench 2026-11-30T07:00:00+00:00: 400 ticks") for text in texts)
    # Each of the 3 flows' stored and sent rates, our 3 latency series, 3 memory series: a line each at least.
    assert len(list(root.iter(f"{SVG}polyline"))) >= 6 + 3 + 3


def test_the_chart_axes_have_round_ticks():
    from bench.chart import linear_ticks, log_ticks

    assert linear_ticks(1880) == [0, 500, 1000, 1500, 2000]
    assert linear_ticks(4.2) == [0, 1, 2, 3, 4, 5]
    assert linear_ticks(0) == [0, 1]
    assert log_ticks(12, 34_000) == [10, 100, 1000, 10_000, 100_000]
    assert log_ticks(12, 340) == [10, 20, 50, 100, 200, 500]
    assert log_ticks(100, 150) == [100, 200]
    assert log_ticks(100, 100) == [100, 200]


def test_outputs_are_named_by_the_time_of_the_run(tmp_path):
    moment = datetime(2026, 11, 30, 7, 5, 9, tzinfo=UTC)
    assert stamp(moment) == "20261130T070509Z"
    json_path, chart_path = write_outputs(document(), tmp_path, moment)
    assert (json_path.name, chart_path.name) == ("bench-20261130T070509Z.json", "bench-20261130T070509Z.svg")


def test_the_console_report_gives_each_flow_and_the_ratios():
    out = io.StringIO()
    print_report(document(soak=True), Console(file=out, width=200))
    text = out.getvalue()
    for expected in ("ceiling", "naive", "ours push", "sent->stored p99, ms", "alerts dup/missing/unexp.",
                     "ours/ceiling", "ours/naive", "goal 30x", "soak: after 100 ticks pushed", "process-ticks",
                     "watching ours: 160 cheap looks while it ran; 4 full read(s) of its stream and queue after, "
                     "1.0 s (engine 0.8 CPU s, bench 0.4 CPU s)"):
        assert expected in text


def test_a_paced_report_sets_our_latency_beside_the_ceilings_at_the_same_pace():
    from bench.report import summary_lines

    lines = summary_lines(document(paced=True))
    assert lines[0] == ("ours: 1,002 ticks/s end to end, sent -> stored p50/p99 100/100 ms, sent -> alert 150/150 ms; "
                        "the engine ceiling at the same pace: sent -> stored 100/100 ms")
    assert "both flows were paced at 1000 ticks/s: a rate is the pace, not a ceiling" in lines
    assert "ours was paced" not in " ".join(summary_lines(document()))


def test_the_busy_line_gives_each_process_in_cores_while_the_main_phase_ran():
    from bench.report import busy_line

    phase = {"seconds": 20.0, "cpu_seconds": {"engine": 16.0, "process-ticks": 5.0, "trend-alerts": 2.0, "bench": 3.0}}
    assert busy_line(phase) == ("busy while ours ran, in cores: engine 0.80, process-ticks 0.25, trend-alerts 0.10 "
                                "(the engine, one process under one interpreter lock, tops out near 1)")
    assert busy_line({"seconds": None, "cpu_seconds": {}}) is None
