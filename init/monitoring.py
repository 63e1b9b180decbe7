"""Watching the pipeline: CloudWatch alarms on what goes wrong (a dead letter, a batch given up on, ticks
waiting too long, a function failing or throttled), each notifying the operations topic; and one
CloudWatch dashboard of the functions' own metrics, the metrics the alarms watch and the alarms' states.

Both are derived from the resource list (stack.py: ``Core.alarms``, ``Core.dashboard``). The service
metrics (AWS/SQS, AWS/Lambda) and the extraction of the functions' metric lines (EMF) are AWS's:
MiniStack publishes only AWS/Lambda's for functions called through the Invoke API, so there the
queue and lag alarms fire only on metric data put by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code
from stockpipe.metrics import COUNT, MILLISECONDS
from stockpipe.provision.functions import Function
from stockpipe.provision.functions import Mapping as Trigger
from stockpipe.provision.messaging import Queue
from stockpipe.provision.model import TAG_KEY, Found, Resource, Run, Template

LAMBDA, SQS = "AWS/Lambda", "AWS/SQS"
PERIOD_SECONDS = 60
# GetDashboard of a name that does not exist: the Query code, the JSON/CBOR one, an engine's.
_NO_DASHBOARD = {"ResourceNotFound", "DashboardNotFoundError", "ResourceNotFoundException"}
# Dashboards are 24 columns wide.
_COLUMNS = 24

Arn = Callable[[Run], str]


class Alarm(Resource):
    """A CloudWatch metric alarm: ``statistic`` of ``namespace``/``metric`` with ``dimensions`` over
    ``period`` seconds, compared (``comparison``) with ``threshold`` for ``evaluation_periods``
    periods; on ALARM it notifies ``actions`` (topic ARNs). No data is not breaching: a queue that
    AWS reports nothing for, a function never invoked, is fine. An untagged alarm of the same name
    holds no data: it may be adopted (made ours and as specified)."""

    kind = "cloudwatch alarm"
    deploy_actions = (
        "cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource",  # find
        "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource",  # create (tagged on creation) and update
        "cloudwatch:DeleteAlarms",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, namespace: str, metric: str,
                 dimensions: Mapping[str, str], statistic: str, threshold: float, actions: Sequence[Arn],
                 description: str, comparison: str = "GreaterThanThreshold", period: int = PERIOD_SECONDS,
                 evaluation_periods: int = 1, unit: str = "") -> None:
        """``unit``: of the threshold, for people (plan)."""
        super().__init__(key, name, variable)
        self.namespace, self.metric, self.dimensions = namespace, metric, dict(dimensions)
        self.statistic, self.threshold, self.comparison = statistic, threshold, comparison
        self.period, self.evaluation_periods = period, evaluation_periods
        self.actions, self.description, self.unit = tuple(actions), description, unit

    def arn(self, run: Run) -> str:
        return run.aws.where.arn("cloudwatch", f"alarm:{self.name}")

    def request(self, run: Run) -> dict[str, Any]:
        """PutMetricAlarm's parameters, but the tags."""
        return {
            "AlarmName": self.name, "AlarmDescription": self.description, "ActionsEnabled": True,
            "AlarmActions": [action(run) for action in self.actions],
            "Namespace": self.namespace, "MetricName": self.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            "Statistic": self.statistic, "Period": self.period, "EvaluationPeriods": self.evaluation_periods,
            "Threshold": float(self.threshold), "ComparisonOperator": self.comparison,
            "TreatMissingData": "notBreaching",
        }

    def settings(self, run: Run) -> dict[str, object]:
        where = ", ".join(f"{k}={v}" for k, v in self.dimensions.items())
        sign = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">="}.get(self.comparison,
                                                                                       self.comparison)
        unit = f" {self.unit}" if self.unit else ""
        return {"watches": f"{self.namespace} {self.metric} ({where})",
                "alarm when": f"{self.statistic} {sign} {self.threshold:g}{unit} in {self.evaluation_periods} "
                              f"period(s) of {self.period} s (no data: not breaching)",
                "notifies": ", ".join(action(run) for action in self.actions), "why": self.description}

    def find(self, run: Run) -> Found | None:
        cloudwatch = run.aws.client("cloudwatch")
        alarms = cloudwatch.describe_alarms(AlarmNames=[self.name], AlarmTypes=["MetricAlarm"]).get(
            "MetricAlarms", [])
        current = next((a for a in alarms if a.get("AlarmName") == self.name), None)
        if current is None:
            return None
        tags = cloudwatch.list_tags_for_resource(ResourceARN=current["AlarmArn"]).get("Tags", [])
        owner = {t["Key"]: t["Value"] for t in tags}.get(TAG_KEY)
        return Found(owner, drift=self.drift(current, run), detail=current["AlarmArn"])

    def drift(self, current: Mapping[str, Any], run: Run) -> tuple[str, ...]:
        """How an alarm as DescribeAlarms shows it differs from the spec."""
        wanted, changes = self.request(run), []
        for key in ("Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods", "ComparisonOperator",
                    "TreatMissingData"):
            if current.get(key) != wanted[key]:
                changes.append(f"{key}: {current.get(key)} -> {wanted[key]}")
        if current.get("Threshold") is None or float(current["Threshold"]) != wanted["Threshold"]:
            changes.append(f"Threshold: {current.get('Threshold')} -> {wanted['Threshold']:g}")
        dimensions = {d["Name"]: d["Value"] for d in current.get("Dimensions") or []}
        if dimensions != self.dimensions:
            changes.append(f"Dimensions: {dimensions} -> {self.dimensions}")
        if sorted(current.get("AlarmActions") or []) != sorted(wanted["AlarmActions"]) \
                or current.get("ActionsEnabled") is False:
            changes.append(f"AlarmActions: {current.get('AlarmActions') or 'none'} -> {wanted['AlarmActions']}")
        return tuple(changes)

    def create(self, run: Run) -> None:
        run.aws.client("cloudwatch").put_metric_alarm(
            **self.request(run), Tags=run.tag_list)

    def update(self, run: Run, found: Found) -> None:
        cloudwatch = run.aws.client("cloudwatch")
        if found.drift:
            cloudwatch.put_metric_alarm(**self.request(run))  # the whole alarm; tags are set on creation only
        cloudwatch.tag_resource(ResourceARN=found.detail, Tags=run.tag_list)

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("cloudwatch").delete_alarms(AlarmNames=[self.name])
        return "deleted"

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            **self.request(run), "Tags": run.tag_list}}}


