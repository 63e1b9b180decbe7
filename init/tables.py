"""DynamoDB tables: the tick table (symbol + timestamp, with a NEW_IMAGE stream that triggers
trend-alerts) and the alert ledger (one item per alert published), both with DynamoDB's TTL on
``expires_at`` when TICK_TTL_DAYS is set; the heads (one item per symbol) never expire."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code, unsupported
from stockpipe.provision import waits
from stockpipe.provision.model import TAG_KEY, Found, Resource, Run, Template

WAITER = {"Delay": 1, "MaxAttempts": 120}
Key = tuple[str, str, str]  # attribute, type (S/N/B), HASH or RANGE


class Table(Resource):
    kind = "dynamodb table"
    # No call of init's reads the table's stream: its ARN comes from DescribeTable (the functions'
    # roles read the stream, policies.py).
    deploy_actions = (
        "dynamodb:DescribeTable", "dynamodb:ListTagsOfResource",  # find; DescribeTable: the waiters too
        "dynamodb:Scan",  # find: is an untagged one empty?
        "dynamodb:CreateTable", "dynamodb:TagResource",  # create (tagged on creation) and update
        "dynamodb:UpdateTable",  # update: its stream was turned off
        "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive",  # find, create and update: TICK_TTL_DAYS
        "dynamodb:DeleteTable",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, keys: tuple[Key, ...],
                 stream_view: str | None = None, ttl: str | None = None) -> None:
        """``ttl``: the attribute DynamoDB's TTL reads (None: off, items kept for ever)."""
        super().__init__(key, name, variable)
        self.keys, self.stream_view, self.ttl = keys, stream_view, ttl

    def arn(self, run: Run) -> str:
        return run.aws.where.table_arn(self.name)

    def settings(self, run: Run) -> dict[str, object]:
        shape: dict[str, object] = {"keys": " + ".join(f"{a} ({k.lower()})" for a, _, k in self.keys),
                                    "billing": "on demand", "encryption": "AWS owned key (DynamoDB default)"}
        if self.stream_view:
            shape["stream"] = self.stream_view
        shape["ttl"] = f"{self.ttl} (TICK_TTL_DAYS)" if self.ttl else "off (items kept)"
        return shape

    def _describe(self, run: Run) -> dict[str, Any] | None:
        try:
            return dict(run.aws.client("dynamodb").describe_table(TableName=self.name)["Table"])
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise

    def find(self, run: Run) -> Found | None:
        table = self._describe(run)
        if table is None:
            return None
        if table.get("TableStatus") == "DELETING":
            self.wait_gone(run)
            return None
        dynamodb = run.aws.client("dynamodb")
        tags = {t["Key"]: t["Value"]
                for t in dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])}
        owner = tags.get(TAG_KEY)
        keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
        wanted = {a: k for a, _, k in self.keys}
        if keys != wanted:
            return Found(owner, conflict=f"{self.label} exists with keys {keys}; it needs {wanted}: "
                         f"set {self.variable} to another name")
        drift: list[str] = []
        spec = table.get("StreamSpecification") or {}
        if self.stream_view and not (spec.get("StreamEnabled") and spec.get("StreamViewType") in
                                     (self.stream_view, "NEW_AND_OLD_IMAGES")):
            drift.append(f"stream: {spec.get('StreamViewType', 'off')} -> {self.stream_view}")
        drift += ttl_drift(self._ttl_now(run), self.ttl)
        empty = True
        if owner is None:
            empty = not dynamodb.scan(TableName=self.name, Limit=1, Select="COUNT").get("Count")
        return Found(owner, empty=empty, drift=tuple(drift), detail=table)

    def create(self, run: Run) -> None:
        request: dict[str, Any] = {
            "TableName": self.name,
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t, _ in self.keys],
            "KeySchema": [{"AttributeName": a, "KeyType": k} for a, _, k in self.keys],
            "BillingMode": "PAY_PER_REQUEST",
            "Tags": run.tag_list,
        }
        if self.stream_view:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view}
        dynamodb = run.aws.client("dynamodb")
        dynamodb.create_table(**request)
        if self.ttl:  # TTL can be set only once the table is ACTIVE
            dynamodb.get_waiter("table_exists").wait(TableName=self.name, WaiterConfig=WAITER)
            self._set_ttl(run, None)

    def update(self, run: Run, found: Found) -> None:
        dynamodb = run.aws.client("dynamodb")
        dynamodb.tag_resource(ResourceArn=found.detail["TableArn"],
                              Tags=run.tag_list)
        if any(change.startswith("stream:") for change in found.drift):
            dynamodb.update_table(TableName=self.name,
                                  StreamSpecification={"StreamEnabled": True, "StreamViewType": self.stream_view})
        if any(change.startswith("ttl:") for change in found.drift):
            self._set_ttl(run, self._ttl_now(run))

    def _ttl_now(self, run: Run) -> str | None:
        """The attribute TTL is enabled on, None when off (or on an engine without TTL, which has nothing
        to compare: no drift)."""
        try:
            described = run.aws.client("dynamodb").describe_time_to_live(TableName=self.name)
        except ClientError as error:
            if unsupported(error):
                return self.ttl
            raise
        ttl = described.get("TimeToLiveDescription") or {}
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return str(ttl.get("AttributeName", ""))
        return None

    def _set_ttl(self, run: Run, now: str | None) -> None:
        """TTL on ``self.ttl``, or off: one UpdateTimeToLive (which names the attribute to turn off)."""
        dynamodb = run.aws.client("dynamodb")
        try:
            if now and now != self.ttl:  # on another attribute: off first (AWS enables one at a time)
                dynamodb.update_time_to_live(TableName=self.name,
                                             TimeToLiveSpecification={"Enabled": False, "AttributeName": now})
            if self.ttl:
                dynamodb.update_time_to_live(TableName=self.name,
                                             TimeToLiveSpecification={"Enabled": True, "AttributeName": self.ttl})
        except ClientError as error:
            if not unsupported(error):
                raise
            run.note(f"{self.label}: this engine has no TTL; its items are kept")

    def wait_ready(self, run: Run) -> None:
        run.aws.client("dynamodb").get_waiter("table_exists").wait(TableName=self.name, WaiterConfig=WAITER)
        if self.stream_view:
            waits.wait_until(f"stream of {self.label}", lambda: bool(self.stream_arn(run)))

    def stream_arn(self, run: Run) -> str:
        known = run.aws.where.table_stream_arn(self.name)
        if known is not None:
            return known
        table = self._describe(run) or {}
        return str(table.get("LatestStreamArn", "")) if table.get("TableStatus") == "ACTIVE" else ""

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("dynamodb").delete_table(TableName=self.name)
        return "deleted"

    def wait_gone(self, run: Run) -> None:
        run.aws.client("dynamodb").get_waiter("table_not_exists").wait(TableName=self.name, WaiterConfig=WAITER)

    def template(self, run: Run) -> Template:
        shape: dict[str, Any] = {
            "TableName": self.name,
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t, _ in self.keys],
            "KeySchema": [{"AttributeName": a, "KeyType": k} for a, _, k in self.keys],
            "BillingMode": "PAY_PER_REQUEST", "Tags": run.tag_list}
        if self.stream_view:
            shape["StreamSpecification"] = {"StreamViewType": self.stream_view}
        if self.ttl:
            shape["TimeToLiveSpecification"] = {"AttributeName": self.ttl, "Enabled": True}
        return {self.logical_id: {"Type": "AWS::DynamoDB::Table", "Properties": shape}}

def ttl_drift(now: str | None, wanted: str | None) -> list[str]:
    """How a table's TTL differs from ``wanted`` (attribute names, None: off), as plan shows it."""
    return [] if now == wanted else [f"ttl: {now or 'off'} -> {wanted or 'off'}"]
