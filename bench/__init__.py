"""`make bench` (`python -m bench`): how fast and how flat the whole flow runs on the embedded engine.

It starts its own engine on a free port and runs, on it, with fresh uniquely named resources:

1. the engine ceiling: a do-nothing two-stage flow (Kinesis -> BatchWriteItem -> table stream ->
   a function that logs one line) at the same batch size: what the engine itself allows;
2. with --compare-naive, the seeds' style flow (per-tick calls, batch size 2);
3. our pipeline as init deploys it; with --soak, latency at the demo's rate before and after a push.

While a flow runs the bench asks the engine only small questions (our pipeline's heads, the table
stream's length, the alert queue's length, the last function's new log lines), so that watching
takes next to nothing from the flow it measures. Once they say it is done, it reads the table's
DynamoDB stream and the SQS queue subscribed to the topic in full: every tick's stored time (the
engine's write clock) and every alert's arrival, without scanning. The figures (rates, latency
percentiles, CPU and memory of every process, exact counts) come from those recorded times, and are
printed and written as JSON and an SVG chart. Nothing is timed inside the tests: this command is where speed
and memory are measured.
"""

from bench.ledger import expected_alert_count, expected_alerts
from bench.options import BenchOptions, OptionsError
from bench.runner import BenchError, run_bench

__all__ = ["BenchError", "BenchOptions", "OptionsError", "expected_alert_count", "expected_alerts", "run_bench"]