def not_empty(queue: Queue, actions: Sequence[Arn]) -> Alarm:
    """A queue that fills only when something failed (dead letters, batches given up on) holds a message."""
    return Alarm(f"{queue.key}-alarm", f"{queue.name}-not-empty", queue.variable, namespace=SQS,
                 metric="ApproximateNumberOfMessagesVisible", dimensions={"QueueName": queue.name},
                 statistic="Maximum", threshold=0, actions=actions, unit="messages",
                 description=f"{queue.name} holds messages: {queue.purpose}")


def lagging(trigger: Trigger, seconds: int, actions: Sequence[Arn]) -> Alarm:
    """What feeds a function waits longer than ``seconds``: a queue's oldest message, or how far a
    stream trigger's reads are behind the newest record (IteratorAge, in milliseconds)."""
    source, function = trigger.source, trigger.function
    if isinstance(source, Queue):
        return Alarm(f"{trigger.key}-alarm", f"{source.name}-oldest-message", source.variable, namespace=SQS,
                     metric="ApproximateAgeOfOldestMessage", dimensions={"QueueName": source.name},
                     statistic="Maximum", threshold=seconds, actions=actions, unit="s",
                     description=f"ticks have waited over {seconds} s in {source.name} for {function.name}")
    return Alarm(f"{trigger.key}-alarm", f"{function.name}-iterator-age", trigger.variable, namespace=LAMBDA,
                 metric="IteratorAge", dimensions={"FunctionName": function.name}, statistic="Maximum",
                 threshold=seconds * 1000, actions=actions, unit="ms",
                 description=f"{function.name} reads {source.name} over {seconds} s behind its newest record")


def failing(function: Function, actions: Sequence[Arn]) -> list[Alarm]:
    """A function's invocations fail (its batches are retried), or Lambda throttles it."""
    return [Alarm(f"{function.key}-{metric.lower()}-alarm", f"{function.name}-{metric.lower()}", function.variable,
                  namespace=LAMBDA, metric=metric, dimensions={"FunctionName": function.name}, statistic="Sum",
                  threshold=0, actions=actions, unit="invocations", description=f"{function.name}: {why}")
            for metric, why in (("Errors", "invocations failed (their batches are retried)"),
                                ("Throttles", "invocations throttled (too little concurrency)"))]


