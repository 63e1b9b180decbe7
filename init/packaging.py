"""Lambda zip packages: the handler at the root plus the modules of stockpipe it imports, found by
following its imports (those inside functions too) from the handler's source: nothing else ships.

The Lambda Python runtime provides boto3; everything else a handler imports must be in its zip
(tests/unit/test_packaging.py imports each handler in a clean interpreter to prove it).
The zip is byte-for-byte reproducible, so re-running init sees an unchanged CodeSha256 and
does not redeploy.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import stockpipe

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        """The CodeSha256 Lambda reports: base64 of the SHA-256 digest."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def _package_files(source: bytes) -> list[tuple[str, Path]]:
    """The stockpipe modules ``source`` imports, and theirs, with the package files on their way."""
    root = Path(stockpipe.__file__).parent
    found: set[Path] = set()
    pending = [source]
    while pending:
        for name in _imports(pending.pop()):
            for path in _files_of(root, name):
                if path not in found:
                    found.add(path)
                    pending.append(path.read_bytes())
    return sorted((f"stockpipe/{path.relative_to(root).as_posix()}", path) for path in found)


def _imports(source: bytes) -> set[str]:
    """Every ``stockpipe.x`` module a source names in an import (``from stockpipe.a import b`` names
    ``stockpipe.a`` and, when it is a module, ``stockpipe.a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "stockpipe" or name.startswith("stockpipe.")}


def _files_of(root: Path, name: str) -> list[Path]:
    """The files importing ``name`` runs: each package's __init__.py on the way, and the module."""
    parts, files = name.split(".")[1:], [root / "__init__.py"]
    for depth in range(1, len(parts) + 1):
        folder = root.joinpath(*parts[:depth])
        if (folder / "__init__.py").is_file():
            files.append(folder / "__init__.py")
        elif folder.with_suffix(".py").is_file() and depth == len(parts):
            files.append(folder.with_suffix(".py"))
    return files


def handler_source(function_dir: str) -> bytes:
    return (resources.files("stockpipe.lambdas") / function_dir / "handler.py").read_bytes()


@functools.cache
def build(function_dir: str) -> Package:
    """function_dir: the folder under lambdas/ (process_ticks or trend_alerts). Built once per process:
    init compares it with the deployed code at every run, and the sources do not change meanwhile."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [("handler.py", handler_source(function_dir))]
        entries += [(name, path.read_bytes()) for name, path in _package_files(entries[0][1])]
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return Package(function_dir, buffer.getvalue())
