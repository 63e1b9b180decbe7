"""From what a run recorded (ledgers, phase marks, process samples) to the figures it reports: one
JSON-ready dict, which the console table, the JSON file and the chart all read. Pure: no clock, no AWS."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.ledger import AlertLedger, TickLedger
from bench.options import NAIVE_GOAL
from bench.procs import BENCH, ENGINE, RoleFigures, Sample
from bench.stats import (
    Latency,
    interval_for,
    per_interval,
    percentile_per_interval,
    percentiles_per_interval,
    rate,
    tenth_rates,
)

# Roles of the bench's processes that are not Lambda workers.
NOT_WORKERS = (ENGINE, BENCH)


@dataclass
class PhaseRun:
    """One phase of a flow as it ran: ``started`` is the first send, ``sent`` when the last PutRecords
    returned, ``last_stage`` when the flow's last function logged its last record (flows without
    alerts), ``cpu`` the CPU seconds each role used during the phase (up to the full read that found
    it done). Epoch seconds. ``looks``: cheap looks while it ran; ``reads``: full reads of its stream
    and queue (one, unless the looks said done too early); ``read_seconds`` and ``read_cpu``: what the
    last full read took, after the phase."""

    name: str
    ticks: int
    rate: float | None
    started: float
    sent: float | None = None
    last_stage: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    looks: int = 0
    reads: int = 0
    read_seconds: float | None = None
    read_cpu: dict[str, float] = field(default_factory=dict)


@dataclass
class FlowRun:
    label: str
    kinesis_batch: int
    streams_batch: int
    ledger: TickLedger
    alerts: AlertLedger
    phases: list[PhaseRun]
    publishes: bool = True  # whether the flow raises alerts at all
    last_stage_logged: bool = False  # done only once its last function logs the last record
    description: str = ""
    alerts_drained: bool = False  # the alert queue was drained while the flow ran (too many to read after)

    @property
    def main(self) -> int:
        """The phase whose figures the flow is judged by: the push of a soak, the run after a paced
        run's warm-up, else the only one."""
        names = [phase.name for phase in self.phases]
        return next((names.index(name) for name in ("push", "run") if name in names), 0)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def phase_figures(flow: FlowRun, number: int) -> dict[str, Any]:
    phase, ledger, alerts = flow.phases[number], flow.ledger, flow.alerts
    span = ledger.phase_range(number)
    stored = ledger.stored[span.start:span.stop]
    stored_at = _finite(stored)
    arrivals = [at for alert_id, at in alerts.received.items() if ledger.phase_of(alerts.expected[alert_id]) == number]
    ends = [t for t in (max(stored_at, default=math.nan), max(arrivals, default=math.nan),
                        phase.last_stage if phase.last_stage is not None else math.nan) if not math.isnan(t)]
    end = max(ends) if ends else None
    complete = (len(stored_at) == len(span) and len(arrivals) == alerts.expected_per_phase[number]
                and (phase.last_stage is not None or not flow.last_stage_logged or number < len(flow.phases) - 1))
    rates = tenth_rates(phase.started, stored)
    return {
        "phase": phase.name,
        "ticks": len(span),
        "requested_rate": phase.rate,
        "complete": complete,
        "seconds": None if end is None else round(end - phase.started, 3),
        "sent_per_s": None if phase.sent is None else rate(len(span), phase.sent - phase.started),
        "stored_per_s": asdict(rates),
        "end_to_end_per_s": rate(len(span), end - phase.started) if complete and end is not None else None,
        "latency_ms": {
            "stored": asdict(Latency.of_seconds(ledger.latencies(number))),
            "alert": asdict(Latency.of_seconds(alerts.latencies(ledger.sent, number))),
        },
        "stored": {"ticks": len(stored_at), "missing": len(span) - len(stored_at)},
        "alerts": {"expected": alerts.expected_per_phase[number], "received": len(arrivals),
                   "missing": alerts.expected_per_phase[number] - len(arrivals)},
        "last_stage_seconds": None if phase.last_stage is None else round(phase.last_stage - phase.started, 3),
        "cpu_seconds": {role: round(seconds, 2) for role, seconds in sorted(phase.cpu.items())},
        "watching": {
            "looks": phase.looks,
            "reads": phase.reads,
            "read_seconds": None if phase.read_seconds is None else round(phase.read_seconds, 2),
            "read_cpu_seconds": {role: round(seconds, 2) for role, seconds in sorted(phase.read_cpu.items())},
        },
    }


