"""The engine probes (tests/probes.py), each asserting that the engine does exactly what its recorded
results say (tests/engine-results/<engine>.json), so that the Engines page (docs/engines.md, written
from those results by `make engines`) cannot silently go wrong when an engine changes.

With STOCKPIPE_PROBE_RESULTS=<folder> (`make engines`) each probe records what it found in
<folder>/<engine>/<probe>.json instead of comparing it. The slow probes (a minute or more: record age,
TTL) are marked slow: `make test` leaves them out and the page shows when they last ran.
"""

from __future__ import annotations

import json
import os
from datetime import date
from importlib.metadata import version
from pathlib import Path

import pytest

from tests import probes
from tests.engines import REGION, engines_script

ENGINES = engines_script()
NAMES = [*probes.PROBES, *probes.RESTART_PROBES]


def test_the_catalogue_names_every_probe():
    assert sorted(ENGINES.BEHAVIOURS) == sorted(NAMES)


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if ENGINES.BEHAVIOURS[name].slow else [])
                                  for name in ENGINES.BEHAVIOURS])
def test_probe(engine, name, tmp_path_factory):
    behaviour = ENGINES.BEHAVIOURS[name]
    if engine.name not in behaviour.only:
        pytest.skip(f"{name}: {behaviour.elsewhere}")
    if name in probes.RESTART_PROBES:
        observed = probes.RESTART_PROBES[name](tmp_path_factory.getbasetemp() / "probe-restart", REGION)
    else:
        observed = probes.PROBES[name]()
    found = {"outcome": observed.outcome, "evidence": observed.evidence}
    if folder := os.environ.get("STOCKPIPE_PROBE_RESULTS"):
        out = Path(folder) / engine.name / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**found, "date": date.today().isoformat(), "ministack": version("ministack")},
                                  indent=2, sort_keys=True), encoding="utf-8")
        return
    recorded = ENGINES.load(engine.name)
    expected = recorded["probes"].get(name)
    assert expected is not None, f"no recorded result of {name} on {engine.name}: make engines ENGINES={engine.name}"
    if engine.name in ("embedded", "compose"):
        assert recorded.get("ministack") == version("ministack"), (
            f"{engine.name}'s results were measured on MiniStack {recorded.get('ministack')}, the pin is now "
            f"{version('ministack')}: make engines")
    assert found == {"outcome": expected["outcome"], "evidence": expected["evidence"]}, (
        f"{engine.name} no longer does what docs/engines.md says for {name}: make engines, and read the diff")