class Dashboard(Resource):
    """A CloudWatch dashboard, its body derived from the list (``widgets``).

    Dashboards take no tags, so ownership is in the body: its first widget, a text widget, carries
    the line ``stockpipe:stack=<STACK_NAME>`` (``TAG_KEY=stack``), written by init; ``find`` reads the
    owner from it, and teardown deletes a dashboard only when it names our stack. A dashboard of the
    same name without the line is someone's: refused, unless it has no widgets (then adopted).
    """

    kind = "cloudwatch dashboard"
    deploy_actions = ("cloudwatch:GetDashboard", "cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards")

    def __init__(self, key: str, name: str, variable: str, *,
                 widgets: Callable[[Run], list[dict[str, Any]]]) -> None:
        super().__init__(key, name, variable)
        self.widgets = widgets

    def arn(self, run: Run) -> str:
        return run.aws.where.arn("cloudwatch", f"dashboard/{self.name}", regional=False)  # one for all regions

    def body(self, run: Run) -> dict[str, Any]:
        """The ownership line first, then the widgets, laid out in rows of 24 columns."""
        marker = {"type": "text", "width": _COLUMNS, "height": 2, "properties": {"markdown": (
            f"## stockpipe stack {run.stack}\n`{TAG_KEY}={run.stack}`: made from the stack's resource list, by "
            "`stockpipe init` or its CloudFormation template; changes made here are undone by the next deployment.")}}
        placed, x, y, row = [], 0, 0, 0
        for widget in [marker, *self.widgets(run)]:
            if x + widget["width"] > _COLUMNS:
                x, y, row = 0, y + row, 0
            placed.append({**widget, "x": x, "y": y})
            x, row = x + widget["width"], max(row, widget["height"])
        return {"widgets": placed}

    def settings(self, run: Run) -> dict[str, object]:
        return {"widgets": [str(w["properties"].get("title", "ownership: " + f"{TAG_KEY}={run.stack}"))
                            for w in self.body(run)["widgets"]],
                "ours": "its first widget names the stack (dashboards take no tags)"}

    def find(self, run: Run) -> Found | None:
        try:
            answer = run.aws.client("cloudwatch").get_dashboard(DashboardName=self.name)
        except ClientError as error:
            if error_code(error) in _NO_DASHBOARD:
                return None
            raise
        try:
            body = json.loads(answer.get("DashboardBody") or "{}")
        except ValueError:
            body = {}
        widgets = body.get("widgets") if isinstance(body, dict) else None
        drift = () if body == self.body(run) else ("body: differs -> derived from the resources",)
        return Found(owner_of(body), empty=not widgets, drift=drift)

    def create(self, run: Run) -> None:
        answer = run.aws.client("cloudwatch").put_dashboard(DashboardName=self.name,
                                                            DashboardBody=json.dumps(self.body(run)))
        for message in answer.get("DashboardValidationMessages") or []:
            run.note(f"{self.label}: {message.get('DataPath', '')} {message.get('Message', '')}".strip())

    def update(self, run: Run, found: Found) -> None:
        self.create(run)  # PutDashboard replaces the body; the marker in it makes the dashboard ours

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("cloudwatch").delete_dashboards(DashboardNames=[self.name])
        return "deleted"

    def template(self, run: Run) -> Template:
        """The body is a JSON string (CloudFormation's Fn::Sub fills in the stack's name and the ARNs)."""
        return {self.logical_id: {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
            "DashboardName": self.name, "DashboardBody": json.dumps(self.body(run))}}}


_MARKER = re.compile(re.escape(TAG_KEY) + r"=([A-Za-z0-9_.-]+)")


def owner_of(body: Any) -> str | None:
    """The stack named by a dashboard body's first widget (a text widget init wrote), or None."""
    widgets = body.get("widgets") if isinstance(body, dict) else None
    if not widgets or not isinstance(widgets[0], dict) or widgets[0].get("type") != "text":
        return None
    found = _MARKER.search(str((widgets[0].get("properties") or {}).get("markdown", "")))
    return found.group(1) if found else None


def alarm_widget(alarms: Sequence[Alarm], run: Run) -> dict[str, Any]:
    """The alarms' states, those in ALARM first."""
    return {"type": "alarm", "width": _COLUMNS, "height": 3, "properties": {
        "title": "Alarms", "alarms": [alarm.arn(run) for alarm in alarms], "sortBy": "stateUpdatedTimestamp",
        "states": ["ALARM", "INSUFFICIENT_DATA", "OK"]}}


def function_widgets(namespace: str, function: str, emitted: Mapping[str, str], run: Run) -> list[dict[str, Any]]:
    """A function's own metrics (its EMF lines): the counts summed, the times at their maximum."""
    widgets = []
    for unit, stat, what in ((COUNT, "Sum", "per-batch counts"), (MILLISECONDS, "Maximum", "times (ms)")):
        names = [name for name, of in emitted.items() if of == unit]
        if names:
            widgets.append(_graph(f"{function}: {what}", stat, run, [
                [namespace, name, "FunctionName", function] for name in names]))
    return widgets


def watched_widgets(alarms: Sequence[Alarm], run: Run) -> list[dict[str, Any]]:
    """The metrics the alarms watch, one graph per metric, with each alarm's dimensions as a line."""
    graphs: dict[tuple[str, str], list[Alarm]] = {}
    for alarm in alarms:
        graphs.setdefault((alarm.namespace, alarm.metric), []).append(alarm)
    return [_graph(f"{namespace} {metric}", watching[0].statistic, run, [
        [namespace, metric, *(part for item in alarm.dimensions.items() for part in item)] for alarm in watching])
        for (namespace, metric), watching in graphs.items()]


def _graph(title: str, stat: str, run: Run, metrics: list[list[str]]) -> dict[str, Any]:
    return {"type": "metric", "width": 12, "height": 6, "properties": {
        "title": title, "view": "timeSeries", "stacked": False, "region": run.aws.region, "stat": stat,
        "period": PERIOD_SECONDS, "metrics": metrics}}


__all__ = ["Alarm", "Dashboard", "alarm_widget", "failing", "function_widgets", "lagging", "not_empty", "owner_of",
           "watched_widgets"]
