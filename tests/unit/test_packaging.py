"""The Lambda zips are self-contained: each handler imports in a clean interpreter that sees only
the zip and what the Lambda Python runtime provides (boto3 and its dependencies)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stockpipe.provision import packaging

# What the AWS Lambda Python runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
FUNCTIONS = ("process_ticks", "trend_alerts")


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory) -> Path:
    """A folder holding only the runtime's packages (links into this venv)."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, f"{name} is not installed"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        os.symlink(source, folder / source.name)
    return folder


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_imports_from_the_zip_alone(function, runtime_dir, tmp_path):
    package = packaging.build(function)
    zip_path = tmp_path / f"{function}.zip"
    zip_path.write_bytes(package.data)
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import handler\n"
        "assert callable(handler.lambda_handler)\n"
        "assert handler.__file__.startswith(sys.argv[1]), handler.__file__\n"
        "import stockpipe; assert stockpipe.__file__.startswith(sys.argv[1]), stockpipe.__file__\n"
        "print('ok')\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "ticks", "RAW_BUCKET": "raw-bucket", "DLQ_URL": "http://q", "ALERTS_LEDGER_TABLE": "ledger", "HEADS_TABLE": "heads",
        "TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:t",
    }
    # -I: ignore PYTHON* variables and the user site; -S: no site-packages at all.
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(zip_path), str(runtime_dir)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_probe_would_notice_a_missing_dependency(runtime_dir, tmp_path):
    """Guard against a probe that cannot fail: a zip without the stockpipe package must not import."""
    zip_path = tmp_path / "broken.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("handler.py", packaging.handler_source("process_ticks"))
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; sys.path[:0]=[sys.argv[1], sys.argv[2]]; import handler",
         str(zip_path), str(runtime_dir)],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode != 0 and "No module named 'stockpipe'" in done.stderr


def test_zips_are_reproducible_and_hold_no_cli_or_engine():
    first = packaging.build("process_ticks")
    packaging.build.cache_clear()  # built again from the sources, not the process's copy
    second = packaging.build("process_ticks")
    assert first.data == second.data and first.sha256 == second.sha256
    names = zipfile.ZipFile(__import__("io").BytesIO(first.data)).namelist()
    assert "handler.py" in names and "stockpipe/domain/signals.py" in names
    assert not any(n.startswith(("stockpipe/cli", "stockpipe/engine", "stockpipe/demo")) for n in names)


def test_the_cold_start_script_measures_both_functions():
    done = subprocess.run([sys.executable, str(Path(__file__).parents[2] / "scripts" / "lambda_cold_start.py"), "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(FUNCTIONS)
    shape = re.compile(r"\w+ +zip [\d,]+ bytes, cold start +\d+ ms median \(min \d+, max \d+, 1 runs\)")
    assert all(shape.fullmatch(line) for line in lines), lines
