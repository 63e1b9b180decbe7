"""The Engines page's table, from what the probes found (`make engines`; a development tool, not part
of the installed package).

tests/e2e/test_engine_probes.py runs each probe of tests/probes.py on an engine; with
STOCKPIPE_PROBE_RESULTS=<folder> it writes each result to <folder>/<engine>/<probe>.json. This script
merges those into tests/engine-results/<engine>.json (committed: an engine not run keeps its last
results) and writes the table between the markers of docs/engines.md; the page's other text is kept.

    python scripts/engines.py [--merge build/probes] [--check]
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "tests" / "engine-results"
PAGE = ROOT / "docs" / "engines.md"
BEGIN = "<!-- engines table: written by `make engines` from tests/engine-results/, do not edit -->"
END = "<!-- end of the engines table -->"
LOCALSTACK = "4.14.0"
ENGINES = ("embedded", "compose", "localstack", "aws")

# What the project does where an engine lacks a behaviour.
NEVER_RAISE = "the handlers never raise ([why](#why-the-handlers-never-raise))"


@dataclass(frozen=True)
class Behaviour:
    row: str
    workaround: str = ""  # how the project copes when an engine lacks it ("" : it does not need to)
    slow: bool = False  # left out of `make test` (-m slow): the cell shows the date it was last measured
    only: tuple[str, ...] = ENGINES  # the engines the probe can run on
    localstack: str = "not reviewed"  # LocalStack 4.14.0 by configuration, reviewed against the source
    aws: str = "honoured (documented)"  # until probed on AWS
    elsewhere: str = "not probed: the probe restarts an embedded engine of its own"


def stream(what: str, setting: str, localstack: str = "honoured") -> dict[str, Behaviour]:
    return {f"{kind}_{what}": Behaviour(f"{label} trigger: {setting}", NEVER_RAISE, slow=what == "record_age",
                                        localstack=localstack)
            for kind, label in (("kinesis", "Kinesis"), ("dynamodb", "DynamoDB-Streams"))}


BEHAVIOURS: dict[str, Behaviour] = {
    **stream("partial_batch", "partial batch responses (`ReportBatchItemFailures`)"),
    **stream("bisect", "`BisectBatchOnFunctionError` splits a failing batch", "not reviewed"),
    **stream("retries", "`MaximumRetryAttempts` ends a failing batch's retries"),
    **stream("on_failure", "on-failure destination gets the failed batch"),
    **stream("record_age", "`MaximumRecordAgeInSeconds` sends an old failing batch to the destination",
             "not reviewed"),
    "sqs_partial_batch": Behaviour("SQS trigger (`INGEST=sqs`): partial batch responses"),
    "fifo_groups": Behaviour("SQS FIFO: order within a message group, a group held while a message is in flight"),
    "sns_redrive": Behaviour("SNS subscription `RedrivePolicy`: a message for a missing queue goes to the dead-letter "
                             "queue", "`stockpipe alerts` and the dashboard fill what a reader missed from the alert ledger, "
                             "marked recovered",
                             localstack="honoured"),
    "ttl_expiry": Behaviour("DynamoDB TTL deletes expired items (`TICK_TTL_DAYS`)", slow=True,
                            aws="honoured (documented: within a few days; not probed, too slow)"),
    "athena_rows": Behaviour("Athena answers from Glue tables over JSON in S3",
                             "init skips Glue in one line; `stockpipe query` answers with DuckDB in its own process",
                             localstack="absent: Glue answers 501, a paid feature"),
    "cloudformation": Behaviour("CloudFormation deploys the pipeline's kinds of resource with their properties",
                                "`stockpipe plan` names each dropped property as the only difference",
                                localstack="not tried here"),
    "cloudwatch_alarms": Behaviour(
        "CloudWatch alarms on the service metrics: AWS/Lambda `Errors`, AWS/SQS queue depth, each by its dimension",
        "the alarms are the same on every engine; `tests/e2e/test_alarms.py` puts the metrics the engine does not "
        "publish",
        only=("embedded", "compose"), localstack="not reviewed",
        aws="honoured (documented; alarms are evaluated on a schedule, minutes after the data: not probed)",
        elsewhere="not probed: AWS evaluates alarms on a schedule, minutes after the data"),
    "state_after_restart": Behaviour(
        "state (queues, items, objects) kept across a graceful restart (`stockpipe emulator`)",
        "`stockpipe produce --source archive` restores items lost by a hard kill from the raw objects",
        only=("embedded",), localstack="kept in the container while it runs", aws="durable"),
    "stream_after_restart": Behaviour(
        "DynamoDB stream records kept across a graceful restart",
        "`stockpipe emulator` makes each DynamoDB-Streams trigger again from `TRIM_HORIZON` when it starts",
        only=("embedded",), localstack="kept in the container while it runs", aws="durable"),
}


def ministack() -> str:
    return version("ministack")


def column(engine: str, results: dict[str, Any]) -> str:
    name = {"embedded": f"embedded (MiniStack {ministack()})", "compose": "compose (MiniStack)",
            "localstack": f"LocalStack {LOCALSTACK}", "aws": "real AWS"}[engine]
    if results.get("probes"):
        return name
    return name + {"embedded": "", "compose": ": not probed yet (needs Docker)",
                   "localstack": ": by configuration, reviewed against the source",
                   "aws": ": as documented, not probed yet"}[engine]


def load(engine: str, folder: Path = RESULTS) -> dict[str, Any]:
    path = folder / f"{engine}.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {"engine": engine, "probes": {}}


def merge(folder: Path, results: Path = RESULTS) -> list[str]:
    """<folder>/<engine>/<probe>.json into <results>/<engine>.json; the engines merged."""
    merged = []
    for engine_dir in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []:
        recorded = load(engine_dir.name, results)
        found = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(engine_dir.glob("*.json"))}
        if not found:
            continue
        versions = {result.pop("ministack", None) for result in found.values()}
        if engine_dir.name in ("embedded", "compose"):
            recorded["ministack"] = sorted(v for v in versions if v)[-1]
        recorded["probes"] = dict(sorted({**recorded.get("probes", {}), **found}.items()))
        results.mkdir(parents=True, exist_ok=True)
        (results / f"{engine_dir.name}.json").write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n",
                                                         encoding="utf-8")
        merged.append(engine_dir.name)
    return merged


def cell(name: str, behaviour: Behaviour, engine: str, results: dict[str, Any]) -> str:
    result = results.get("probes", {}).get(name)
    if result is None:
        if engine == "localstack":
            return behaviour.localstack
        if engine == "aws":
            return behaviour.aws
        return "not probed yet" if engine in behaviour.only else behaviour.elsewhere
    outcome, evidence = result["outcome"], result["evidence"]
    if outcome == "honoured":
        text = "honoured"
    elif behaviour.workaround:
        text = f"worked around: {behaviour.workaround}"
    else:
        text = "absent"
    if evidence.get("dropped"):
        text = f"deploys, drops {', '.join(evidence['dropped'])}; {text}"
    if outcome == "partly" and evidence.get("gaps"):
        text = f"partly: {'; '.join(evidence['gaps'])}; {text}"
    where = f"`{name}`" + (f", slow, last measured {result['date']}" if behaviour.slow else "")
    return f"{text} ({where})"


def table(folder: Path = RESULTS) -> str:
    results = {engine: load(engine, folder) for engine in ENGINES}
    lines = [f"| behaviour | {' | '.join(column(engine, results[engine]) for engine in ENGINES)} |",
             "|---" * (len(ENGINES) + 1) + "|"]
    for name, behaviour in BEHAVIOURS.items():
        cells = [cell(name, behaviour, engine, results[engine]).replace("|", "\\|") for engine in ENGINES]
        lines.append(f"| {behaviour.row} | {' | '.join(cells)} |")
    return "\n".join(lines)


def render(page: str, folder: Path = RESULTS) -> str:
    """``page`` with the text between the markers replaced by the table of the recorded results."""
    head, found, rest = page.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{PAGE}: the markers of the table are missing")
    return f"{head}{BEGIN}\n{table(folder)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--merge", type=Path, help="a folder of probe results (<engine>/<probe>.json) to record first")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/engines.md is not what the results give")
    args = parser.parse_args(argv)
    if args.merge:
        merged = merge(args.merge)
        print(f"engines: recorded {', '.join(merged) or 'nothing (no engine ran)'}")
    page = PAGE.read_text(encoding="utf-8")
    wanted = render(page)
    if args.check:
        if page != wanted:
            sys.stdout.writelines(difflib.unified_diff(page.splitlines(True), wanted.splitlines(True),
                                                       "docs/engines.md", "from the results"))
            return 1
        return 0
    if page != wanted:
        PAGE.write_text(wanted, encoding="utf-8")
        print("engines: docs/engines.md written")
    else:
        print("engines: docs/engines.md unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
