"""One symbol's ticks split between two containers of each function, as a reshard or a second
concurrent execution environment does on AWS: a warm trend-alerts window that missed the other
container's ticks must notice it and read the table, and the alerts must be exactly the reference."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import packaging
from tests.helpers import table_stream, wait_for
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
BATCH = 60


def twin(lam: Any, name: str, folder: str) -> str:
    """A second function with the same code, role and environment: another container."""
    config = lam.get_function_configuration(FunctionName=name)
    lam.create_function(FunctionName=f"{name}-twin", Runtime=config["Runtime"], Role=config["Role"],
                        Handler=config["Handler"], Timeout=config["Timeout"], MemorySize=config["MemorySize"],
                        Environment={"Variables": config["Environment"]["Variables"]},
                        Code={"ZipFile": packaging.build(folder).data})
    wait_for(lambda: lam.get_function_configuration(FunctionName=f"{name}-twin")["State"], lambda s: s == "Active",
             what=f"{name}-twin active")
    return f"{name}-twin"


def invoke(lam: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event, default=str).encode())
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, answer
    return answer


def stream_records(aws: Any, table: str, timestamps: set[str]) -> list[dict[str, Any]]:
    """The table's stream records of these ticks, as the stream delivers them (read from the start)."""
    return [r for r in table_stream(aws, table) if r["dynamodb"]["NewImage"]["timestamp"]["S"] in timestamps]


def test_a_symbol_split_between_two_containers_alerts_exactly_the_reference(pipeline, settings):
    aws, lam = pipeline.aws, pipeline.aws.client("lambda")
    ticks = SyntheticMarket(["AAPL"], seed=11, start=START, jump_every=23).series("AAPL", 3 * BATCH)
    first, second, third = ticks[:BATCH], ticks[BATCH:2 * BATCH], ticks[2 * BATCH:]
    expected = expected_alerts(frame(ticks))
    in_third = {alert for alert in expected if alert[2] >= third[0].timestamp}
    assert {signal for _, signal, _ in in_third} >= {"BUY", "SELL"}  # the third batch has crossovers to get right
    process_twin = twin(lam, settings.process_function_name, "process_ticks")
    trends_twin = twin(lam, settings.trends_function_name, "trend_alerts")
    try:
        # 1. The whole flow takes the first batch: trend-alerts' container now holds a warm window.
        KinesisSender(aws, settings.stream_name).send([Outgoing.of(t) for t in first])
        in_first = {alert for alert in expected if alert[2] <= first[-1].timestamp}
        wait_for(pipeline.ledger.count, lambda n: n == len(in_first), what="the first batch's alerts")
        [mapping] = lam.list_event_source_mappings(FunctionName=settings.trends_function_name)["EventSourceMappings"]
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        wait_for(lambda: lam.get_event_source_mapping(UUID=mapping["UUID"])["State"], lambda s: s == "Disabled",
                 what="trend-alerts' trigger disabled")

        # 2. The second batch goes to the other containers (a child shard's, say), events shaped as AWS's.
        kinesis = {"Records": [{
            "eventSource": "aws:kinesis", "eventSourceARN": aws.where.stream_arn, "awsRegion": settings.region,
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": t.symbol, "sequenceNumber": str(n),
                        "data": base64.b64encode(Outgoing.of(t).data).decode(), "approximateArrivalTimestamp": 0}}
            for n, t in enumerate(second)]}
        assert invoke(lam, process_twin, kinesis)["stored"] == BATCH  # the head is shared: no window to go stale
        records = stream_records(aws, settings.table_name, {t.timestamp for t in second})
        answer = invoke(lam, trends_twin, {"Records": records})
        assert (answer["window_reads"], answer["windows_stale"]) == (1, 0)  # a cold container reads the table

        # 3. The third batch through Kinesis; its stream records to the first container, whose window
        # stops at the first batch: it must see that the ticks do not follow it.
        KinesisSender(aws, settings.stream_name).send([Outgoing.of(t) for t in third])
        records = wait_for(lambda: stream_records(aws, settings.table_name, {t.timestamp for t in third}),
                           lambda found: len(found) == BATCH, what="the third batch stored")
        answer = invoke(lam, settings.trends_function_name, {"Records": records})
        assert (answer["window_reads"], answer["windows_stale"]) == (1, 1)
        assert answer["published"] == len(in_third)
    finally:
        for name in (process_twin, trends_twin):
            lam.delete_function(FunctionName=name)

    ledger = aws.resource("dynamodb").Table(settings.alerts_ledger_table).scan()["Items"]
    published = {(symbol, signal, timestamp) for symbol, timestamp, signal in
                 (str(item["alert_id"]).split("#") for item in ledger)}
    assert published == expected and len(ledger) == len(expected)
