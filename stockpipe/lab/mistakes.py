"""Lab 5's mistakes: each one of the seeds' troubleshooting notes, planted in the running pipeline by
`stockpipe lab break`, found by `stockpipe doctor`, fixed by the learner (`stockpipe init`, as the page
says) or undone by `stockpipe lab reset`.

What was planted is written to ``.stockpipe/lab.json`` in the working folder, so that `lab check 5`
knows a mistake was planted (without saying which) and `lab reset` what to undo. Every plant changes
the deployment only; the learner's configuration is theirs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stockpipe.aws.context import AwsContext
from stockpipe.aws.deployment import Deployment
from stockpipe.errors import StockpipeError
from stockpipe.provision import Stack
from stockpipe.provision.functions import Function, Mapping
from stockpipe.provision.model import Action

# Where `lab break` notes what it planted (in the folder the lab runs in; .stockpipe/ is git-ignored).
STATE = Path(".stockpipe") / "lab.json"
# The seeds' note 5: a line retyped in the console picked up a zero-width space, and the function no
# longer parsed. Planted after an identifier, where Python refuses it as the console's editor did.
HIDDEN = "\u200b"
HIDDEN_LINE = f"FAILED_RECORD_LIMIT{HIDDEN} = 0\n"


class LabError(StockpipeError):
    """A lab command that cannot do what it was asked; the message says what to do."""


@dataclass(frozen=True)
class Mistake:
    name: str
    note: str  # which troubleshooting note it is, in the learner's words
    plant: Callable[[AwsContext, Stack], None]
    present: Callable[[AwsContext, Stack], bool]


def function_of(stack: Stack, key: str) -> Function:
    """A function of the stack's list by its key ("process", "trends")."""
    found = next(r for r in stack.resources if r.key == key)
    assert isinstance(found, Function)
    return found


def configuration_of(aws: AwsContext, function: Function) -> dict[str, Any]:
    """The function as deployed (GetFunctionConfiguration): its environment, code hash, last change."""
    return Deployment(aws).function_configuration(function.name)


def environment_of(configuration: dict[str, Any]) -> dict[str, str]:
    return dict((configuration.get("Environment") or {}).get("Variables", {}))


def _trigger(stack: Stack) -> dict[str, Any]:
    """process-ticks' trigger as it exists (its UUID and State)."""
    mapping = next(r for r in stack.resources if r.key == "process-trigger")
    assert isinstance(mapping, Mapping)
    found = mapping.find(stack.run)
    if found is None:
        raise LabError(f"the trigger {mapping.name} does not exist: run stockpipe init first")
    detail: dict[str, Any] = found.detail
    return detail


def _disable_trigger(aws: AwsContext, stack: Stack) -> None:
    Deployment(aws).disable_trigger(_trigger(stack)["UUID"])


def _trigger_disabled(aws: AwsContext, stack: Stack) -> bool:
    return str(_trigger(stack).get("State", "")) not in ("Enabled", "Enabling")