def flow_figures(flow: FlowRun) -> dict[str, Any]:
    ledger, alerts = flow.ledger, flow.alerts
    phases = [phase_figures(flow, number) for number in range(len(flow.phases))]
    missing = alerts.missing()
    return {
        "label": flow.label,
        "description": flow.description,
        "ticks": ledger.total,
        "batch_size": {"kinesis": flow.kinesis_batch, "streams": flow.streams_batch},
        "main_phase": flow.phases[flow.main].name,
        "main": phases[flow.main],
        "phases": phases,
        "stream_records": ledger.records,
        "stored_twice": ledger.repeated,
        "unexpected_records": ledger.unexpected,
        "removed_records": ledger.removed,
        "stored_clock": {"engine_write": ledger.engine_clock, "observed": ledger.observed_clock},
        "alerts": {
            "publishes": flow.publishes,
            "drained_while_running": flow.alerts_drained,
            "expected": len(alerts.expected),
            "received": alerts.received_count,
            "duplicates": alerts.duplicates,
            "unexpected": alerts.unexpected,
            "missing": len(missing),
            "missing_examples": missing[:5],
            "unexpected_examples": list(alerts.unexpected_ids),
        },
    }


def ratio(ours: float | None, other: float | None) -> float | None:
    return round(ours / other, 2) if ours and other else None


def process_figures(roles: dict[str, RoleFigures]) -> dict[str, dict[str, float | int]]:
    order = sorted(roles, key=lambda role: (role != ENGINE, role == BENCH, role))
    return {role: {"cpu_seconds": round(roles[role].cpu_seconds, 2), "peak_rss_mb": round(roles[role].peak_rss_mb, 1),
                   "processes": roles[role].processes} for role in order}


def timeline(flows: Sequence[FlowRun], samples: Sequence[Sample], origin: float, end: float,
             ours: str = "ours") -> dict[str, Any]:
    """Series over the run for the chart: per interval, each flow's stored and sent ticks/s; our
    flow's latency (p50, p99 to stored by stored time; p50 to alert by arrival); and each role's
    memory at every sample. Times are seconds from ``origin``."""
    width = interval_for(max(end - origin, 0.0))
    count = max(1, math.ceil((end - origin) / width))
    out: dict[str, Any] = {"interval_seconds": width, "t": [round(i * width, 3) for i in range(count)],
                           "stored_per_s": {}, "sent_per_s": {}, "latency_ms": {}, "phases": []}
    for flow in flows:
        out["stored_per_s"][flow.label] = per_interval(flow.ledger.stored, origin, width, count)
        out["sent_per_s"][flow.label] = per_interval(flow.ledger.sent, origin, width, count)
        for phase in flow.phases:
            ends = [t for t in (phase.last_stage, phase.sent) if t is not None]
            span = flow.ledger.phase_range(flow.phases.index(phase))
            last = max(_finite(flow.ledger.stored[span.start:span.stop]) + ends, default=phase.started)
            out["phases"].append({"flow": flow.label, "phase": phase.name, "start": round(phase.started - origin, 3),
                                  "end": round(last - origin, 3)})
        if flow.label == ours:
            sent, stored = flow.ledger.sent, flow.ledger.stored
            # One pass over a million ticks, without a list of them.
            points = ((at, (at - sent_at) * 1000) for at, sent_at in zip(stored, sent, strict=True))
            p50, p99 = percentiles_per_interval(points, origin, width, count, (50, 99))
            out["latency_ms"]["stored_p50"], out["latency_ms"]["stored_p99"] = p50, p99
            alert_points = [(at, latency * 1000) for at, latency in flow.alerts.points(sent)]
            out["latency_ms"]["alert_p50"] = percentile_per_interval(alert_points, origin, width, count, 50)
    roles = sorted({role for sample in samples for role in sample.rss_mb})
    out["memory_mb"] = {
        "t": [round(sample.t - origin, 3) for sample in samples],
        "roles": {role: [sample.rss_mb.get(role) for sample in samples] for role in roles},
        "workers": [round(sum(mb for role, mb in sample.rss_mb.items() if role not in NOT_WORKERS), 1)
                    for sample in samples],
    }
    return out


