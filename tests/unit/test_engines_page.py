"""docs/engines.md's table is what scripts/engines.py renders from the recorded probe results
(tests/engine-results/), under the MiniStack version installed; tests/e2e/test_engine_probes.py
checks that the engines still give those results."""

from __future__ import annotations

import json
from importlib.metadata import version

from tests.engines import engines_script

RENDERER = engines_script()


def test_the_engines_page_is_rendered_from_the_recorded_results():
    page = RENDERER.PAGE.read_text(encoding="utf-8")
    assert page == RENDERER.render(page), "docs/engines.md differs from the probes' results: make engines"
    assert f"| behaviour | embedded (MiniStack {version('ministack')}) | compose (MiniStack" in page


def test_the_embedded_results_were_measured_on_the_pinned_ministack():
    recorded = RENDERER.load("embedded")
    assert recorded.get("ministack") == version("ministack"), (
        f"the embedded results are of MiniStack {recorded.get('ministack')}, the pin is {version('ministack')}: "
        "make engines")
    assert sorted(recorded["probes"]) == sorted(RENDERER.BEHAVIOURS), "a probe without a result: make engines"


def test_a_result_renders_as_its_cell(tmp_path):
    (tmp_path / "embedded.json").write_text(json.dumps({"engine": "embedded", "ministack": "9", "probes": {
        "sns_redrive": {"outcome": "absent", "evidence": {"messages in the dead-letter queue": 0}, "date": "2026-01-02"},
        "ttl_expiry": {"outcome": "honoured", "evidence": {"items left": ["new"]}, "date": "2026-01-02"},
        "cloudformation": {"outcome": "partly", "date": "2026-01-02",
                           "evidence": {"status": "CREATE_COMPLETE", "dropped": ["AWS::S3::Bucket Tags"]}}}}))
    rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1:]
            for line in RENDERER.table(tmp_path).splitlines()[2:]}
    behaviours = RENDERER.BEHAVIOURS
    assert rows[behaviours["sns_redrive"].row][0].startswith("worked around: `stockpipe alerts` and the dashboard fill what a reader missed")
    assert rows[behaviours["sns_redrive"].row][0].endswith("(`sns_redrive`)")
    assert rows[behaviours["ttl_expiry"].row][0] == "honoured (`ttl_expiry`, slow, last measured 2026-01-02)"
    assert rows[behaviours["cloudformation"].row][0].startswith("deploys, drops AWS::S3::Bucket Tags; worked around:")
    assert rows[behaviours["fifo_groups"].row][0] == "not probed yet"
    assert rows[behaviours["fifo_groups"].row][2] == "not reviewed"
    assert rows[behaviours["state_after_restart"].row][1] == "not probed: the probe restarts an embedded engine of its own"