def _planted_zip(function: Function) -> bytes:
    """The function's own build with the hidden character in its handler."""
    source = zipfile.ZipFile(io.BytesIO(function.package.data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "handler.py":
                data += HIDDEN_LINE.encode()
            target.writestr(info, data)
    return out.getvalue()


def _plant_hidden(aws: AwsContext, stack: Stack) -> None:
    function = function_of(stack, "process")
    Deployment(aws).replace_code(function.name, _planted_zip(function))
    function.wait_ready(stack.run)


def _hidden_present(aws: AwsContext, stack: Stack) -> bool:
    function = function_of(stack, "process")
    sha = configuration_of(aws, function).get("CodeSha256")
    return bool(sha == base64.b64encode(hashlib.sha256(_planted_zip(function)).digest()).decode())


def _set_variable(variable: str, spoil: Callable[[str], str]) -> Callable[[AwsContext, Stack], None]:
    def plant(aws: AwsContext, stack: Stack) -> None:
        function = function_of(stack, "process")
        variables = environment_of(configuration_of(aws, function))
        variables[variable] = spoil(variables[variable])
        Deployment(aws).replace_environment(function.name, variables)
        function.wait_ready(stack.run)
    return plant


def _variable_spoiled(variable: str) -> Callable[[AwsContext, Stack], bool]:
    def present(aws: AwsContext, stack: Stack) -> bool:
        function = function_of(stack, "process")
        wanted = function.environment(stack.run).environ().get(variable)
        return environment_of(configuration_of(aws, function)).get(variable) != wanted
    return present


def _typo(name: str) -> str:
    """Two neighbouring letters swapped, as a hand copying the name does: stockpipe-raw-... -> stockpipe-rwa-..."""
    at = name.find("raw")
    at = at + 1 if at >= 0 else max(0, len(name) // 2 - 1)
    return name[:at] + name[at + 1] + name[at] + name[at + 2:]


MISTAKES: dict[str, Mistake] = {mistake.name: mistake for mistake in (
    Mistake("trailing-space", "a trailing space in a resource name (the seeds' note 3, 'stock-market-stream '): "
            "here in the table name process-ticks was given", _set_variable("TABLE_NAME", lambda name: name + " "),
            _variable_spoiled("TABLE_NAME")),
    Mistake("hidden-character", "a hidden U+200B in the function's code (the seeds' note 5): the code no longer "
            "parses", _plant_hidden, _hidden_present),
    Mistake("bucket-typo", "a typo in the bucket name the function writes to (the seeds' note 6, NoSuchBucket)",
            _set_variable("RAW_BUCKET", _typo), _variable_spoiled("RAW_BUCKET")),
    Mistake("disabled-trigger", "the trigger from the stream to process-ticks is disabled (the function reads "
            "nothing)", _disable_trigger, _trigger_disabled),
)}


def planted(state: Path = STATE) -> dict[str, Any] | None:
    """What `lab break` planted here, or None."""
    try:
        found: dict[str, Any] = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if found.get("mistake") in MISTAKES else None


def deployed(stack: Stack) -> None:
    """Refuses, in one line, a pipeline whose functions and triggers are not all there."""
    needed = [step for step in stack.plan() if isinstance(step.resource, Function | Mapping)]
    missing = [step.resource for step in needed if step.action is Action.CREATE]
    if missing:
        raise LabError(f"the pipeline is not deployed at {stack.aws.target_name} ({missing[0].kind} "
                       f"{missing[0].name} is missing): run stockpipe init first (make demo does it)")


def plant(aws: AwsContext, name: str | None = None, *, state: Path = STATE,
          choose: Callable[[list[str]], str] = random.choice) -> Mistake:
    """Plant the named mistake, or one chosen at random; refuses while another is planted here."""
    if name is not None and name not in MISTAKES:
        raise LabError(f"no mistake named {name!r}: stockpipe lab break --list names them ({', '.join(MISTAKES)})")
    before = planted(state)
    if before is not None:
        raise LabError(f"a mistake is planted already ({before['planted_at']}): find it with stockpipe doctor and "
                       "fix it, or undo it with stockpipe lab reset")
    stack = Stack(aws, report=lambda line: None)
    deployed(stack)
    mistake = MISTAKES[name] if name is not None else MISTAKES[choose(sorted(MISTAKES))]
    mistake.plant(aws, stack)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"mistake": mistake.name, "stack": aws.settings.stack_name,
                                 "target": aws.target_name,
                                 "planted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n",
                     encoding="utf-8")
    return mistake


def reset(aws: AwsContext, *, state: Path = STATE, report: Callable[[str], None] = print) -> str | None:
    """Undo what `lab break` planted: the deployment brought back to what init makes (the trigger
    enabled, the function's code and environment this build's). Returns the mistake's name, None when
    nothing was planted here (the deployment is brought in line all the same)."""
    before = planted(state)
    stack = Stack(aws, report=lambda line: None)
    deployed(stack)
    outcome = stack.up()
    for label in outcome.updated:
        report(f"  ~ {label} (as init makes it again)")
    state.unlink(missing_ok=True)
    return str(before["mistake"]) if before else None


__all__ = ["MISTAKES", "STATE", "LabError", "Mistake", "configuration_of", "deployed", "environment_of", "function_of",
           "plant", "planted", "reset"]