CLOCKS = {
    "sent": "the bench's wall clock just before the PutRecords call that carried the tick",
    "stored": "the engine's write time in the table stream record's sequence number (ms), where it holds one; "
              "else when the bench read the stream record (after the flow: counted under stored_clock.observed)",
    "alert": "SentTimestamp of the alert's SQS message (ms): when SNS delivered it to the queue",
    "last_stage": "the timestamp of the log line in which the flow's last function names the last stream record",
}


def _end_to_end(flow: dict[str, Any] | None) -> float | None:
    value = None if flow is None else flow["main"]["end_to_end_per_s"]
    return None if value is None else float(value)


def soak_figures(ours: dict[str, Any]) -> dict[str, Any]:
    """Latency at the demo's rate before and after the push, and after/before."""
    phases = {phase["phase"]: phase for phase in ours["phases"]}
    before, after = phases["before"]["latency_ms"], phases["after"]["latency_ms"]
    out: dict[str, Any] = {"before": before, "after": after, "push_ticks": phases["push"]["ticks"]}
    for kind in ("stored", "alert"):
        out[f"{kind}_p50_ratio"] = ratio(after[kind]["p50"], before[kind]["p50"])
        out[f"{kind}_p99_ratio"] = ratio(after[kind]["p99"], before[kind]["p99"])
    return out


def memory_figures(ours: FlowRun, samples: Sequence[Sample]) -> dict[str, Any] | None:
    """The engine's resident memory at start and end, and how much it grew per tick of our flow."""
    engine = [(s.t, s.rss_mb[ENGINE]) for s in samples if ENGINE in s.rss_mb]
    if not engine:
        return None
    before = [mb for t, mb in engine if t <= ours.phases[0].started] or [engine[0][1]]
    grown = engine[-1][1] - before[-1]
    return {"engine_start_mb": engine[0][1], "engine_end_mb": engine[-1][1],
            "engine_peak_sampled_mb": max(mb for _, mb in engine),
            "engine_kb_per_tick_ours": round(grown * 1024 / ours.ledger.total, 2) if ours.ledger.total else None}


def assemble(flows: Sequence[FlowRun], *, options: dict[str, Any], started: str, engine: str,
             roles: dict[str, RoleFigures] | None, samples: Sequence[Sample], origin: float, end: float,
             cpus: int | None = None) -> dict[str, Any]:
    """The whole figures document (what --json prints and the JSON file holds). ``flows`` must hold
    "ceiling" and "ours", and may hold "naive"."""
    by_label = {flow.label: flow_figures(flow) for flow in flows}
    ours, ceiling, naive = by_label["ours"], by_label["ceiling"], by_label.get("naive")
    soak = "push" in [phase["phase"] for phase in ours["phases"]]
    return {
        "version": 1,
        "started": started,
        "engine": engine,
        "cpus": cpus if cpus is not None else os.cpu_count(),
        "options": options,
        "flows": by_label,
        "ratios": {
            "ours_to_ceiling": ratio(_end_to_end(ours), _end_to_end(ceiling)),
            "ours_to_naive": ratio(_end_to_end(ours), _end_to_end(naive)) if naive else None,
            "naive_goal": NAIVE_GOAL,
        },
        "soak": soak_figures(ours) if soak else None,
        "processes": process_figures(roles) if roles is not None else None,
        "memory": memory_figures(next(flow for flow in flows if flow.label == "ours"), samples),
        "clocks": CLOCKS,
        "timeline": timeline(flows, samples, origin, end),
    }


__all__ = ["CLOCKS", "FlowRun", "assemble", "memory_figures", "soak_figures", "PhaseRun", "flow_figures", "phase_figures", "process_figures", "ratio", "timeline"]
