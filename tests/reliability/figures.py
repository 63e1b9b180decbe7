"""The fault suite's table of figures: each reliability case records one row (the ``figures`` fixture)
on its test's report, and the table is printed at the end of the run from the reports. Read from the
reports, the rows reach the process that prints the summary whether the tests ran in it or in workers
(``make test`` runs two)."""

from __future__ import annotations

from dataclasses import astuple, dataclass

import pytest

PROPERTY = "reliability figures"


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


def rows_of(report: pytest.TestReport) -> list[Row]:
    return [Row(*value) for name, value in report.user_properties if name == PROPERTY]


def print_table(terminalreporter: pytest.TerminalReporter, rows: list[Row]) -> None:
    header = ("case", "sent", "stored", "quarantined", "stored twice", "lost", "alerts expected", "published",
              "seconds")
    cells = [header] + [tuple(f"{v:.1f}" if isinstance(v, float) else "-" if v is None else str(v)
                              for v in astuple(row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    terminalreporter.section("reliability: every tick stored once or quarantined once, every alert once")
    for n, row in enumerate(cells):
        terminalreporter.write_line("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                                              enumerate(zip(row, widths, strict=True))))
        if n == 0:
            terminalreporter.write_line("  ".join("-" * w for w in widths))
