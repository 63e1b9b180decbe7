""".env loading that remembers where each value came from, so a wrong value can be pointed at
("AWS_REGION='us-east-7' is not a region botocore knows ... (set in .env line 14)").

The rules are the CLI's: python-dotenv reads the file, and a variable already in the environment
(even empty) wins over the file. One more: for real AWS, .env credentials never shadow a profile.
.env.example carries the emulator placeholders AWS_ACCESS_KEY_ID=test / AWS_SECRET_ACCESS_KEY=test;
copied to .env and pointed at real AWS (AWS_ENDPOINT_URL unset) with AWS_PROFILE set, they would win
over the profile (boto3 reads environment keys first) and every call would fail as "invalid token".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

# Taken from .env only when they cannot shadow credentials the environment already chose.
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# A BOM at the start of .env (some Windows editors write one) would otherwise become part of the
# first variable's name.
_ENCODING = "utf-8-sig"


@dataclass(frozen=True)
class Loaded:
    """What `load` did. `sources` maps each variable it set to where: {"AWS_REGION": ".env line 14"}
    (pass it to Settings.from_env(sources=...); settings.describe_source names one); `skipped` maps
    the credentials it left out the same way, and `skip_reason` says why."""

    path: Path
    sources: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    skip_reason: str = ""

    def skipped_note(self) -> str | None:
        """One line for the user when credentials in .env were left out; None when none were."""
        if not self.skipped:
            return None
        names = ", ".join(f"{name} ({where})" for name, where in self.skipped.items())
        return f"not using {names} from {self.path}: {self.skip_reason}"


def load(path: Path, environ: MutableMapping[str, str]) -> Loaded:
    """Set in `environ` each variable of the .env at `path` that `environ` does not already have,
    and say where each came from. A missing file sets nothing."""
    if not path.is_file():
        return Loaded(path)
    values = {name: value for name, value in dotenv_values(path, encoding=_ENCODING).items()
              if value is not None and name not in environ}
    lines = _definition_lines(path.read_text(encoding=_ENCODING), values)

    skipped: dict[str, str] = {}
    reason = _credentials_reason(environ, values)
    if reason:
        for name in CREDENTIAL_VARIABLES:
            if name in values:
                del values[name]
                skipped[name] = _where(path, lines.get(name))

    sources: dict[str, str] = {}
    for name, value in values.items():
        environ[name] = value
        sources[name] = _where(path, lines.get(name))
    return Loaded(path, sources, skipped, reason if skipped else "")


def _credentials_reason(environ: Mapping[str, str], values: Mapping[str, str]) -> str:
    """Why .env credentials must not be used, or "" when they may be. Only for real AWS: an emulator
    takes any key, and the placeholders are what it is meant to get. A profile counts wherever it is
    set (environment or .env): keys from .env would shadow either."""
    if environ.get("AWS_ENDPOINT_URL") or values.get("AWS_ENDPOINT_URL"):
        return ""
    profile = environ.get("AWS_PROFILE") or values.get("AWS_PROFILE")
    if profile:
        return (f"the target is real AWS (AWS_ENDPOINT_URL unset) and AWS_PROFILE={profile} is set, "
                "whose credentials they would shadow")
    if environ.get("AWS_ACCESS_KEY_ID"):
        return ("the target is real AWS (AWS_ENDPOINT_URL unset) and the environment already has "
                "AWS_ACCESS_KEY_ID; keys from two places would not match")
    return ""


def _definition_lines(text: str, names: Mapping[str, str]) -> dict[str, int]:
    """The line each name is defined on (the last definition wins, as in python-dotenv)."""
    pattern = re.compile(r"\s*(?:export\s+)?(['\"]?)([A-Za-z_][A-Za-z0-9_.-]*)\1\s*=")
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = pattern.match(line)
        if match and match.group(2) in names:
            lines[match.group(2)] = number
    return lines


def _where(path: Path, line: int | None) -> str:
    label = ".env" if path.name == ".env" else str(path)
    return f"{label} line {line}" if line else label


__all__ = ["CREDENTIAL_VARIABLES", "Loaded", "load"]
