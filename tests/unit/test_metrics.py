"""The functions' metrics line follows the embedded metric format exactly."""

import json

from stockpipe.metrics import COUNT, MILLISECONDS, emf_line


def test_an_emf_line_declares_each_metric_and_carries_its_value_at_the_top_level() -> None:
    line = emf_line("stockpipe", "process-ticks", {"Stored": (3, COUNT), "BatchTime": (12.5, MILLISECONDS)},
                    clock=lambda: 1764460800.123)
    assert "\n" not in line
    assert json.loads(line) == {
        "_aws": {"Timestamp": 1764460800123, "CloudWatchMetrics": [{
            "Namespace": "stockpipe", "Dimensions": [["FunctionName"]],
            "Metrics": [{"Name": "Stored", "Unit": "Count"}, {"Name": "BatchTime", "Unit": "Milliseconds"}]}]},
        "FunctionName": "process-ticks", "Stored": 3, "BatchTime": 12.5,
    }


def test_a_value_cloudwatch_would_reject_is_left_out_with_its_declaration() -> None:
    document = json.loads(emf_line("ns", "f", {"A": (float("nan"), COUNT), "B": (float("inf"), COUNT),
                                                "C": (1, COUNT)}, clock=lambda: 0.0))
    assert document["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "C", "Unit": "Count"}]
    assert "A" not in document and "B" not in document and document["C"] == 1
