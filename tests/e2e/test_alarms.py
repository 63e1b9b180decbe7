"""The alarms on a real engine: an incident's metric data takes exactly its alarms to ALARM, and each
notification reaches the operations topic (a queue subscribed to it here reads them).

The engine publishes none of AWS's service metrics (AWS/SQS, AWS/Lambda), so the test puts what AWS
would during the incident: a dead letter and a batch given up on (each queue's depth 1), and a
stalled Kinesis trigger (process-ticks' iterator age far over ALARM_LAG_SECONDS). AWS refuses
PutMetricData in its own namespaces: on --engine aws this test cannot play the incident.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stockpipe.provision import Stack
from stockpipe.provision.monitoring import Alarm
from stockpipe.provision.policies import queue_policy_for_topic
from stockpipe.waiting import wait_until


def states(cloudwatch: Any, names: list[str]) -> dict[str, str]:
    answer = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    return {alarm["AlarmName"]: alarm["StateValue"] for alarm in answer}


def test_an_incidents_metrics_take_its_alarms_to_alarm_and_tell_the_operations_topic(engine, pipeline, settings):
    if engine.url is None:
        pytest.skip("AWS publishes its service metrics itself and refuses PutMetricData in AWS/ namespaces")
    aws = pipeline.aws
    stack = Stack(aws, report=lambda line: None)
    alarms = [r for r in stack.resources if isinstance(r, Alarm)]
    names = [alarm.name for alarm in alarms]
    cloudwatch, sns, sqs = aws.client("cloudwatch"), aws.client("sns"), aws.client("sqs")
    assert set(states(cloudwatch, names).values()) == {"INSUFFICIENT_DATA"}  # as init leaves them: no data yet

    topic = aws.where.arn("sns", settings.ops_topic_name)
    inbox = f"{settings.stack_name}-ops-inbox"
    url = sqs.create_queue(QueueName=inbox, Attributes={"Policy": json.dumps(queue_policy_for_topic(
        aws.where.queue_arn(inbox), topic))})["QueueUrl"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=aws.where.queue_arn(inbox),
                                 Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)
    try:
        incident = {
            "AWS/SQS": [{"MetricName": "ApproximateNumberOfMessagesVisible", "Value": 1,
                         "Dimensions": [{"Name": "QueueName", "Value": queue}]}
                        for queue in (settings.dlq_name, settings.onfailure_queue_name)],
            "AWS/Lambda": [{"MetricName": "IteratorAge", "Value": 10 * settings.alarm_lag_seconds * 1000,
                            "Unit": "Milliseconds",
                            "Dimensions": [{"Name": "FunctionName", "Value": settings.process_function_name}]}],
        }
        for namespace, data in incident.items():
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
        firing = {f"{settings.dlq_name}-not-empty", f"{settings.onfailure_queue_name}-not-empty",
                  f"{settings.process_function_name}-iterator-age"}
        assert firing < set(names)

        now = wait_until(lambda: (lambda seen: seen if {n for n, s in seen.items() if s == "ALARM"} == firing
                                  else None)(states(cloudwatch, names)),
                         what="the incident's alarms in ALARM", timeout=30, interval=0.2)
        # Errors and throttles had no data: untouched.
        assert {name: state for name, state in now.items() if name not in firing} == {
            name: "INSUFFICIENT_DATA" for name in names if name not in firing}

        notices: list[dict[str, Any]] = []

        def read() -> bool:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []):
                notices.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return len(notices) >= len(firing)

        wait_until(read, what="the alarms' notifications in the ops inbox", timeout=30, interval=0.2)
        assert sorted(n["AlarmName"] for n in notices) == sorted(firing)  # each once, nothing else
        assert {(n["NewStateValue"], n["OldStateValue"]) for n in notices} == {("ALARM", "INSUFFICIENT_DATA")}
        iterator = next(n for n in notices if n["AlarmName"] == f"{settings.process_function_name}-iterator-age")
        assert iterator["Trigger"]["Dimensions"] == [{"Name": "FunctionName", "Value": settings.process_function_name}]
        assert iterator["Trigger"]["Threshold"] == settings.alarm_lag_seconds * 1000
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    finally:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        sqs.delete_queue(QueueUrl=url)
