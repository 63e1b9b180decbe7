"""What a check finds: one line, ok or the problem and its fix; and what one diagnosis shares
between its checks (the target, the resource list, what was found under each name)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any

from stockpipe.aws.context import AwsContext
from stockpipe.aws.deployment import Deployment
from stockpipe.provision.model import Found, Resource, Run


class Status(str, Enum):
    OK = "ok"
    PROBLEM = "problem"  # doctor exits 1
    WARNING = "warning"  # worth knowing, not a failure (dead letters, nothing archived yet)
    SKIPPED = "skipped"  # cannot be checked here, and why (IAM simulation on an emulator)


SYMBOLS = {Status.OK: "✓", Status.PROBLEM: "✗", Status.WARNING: "!", Status.SKIPPED: "-"}
# The seven groups of the issue, in the order their findings print.
GROUPS = ("configuration", "reachability", "existence", "regions", "code", "flow", "query")


@dataclass(frozen=True)
class Finding:
    """``group``: one of GROUPS; ``check``: what in it (a variable, a resource, "endpoint");
    ``message``: what was found, one line; ``fix``: what to do, for a problem or a warning."""

    group: str
    check: str
    status: Status
    message: str
    fix: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)  # figures for --json (seconds, counts)

    @property
    def line(self) -> str:
        return f"{SYMBOLS[self.status]} {self.message}" + (f": {self.fix}" if self.fix else "")

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "check": self.check, "status": self.status.value, "message": self.message,
                "fix": self.fix, "line": self.line, **({"data": dict(self.data)} if self.data else {})}


def ok(group: str, check: str, message: str, **data: Any) -> Finding:
    return Finding(group, check, Status.OK, message, data=data)


def problem(group: str, check: str, message: str, fix: str = "", **data: Any) -> Finding:
    return Finding(group, check, Status.PROBLEM, message, fix, data=data)


def warning(group: str, check: str, message: str, fix: str = "", **data: Any) -> Finding:
    return Finding(group, check, Status.WARNING, message, fix, data=data)


def skipped(group: str, check: str, message: str, **data: Any) -> Finding:
    return Finding(group, check, Status.SKIPPED, message, data=data)


def where_set(variable: str, environ: Mapping[str, str], sources: Mapping[str, str]) -> str:
    """Where a variable's value came from: ".env line 14", "environment", or "default" (not set)."""
    if variable in sources:
        return sources[variable]
    return "environment" if variable in environ else "default"


@dataclass
class Look:
    """One diagnosis of a deployment: the target, the resources the configuration names (init's
    list, stockpipe.provision.stack.resources) and what was found under each name, by key."""

    aws: AwsContext
    run: Run
    resources: list[Resource]
    environ: Mapping[str, str]
    sources: Mapping[str, str]
    stall_after: float = 60.0
    clock: Callable[[], float] = time.time
    found: dict[str, Found | None] = field(default_factory=dict)
    # Resources that could not be looked at (the engine has no such API): key -> why.
    unlookable: dict[str, str] = field(default_factory=dict)
    # The region where the pipeline's stream was found, when it is not in the configured one.
    elsewhere: str | None = None
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> GetFunction's answer

    @property
    def settings(self) -> Any:
        return self.aws.settings

    def where(self, variable: str) -> str:
        return where_set(variable, self.environ, self.sources)

    def resource(self, key: str) -> Resource:
        return next(r for r in self.resources if r.key == key)

    def exists(self, key: str) -> bool:
        return self.found.get(key) is not None

    @cached_property
    def deployment(self) -> Deployment:
        """The adapter every check reads the deployment through."""
        return Deployment(self.aws)

    def function(self, key: str) -> dict[str, Any] | None:
        """GetFunction's answer for a function of the list (configuration, code location, tags), once."""
        if key not in self.functions:
            if not self.exists(key):
                return None
            self.functions[key] = self.deployment.function(self.resource(key).name)
        return self.functions[key]


def ago(seconds: float) -> str:
    """A duration for people: 45 s, 12 min, 3.5 h, 2 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


__all__ = ["GROUPS", "SYMBOLS", "Finding", "Look", "Status", "ago", "ok", "problem", "skipped", "warning", "where_set"]
