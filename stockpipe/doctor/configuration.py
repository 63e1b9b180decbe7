"""Check 1, the configuration: a stray character in a name, region, e-mail or symbol (the seeds'
trailing space in the stream name, a hidden U+200B), named with the variable and where it was set.

Settings.from_env refuses such a value at its first error; here every variable is looked at, each
problem is one line, and the rest of the diagnosis goes on with the values cleaned of stray
characters (what they become once the user removes them). A value Settings refuses for another
reason is one line too, in Settings' own words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from stockpipe.doctor.model import Finding, problem, where_set
from stockpipe.settings import NAME_VARIABLES, Settings, SettingsError

GROUP = "configuration"
# Every variable that names something, says where, or whom: one stray character in any of them is
# a resource that is never found, a region that does not exist, or an address that never receives.
SCANNED = (*NAME_VARIABLES, "AWS_REGION", "AWS_DEFAULT_REGION", "ALERT_EMAIL", "AWS_ENDPOINT_URL", "AWS_PROFILE")
SYMBOLS_VARIABLE = "PRODUCER_SYMBOLS"
_SPACE_NAMES = {" ": "space", "\t": "tab", "\n": "newline", "\r": "carriage return"}
# Invisible, or not meant to be in a name: format (U+200B, U+FEFF), separators other than a plain
# space (U+00A0), control, private-use and unassigned characters.
_INVISIBLE_CATEGORIES = {"Cf", "Zs", "Zl", "Zp", "Cc", "Co", "Cn"}


def invisible(ch: str) -> bool:
    return ch != " " and unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def named(ch: str) -> str:
    """A character as the user can find it: 'a trailing space', 'U+200B ZERO WIDTH SPACE'."""
    if ch in _SPACE_NAMES:
        return _SPACE_NAMES[ch]
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def character_problems(value: str) -> tuple[list[str], bool]:
    """What is wrong with a value's characters, in words ("a trailing space", "U+200B ZERO WIDTH
    SPACE, invisible, at character 6"), and whether it is only stray characters at its ends (the fix
    is then "remove it"; otherwise "retype the value")."""
    stray = {i for i, ch in enumerate(value) if ch.isspace() or invisible(ch)}
    start = 0
    while start < len(value) and start in stray:
        start += 1
    end = len(value)
    while end > start and end - 1 in stray:
        end -= 1
    ends: list[str] = []
    for side, chars in (("leading", value[:start]), ("trailing", value[end:])):
        if len(chars) == 1:
            ends.append(f"a {side} {named(chars)}")
        elif chars:
            ends.append(f"{len(chars)} {side} characters ({', '.join(named(ch) for ch in chars)})")
    inner = []
    for index in range(start, end):
        ch = value[index]
        if index in stray:
            inner.append(f"{named(ch)}, invisible, at character {index + 1}")
        elif not ch.isascii():
            inner.append(f"the non-ASCII character {named(ch)} ({ch}) at character {index + 1}")
    return ends + inner, bool(ends) and not inner


def _describe(found: list[str]) -> str:
    """"has a trailing space", "contains U+200B ZERO WIDTH SPACE, invisible, at character 6"."""
    return " and ".join(f"{'has' if ' leading ' in f' {item}' or ' trailing ' in f' {item}' else 'contains'} {item}"
                        for item in found)


def cleaned(value: str) -> str:
    """The value without stray characters: what it becomes once the user removes them."""
    return "".join(ch for ch in value if not invisible(ch)).strip()


def check(environ: Mapping[str, str], sources: Mapping[str, str]) -> tuple[list[Finding], Settings | None]:
    """Every stray character, one line per variable; then Settings over the cleaned values. Returns the
    findings and the settings the rest of the diagnosis uses (None when they cannot be read at all)."""
    findings: list[Finding] = []
    env = dict(environ)
    flagged: set[str] = set()
    for variable in SCANNED:
        value = environ.get(variable)
        if not value:
            continue
        found, ends_only = character_problems(value)
        if found:
            flagged.add(variable)
            env[variable] = cleaned(value)
            findings.append(problem(GROUP, variable, f"{variable}={value!r} {_describe(found)} "
                                    f"({where_set(variable, environ, sources)})",
                                    "remove it" if ends_only else "retype the value"))
    symbols = environ.get(SYMBOLS_VARIABLE)
    if symbols:
        findings += _symbols(symbols, where_set(SYMBOLS_VARIABLE, environ, sources))
        if any(f.check == SYMBOLS_VARIABLE for f in findings):
            flagged.add(SYMBOLS_VARIABLE)
            env[SYMBOLS_VARIABLE] = ",".join(cleaned(part) for part in symbols.split(",") if cleaned(part))
    refused: set[str] = set()
    for _ in range(len(env) + 1):
        try:
            settings = Settings.from_env(env, sources=sources)
        except SettingsError as error:
            if not error.variables or set(error.variables) <= refused:
                findings.append(problem(GROUP, "settings", str(error)))
                return findings, None
            if not set(error.variables) <= flagged:
                findings.append(problem(GROUP, ",".join(error.variables), str(error)))
            # Go on without it, to name every value that cannot work; the deployment is not looked at.
            refused.update(error.variables)
            for variable in error.variables:
                env.pop(variable, None)
            continue
        return findings, (None if refused else settings)
    return findings, None


def _symbols(value: str, where: str) -> list[Finding]:
    """Each comma-separated symbol (spaces around commas are fine: they are stripped when read)."""
    findings = []
    for number, part in enumerate(value.split(","), start=1):
        core = part.strip(" ")
        found, ends_only = character_problems(core)
        if found:
            findings.append(problem(GROUP, SYMBOLS_VARIABLE, f"{SYMBOLS_VARIABLE}={value!r}: symbol {number} "
                                    f"({core!r}) {_describe(found)} ({where})",
                                    "remove it" if ends_only else "retype the symbol"))
    return findings


__all__ = ["SCANNED", "character_problems", "check", "cleaned", "invisible"]
