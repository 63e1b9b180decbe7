"""`stockpipe doctor`: the configuration and the deployment it points at, checked against every
mistake of the seeds' troubleshooting notes (a trailing space in a name, a region mismatch, a hidden
U+200B in the Lambda code, a bucket name typo, a trigger not enabled, an e-mail never confirmed, an
archive Athena cannot see) and a few more; one line per check, ok or the problem and its fix.

It changes nothing: every call reads (the queues' messages are received with a visibility timeout of
0, so they stay visible), except the test query, which Athena answers by writing its result file
under ``athena-results/`` as it does for every query. Each check is a small function of a ``Look``
(model.py) returning findings; one that cannot finish is itself a finding, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from stockpipe.aws.context import AwsContext
from stockpipe.aws.errors import AwsError, explain, translated
from stockpipe.doctor import archive, code, configuration, deployment, flow, target
from stockpipe.doctor.model import GROUPS, Finding, Look, Status, problem, skipped
from stockpipe.errors import StockpipeError
from stockpipe.provision.model import Run
from stockpipe.provision.stack import resources


class Diagnosis:
    """The findings of one run of doctor, in the order they print."""

    def __init__(self, findings: list[Finding], seconds: float, target: str) -> None:
        self.findings, self.seconds, self.target = findings, seconds, target

    @property
    def passed(self) -> bool:
        return not any(f.status is Status.PROBLEM for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        return {status.value: sum(f.status is status for f in self.findings) for status in Status}

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{n} {s.value}{'s' if n != 1 and s in (Status.PROBLEM, Status.WARNING) else ''}"
                 for s in (Status.PROBLEM, Status.WARNING, Status.OK, Status.SKIPPED) if (n := counts[s.value])]
        verdict = "all checks pass" if self.passed else "some checks fail"
        return f"doctor: {verdict} ({', '.join(parts)}) in {self.seconds:.1f} s"

    def text(self) -> str:
        return "\n".join([*(f.line for f in self.findings), self.summary()])

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.passed, "target": self.target, "seconds": round(self.seconds, 3), "counts": self.counts(),
                "findings": [f.as_dict() for f in self.findings]}

    def json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, default=str)


def diagnose(environ: Mapping[str, str], sources: Mapping[str, str] | None = None, *,
             session: Any = None, stall_after: float = 60.0,
             clock: Callable[[], float] = time.time) -> Diagnosis:
    """Every check over the configuration in ``environ`` (``sources``: where a .env set each variable,
    {"STREAM_NAME": ".env line 14"}) and the deployment it names. ``session``: the boto3 session to
    use (tests record its calls). ``stall_after``: seconds a tick may wait in the stream before that
    is a stall."""
    started = time.monotonic()
    sources = dict(sources or {})
    findings, settings = configuration.check(environ, sources)
    if settings is None:
        findings.append(skipped("reachability", "deployment", "the deployment was not looked at: the configuration "
                                "above does not say what to look for"))
        return Diagnosis(findings, time.monotonic() - started, "unknown")
    aws = AwsContext(settings, session=session, sources=sources)
    try:
        with translated():
            reached, reachable = target.endpoint_and_credentials(aws)
    except Exception as error:  # noqa: BLE001 - doctor reports, it never shows a traceback
        reached, reachable = [_unfinished("reachability", error, aws)], False
    findings += reached
    if not reachable:
        findings.append(skipped("existence", "deployment", "the deployment was not looked at: the target does not "
                                "answer (above)"))
        return Diagnosis(findings, time.monotonic() - started, aws.target_name)
    look = Look(aws, Run(aws, settings.stack_name, report=lambda line: None), resources(aws), environ, sources,
                stall_after=stall_after, clock=clock)
    for group, step in (("existence", deployment.existence), ("regions", deployment.regions), ("code", code.check),
                        ("reachability", target.permissions), ("flow", flow.check), ("query", archive.check)):
        try:
            with translated():
                findings += step(look)
        except Exception as error:  # noqa: BLE001 - doctor reports, it never shows a traceback
            findings.append(_unfinished(group, error, aws))
    order = {group: index for index, group in enumerate(GROUPS)}
    findings.sort(key=lambda f: order.get(f.group, len(order)))  # stable: a group's own order is kept
    return Diagnosis(findings, time.monotonic() - started, aws.target_name)


def _unfinished(group: str, error: Exception, aws: AwsContext) -> Finding:
    """A check that cannot finish is a finding of its own, in one line."""
    if isinstance(error, AwsError):
        why = explain(error, aws.target_name, aws.region) or f"{error.kind}: {error}"
    elif isinstance(error, StockpipeError):
        why = str(error)
    else:
        why = f"{type(error).__name__}: {error}"
    return problem(group, "unfinished", f"the {group} check could not finish: {' '.join(why.split())}")


__all__ = ["Diagnosis", "Finding", "Status", "diagnose"]
