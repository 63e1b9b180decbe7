"""Lambda zip packages: the handler at the root plus the parts of stockpipe it imports.

The Lambda Python runtime provides boto3; everything else a handler imports must be in its zip
(tests/unit/test_packaging.py imports each handler in a clean interpreter to prove it).
The zip is byte-for-byte reproducible, so re-running init sees an unchanged CodeSha256 and
does not redeploy.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import stockpipe

# The runtime-side part of the package: no CLI, no producer, no provisioning, no engine.
LAMBDA_MODULES = ("__init__.py", "errors.py", "metrics.py", "settings.py", "processing.py", "ordering.py", "trending.py",
                  "waiting.py", "domain", "aws")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        """The CodeSha256 Lambda reports: base64 of the SHA-256 digest."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def _package_files() -> list[tuple[str, Path]]:
    root = Path(stockpipe.__file__).parent
    files: list[tuple[str, Path]] = []
    for entry in LAMBDA_MODULES:
        path = root / entry
        candidates = [path] if path.is_file() else sorted(path.rglob("*.py"))
        files.extend((f"stockpipe/{p.relative_to(root).as_posix()}", p) for p in candidates)
    return files


def handler_source(function_dir: str) -> bytes:
    return (resources.files("stockpipe.lambdas") / function_dir / "handler.py").read_bytes()


def build(function_dir: str) -> Package:
    """function_dir: the folder under lambdas/ (process_ticks or trend_alerts)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [("handler.py", handler_source(function_dir))]
        entries += [(name, path.read_bytes()) for name, path in _package_files()]
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return Package(function_dir, buffer.getvalue())
