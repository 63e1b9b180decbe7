"""Cold start of each Lambda zip: a clean interpreter that sees only the zip imports the handler and
builds its function (the environment init writes parsed, one boto3 session, one client per service),
as the first invocation does. Nothing is compiled ahead (-B): Lambda's /var/task is read-only, so a
zip without .pyc files is compiled at every cold start.

    .venv/bin/python scripts/lambda_cold_start.py [RUNS]

Prints the median, min and max of RUNS runs (default 15) per function. No engine is needed: the
adapters are built, not used.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile

from stockpipe.provision import packaging
from stockpipe.settings import FunctionEnvironment, Settings

# What init writes for the default settings, and what Lambda sets.
ENV = {
    "PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    **FunctionEnvironment.of(Settings.from_env({}), raw_bucket="cold-bucket",
                             dlq_url="http://127.0.0.1:9/000000000000/cold-dlq",
                             topic_arn="arn:aws:sns:us-east-1:000000000000:cold",
                             partial_batch_response=True).environ(),
}
PROBE = ("import sys, time; sys.path.insert(0, '.'); started = time.perf_counter(); import handler; "
         "handler.function(); print(time.perf_counter() - started)")


def measure(function: str, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        zipfile.ZipFile(io.BytesIO(packaging.build(function).data)).extractall(folder)
        seconds = []
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-I", "-B", "-c", PROBE], cwd=folder, env=ENV, capture_output=True,
                                  text=True, check=False)
            if done.returncode:
                raise SystemExit(f"{function}: {done.stderr.strip().splitlines()[-1]}")
            seconds.append(float(done.stdout))
        return seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    for function in ("process_ticks", "trend_alerts"):
        seconds = measure(function, runs)
        size = len(packaging.build(function).data)
        print(f"{function:<14} zip {size:,} bytes, cold start {statistics.median(seconds) * 1000:5.0f} ms median "
              f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f}, {runs} runs)")


if __name__ == "__main__":
    main()
