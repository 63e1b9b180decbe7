"""The reliability suite: the real flow on an engine, one test per fault, each asserting exact counts.
Each case adds a row to the table printed at the end (`make test-reliability`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass

import pytest

from tests.flow_fixtures import ingest, names, pipeline, settings

__all__ = ["figures", "ingest", "names", "pipeline", "settings"]


@dataclass(frozen=True)
class Row:
    case: str
    sent: int
    stored: int
    quarantined: int
    duplicates: int
    lost: int
    alerts_expected: int | None  # None: the case is not about alerts
    alerts_published: int | None
    seconds: float


ROWS: list[Row] = []


@pytest.fixture
def figures() -> Callable[..., None]:
    """``figures(case, sent, ...)`` records a case's row (call it once its counts are asserted)."""

    def record(*values: object) -> None:
        ROWS.append(Row(*values))  # type: ignore[arg-type]

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    header = ("case", "sent", "stored", "quarantined", "stored twice", "lost", "alerts expected", "published",
              "seconds")
    cells = [header] + [tuple(f"{v:.1f}" if isinstance(v, float) else "-" if v is None else str(v)
                              for v in astuple(row)) for row in ROWS]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    terminalreporter.section("reliability: every tick stored once or quarantined once, every alert once")
    for n, row in enumerate(cells):
        terminalreporter.write_line("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                                              enumerate(zip(row, widths, strict=True))))
        if n == 0:
            terminalreporter.write_line("  ".join("-" * w for w in widths))
