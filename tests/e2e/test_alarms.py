"""The alarms on a real engine: an incident's metric data takes exactly its alarms to ALARM, the others
to OK, and each notification reaches the operations topic (a queue subscribed to it here reads them).

MiniStack publishes AWS/Lambda Invocations, Errors, Throttles and Duration for a function invoked
through the Invoke API (not for its event-source mappings' invocations), and none of AWS/SQS nor
IteratorAge. So the test invokes each function once with an empty batch (0 errors, 0 throttles:
their alarms go to OK) and puts what AWS would during the incident: a dead letter and a batch given
up on (each queue's depth 1), and a stalled Kinesis trigger (process-ticks' iterator age far over
ALARM_LAG_SECONDS). The engine evaluates alarms when one is put or metric data arrives, and matches
a metric by namespace and name alone: any function's invocation counts for both functions' alarms,
which is why the state before the incident may already be OK for them (another test invoked a
function within the period). AWS refuses PutMetricData in its own namespaces: on --engine aws this
test cannot play the incident.
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
    cloudwatch, sns, sqs, lam = (aws.client(service) for service in ("cloudwatch", "sns", "sqs", "lambda"))
    firing = {f"{settings.dlq_name}-not-empty", f"{settings.onfailure_queue_name}-not-empty",
              f"{settings.process_function_name}-iterator-age"}
    assert firing < set(names)
    before = states(cloudwatch, names)
    assert {before[name] for name in firing} == {"INSUFFICIENT_DATA"}  # as init leaves them: no data yet
    assert "ALARM" not in before.values()

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
        for function in (settings.process_function_name, settings.trends_function_name):
            response = lam.invoke(FunctionName=function, Payload=json.dumps({"Records": []}).encode())
            assert "FunctionError" not in response, response["Payload"].read()
        for namespace, data in incident.items():
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)

        expected = {name: "ALARM" if name in firing else "OK" for name in names}
        # An engine that evaluates on a schedule (AWS, LocalStack) takes up to a period to get there.
        wait_until(lambda: states(cloudwatch, names) == expected, what=f"the alarms' states {expected}",
                   timeout=max(alarm.period for alarm in alarms) * 2, interval=0.2)

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
