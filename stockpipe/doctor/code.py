"""Check 2, the code each function runs: downloaded from where Lambda keeps it (GetFunction's
Code.Location), every file read for invisible characters (the seeds' U+200B that broke parsing) and
for non-ASCII ones outside strings and comments; and compared with this build (init's zip,
byte-for-byte reproducible): a function that runs other code is a stale deploy, named with the files
that differ."""

from __future__ import annotations

import io
import tokenize
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from stockpipe.doctor.configuration import invisible, named
from stockpipe.doctor.model import Finding, Look, ok, problem, skipped
from stockpipe.provision.functions import Function

GROUP = "code"
DOWNLOAD_SECONDS = 10.0
SHOWN = 3


@dataclass(frozen=True)
class Stray:
    """A character that should not be in code: where, and what."""

    path: str
    line: int
    column: int
    char: str

    @property
    def hidden(self) -> bool:
        return invisible(self.char) or (self.char.isspace() and not self.char.isascii())

    def __str__(self) -> str:
        kind = "invisible" if self.hidden else "non-ASCII"
        return f"{named(self.char)} ({kind}) at {self.path} line {self.line}, column {self.column}"


def strays(path: str, text: str) -> list[Stray]:
    """Invisible characters anywhere (they change what a line means, or break it, unseen), and
    non-ASCII ones outside strings and comments (a homoglyph in a name); a visible non-ASCII character
    in a string or a comment is text, not a mistake."""
    found: list[Stray] = []
    literal = _literal_spans(text)
    for number, line in enumerate(text.splitlines(), start=1):
        for column, ch in enumerate(line, start=1):
            if ch.isascii() and (ch.isprintable() or ch in "\t\f"):
                continue  # code as Python reads it (a tab indents, a form feed is whitespace)
            stray = Stray(path, number, column, ch)
            if stray.hidden or not any(start <= (number, column - 1) < end for start, end in literal.get(number, ())):
                found.append(stray)
    return found


def _literal_spans(text: str) -> dict[int, list[tuple[tuple[int, int], tuple[int, int]]]]:
    """The strings and comments of Python source, by each line they cover; none when it does not parse
    (then every non-ASCII character is named, as the parser would stop at it anyway)."""
    spans: dict[int, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.STRING, tokenize.COMMENT):
                for line in range(token.start[0], token.end[0] + 1):
                    spans.setdefault(line, []).append((token.start if line == token.start[0] else (line, 0),
                                                       token.end if line == token.end[0] else (line + 1, 0)))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return {}
    return spans


def python_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".py"):
                yield name, archive.read(name)


def check(look: Look) -> list[Finding]:
    findings: list[Finding] = []
    for function in look.resources:
        if isinstance(function, Function):
            findings += _function(look, function)
    return findings


def _function(look: Look, function: Function) -> list[Finding]:
    answer = look.function(function.key)
    if answer is None:
        return [skipped(GROUP, function.key, f"the code of {function.name} not read: the function does not exist "
                        "(see existence)")]
    local = function.package
    configuration = answer.get("Configuration", {})
    location = str(answer.get("Code", {}).get("Location") or "")
    deployed = _download(look, location) if location else None
    findings: list[Finding] = []
    if deployed is None:
        why = "could not be downloaded" if location else f"{look.aws.engine.name} gives no location to read it from"
        findings.append(skipped(GROUP, f"{function.key}-characters", f"the deployed code of {function.name} not read: {why}"))
    else:
        found = [stray for name, data in python_files(deployed) for stray in _strays(name, data)]
        if found:
            here = {(s.path, s.line, s.column, s.char) for name, data in python_files(local.data)
                    for s in _strays(name, data)}
            in_build = [stray for stray in found if (stray.path, stray.line, stray.column, stray.char) in here]
            fix = (f"retype that line in {_source_of(function, in_build[0].path)}, then stockpipe init" if in_build
                   else "stockpipe init deploys this build, which has none")
            more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
            findings.append(problem(GROUP, f"{function.key}-characters", f"the deployed code of {function.name} has "
                                    f"{'; '.join(str(s) for s in found[:SHOWN])}{more}", fix,
                                    characters=[str(s) for s in found]))
    if configuration.get("CodeSha256") != local.sha256:
        differ = _differing(deployed, local.data) if deployed is not None else []
        files = (f"; {', '.join(differ[:SHOWN])}{' and more' if len(differ) > SHOWN else ''} "
                 f"{'differs' if len(differ) == 1 else 'differ'}") if differ else ""
        findings.append(problem(GROUP, f"{function.key}-build", f"{function.name} runs code that is not this build "
                                f"(deployed {configuration.get('LastModified', '?')}{files})",
                                "stockpipe init deploys this build", files=differ))
    elif deployed is not None and not findings:
        count = sum(1 for _ in python_files(local.data))
        findings.append(ok(GROUP, function.key, f"{function.name} runs this build ({len(local.data) // 1024} KiB, "
                           f"{count} files), with no invisible or stray non-ASCII character"))
    else:
        findings.append(ok(GROUP, f"{function.key}-build", f"{function.name} runs this build (CodeSha256 "
                           f"{local.sha256[:12]}…)"))
    return findings


def _strays(name: str, data: bytes) -> list[Stray]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [Stray(name, 0, error.start, "\ufffd")]
    return strays(name, text)


def _differing(deployed: bytes, local: bytes) -> list[str]:
    ours, theirs = dict(python_files(local)), dict(python_files(deployed))
    return sorted(name for name in set(ours) | set(theirs) if ours.get(name) != theirs.get(name))


def _source_of(function: Function, path: str) -> str:
    """Where a file of the zip comes from in this checkout: lambdas/<folder>/handler.py or stockpipe/..."""
    return f"lambdas/{function.folder}/{path}" if path == "handler.py" else path


def _download(look: Look, location: str) -> bytes | None:
    """The deployed zip. An emulator's location names the host it thinks it is on ("localhost"); it is
    read through the endpoint the pipeline uses instead (a container's localhost is not the engine)."""
    url = location
    endpoint = look.aws.endpoint_url
    if endpoint:
        parts, engine = urlsplit(location), urlsplit(endpoint)
        if parts.hostname in ("localhost", "127.0.0.1", "localhost.localstack.cloud"):
            url = urlunsplit((engine.scheme, engine.netloc, parts.path, parts.query, ""))
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_SECONDS) as response:  # noqa: S310 - Lambda's own URL
            return bytes(response.read())
    except (OSError, ValueError):
        return None


__all__ = ["Stray", "check", "python_files", "strays"]
