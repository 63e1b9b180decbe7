"""Create (or remove) every resource of the pipeline, the same way on an emulator or on AWS.

Each step is idempotent: it finds what exists, creates what is missing, updates what differs,
and waits until the resource is usable before the next step depends on it. Running it twice
changes nothing and fails on nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stockpipe.aws import catalog, client, session
from stockpipe.aws.errors import error_code, unsupported
from stockpipe.aws.locate import Located, locate
from stockpipe.provision import packaging, policies
from stockpipe.settings import Settings

Report = Callable[[str], None]

FUNCTIONS = {
    # settings attribute holding the function name: (folder under lambdas/, policy builder)
    "process_function_name": ("process_ticks", policies.process_ticks_policy),
    "trends_function_name": ("trend_alerts", policies.trend_alerts_policy),
}
FUNCTION_TIMEOUT = 60
FUNCTION_MEMORY = 256
QUEUE_RETENTION_SECONDS = str(14 * 24 * 3600)


class ProvisionError(RuntimeError):
    """A step that cannot complete; the message names the resource."""


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def _wait(what: str, check: Callable[[], bool], timeout: float = 120.0, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ProvisionError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(interval)


class Provisioner:
    def __init__(self, settings: Settings, aws_session: boto3.Session | None = None, report: Report = print) -> None:
        self.settings = settings
        self.session = aws_session or session()
        self.report = report
        self.outcome = Outcome()
        self._clients: dict[str, Any] = {}

    def _c(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = client(service, self.session)
        return self._clients[service]

    def _note(self, kind: str, name: str, state: str) -> None:
        getattr(self.outcome, state).append(f"{kind} {name}")
        self.report(f"  {'+' if state == 'created' else '~' if state == 'updated' else '='} {kind:<22} {name} ({state})")

    # -- the whole pipeline ---------------------------------------------------------------

    def up(self) -> Outcome:
        where = locate(self.settings, self.session)
        s = self.settings
        where_text = f"endpoint {s.endpoint_url}" if s.endpoint_url else "real AWS"
        self.report(f"provisioning in {where.region} (account {where.account_id}, {where_text})")
        self.stream(where)
        stream_of_table = self.tick_table(where)
        self.ledger_table(where)
        self.bucket(where)
        self.catalog(where)
        dlq_url = self.queue(s.dlq_name, "dead-letter queue")
        self.topic(where)
        self.alerts_queue(where)
        if s.alert_email:
            self.email_subscription(where)
        env = s.lambda_environment(raw_bucket=where.raw_bucket, dlq_url=dlq_url, topic_arn=where.topic_arn)
        for attribute, (folder, policy) in FUNCTIONS.items():
            name = getattr(s, attribute)
            role_arn = self.role(where, name, policy(where))
            self.function(name, folder, role_arn, env)
            self.log_group(name)
        self.mapping(s.process_function_name, where.stream_arn, s.kinesis_batch_size, "Kinesis",
                     s.kinesis_batch_window_seconds)
        self.mapping(s.trends_function_name, stream_of_table, s.streams_batch_size, "DynamoDB stream")
        return self.outcome

    # -- one resource each ----------------------------------------------------------------

    def stream(self, where: Located) -> None:
        kinesis, s = self._c("kinesis"), self.settings
        name, mode = s.stream_name, s.stream_mode
        waiter = {"StreamName": name, "WaiterConfig": {"Delay": 1, "MaxAttempts": 120}}
        shape: dict[str, Any] = {"StreamModeDetails": {"StreamMode": mode}}
        if mode == "PROVISIONED":
            shape["ShardCount"] = s.stream_shards
        try:
            kinesis.create_stream(StreamName=name, **shape)
            self._note("kinesis stream", f"{name} ({mode.lower()})", "created")
        except ClientError as error:
            if error_code(error) != "ResourceInUseException":
                raise
            kinesis.get_waiter("stream_exists").wait(**waiter)
            summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            current = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
            if current != mode:
                try:
                    kinesis.update_stream_mode(StreamARN=summary["StreamARN"], StreamModeDetails={"StreamMode": mode})
                except ClientError as error:
                    if not unsupported(error):
                        raise
                    # MiniStack cannot switch modes; on an emulator the mode changes nothing.
                    self.report(f"  ! kinesis stream         {name} stays {current.lower()}: this engine cannot "
                                f"switch it to {mode.lower()} ('stockpipe init --teardown', then init, recreates it)")
                    self._note("kinesis stream", f"{name} ({current.lower()})", "unchanged")
                else:
                    self._note("kinesis stream", f"{name} ({current.lower()} -> {mode.lower()})", "updated")
            elif mode == "PROVISIONED" and summary.get("OpenShardCount") != s.stream_shards:
                kinesis.update_shard_count(StreamName=name, TargetShardCount=s.stream_shards,
                                           ScalingType="UNIFORM_SCALING")
                self._note("kinesis stream", f"{name} ({s.stream_shards} shards)", "updated")
            else:
                self._note("kinesis stream", f"{name} ({mode.lower()})", "unchanged")
        kinesis.get_waiter("stream_exists").wait(**waiter)

    def tick_table(self, where: Located) -> str:
        """The tick table with a NEW_IMAGE stream. Returns the stream ARN."""
        dynamodb, name = self._c("dynamodb"), self.settings.table_name
        stream_spec = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        try:
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=[
                    {"AttributeName": "symbol", "AttributeType": "S"},
                    {"AttributeName": "timestamp", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "symbol", "KeyType": "HASH"},
                    {"AttributeName": "timestamp", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification=stream_spec,
            )
            self._note("dynamodb table", name, "created")
        except ClientError as error:
            if error_code(error) != "ResourceInUseException":
                raise
            current = dynamodb.describe_table(TableName=name)["Table"]
            keys = {k["AttributeName"]: k["KeyType"] for k in current["KeySchema"]}
            if keys != {"symbol": "HASH", "timestamp": "RANGE"}:
                raise ProvisionError(
                    f"table {name} exists with keys {keys}; it needs symbol (HASH) + timestamp (RANGE): "
                    "delete it or set TABLE_NAME"
                ) from None
            spec = current.get("StreamSpecification") or {}
            if spec.get("StreamEnabled") and spec.get("StreamViewType") in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
                self._note("dynamodb table", name, "unchanged")
            else:
                dynamodb.update_table(TableName=name, StreamSpecification=stream_spec)
                self._note("dynamodb table", f"{name} (stream enabled)", "updated")
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        arn = ""

        def stream_ready() -> bool:
            nonlocal arn
            table = dynamodb.describe_table(TableName=name)["Table"]
            arn = table.get("LatestStreamArn", "")
            return table["TableStatus"] == "ACTIVE" and bool(arn)

        _wait(f"stream of table {name}", stream_ready)
        return arn

    def ledger_table(self, where: Located) -> None:
        dynamodb, name = self._c("dynamodb"), self.settings.alerts_ledger_table
        try:
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": "alert_id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "alert_id", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            self._note("dynamodb table", name, "created")
        except ClientError as error:
            if error_code(error) != "ResourceInUseException":
                raise
            self._note("dynamodb table", name, "unchanged")
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def bucket(self, where: Located) -> None:
        s3, name = self._c("s3"), where.raw_bucket
        try:
            s3.head_bucket(Bucket=name)
            self._note("s3 bucket", name, "unchanged")
        except ClientError as error:
            if error_code(error) in ("403", "AccessDenied"):
                raise ProvisionError(
                    f"bucket {name} belongs to another account (names are global): set RAW_BUCKET to another name"
                ) from None
            if error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            kwargs: dict[str, Any] = {"Bucket": name}
            if where.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": where.region}
            try:
                s3.create_bucket(**kwargs)
            except ClientError as create_error:
                if error_code(create_error) == "BucketAlreadyExists":
                    raise ProvisionError(
                        f"bucket name {name} is taken by another account: set RAW_BUCKET to a unique name"
                    ) from None
                if error_code(create_error) != "BucketAlreadyOwnedByYou":
                    raise
            self._note("s3 bucket", name, "created")
        s3.get_waiter("bucket_exists").wait(Bucket=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        # Raw market data is nobody's public business.
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )

    def catalog(self, where: Located) -> None:
        """Glue database and table over the raw archive, for Athena (the seeds' stock_data_table)."""
        glue, s = self._c("glue"), self.settings
        table = catalog.table_input(s.athena_table, s.raw_location(where.raw_bucket))
        try:
            try:
                glue.get_database(Name=s.athena_database)
                self._note("glue database", s.athena_database, "unchanged")
            except ClientError as error:
                if error_code(error) != "EntityNotFoundException":
                    raise
                glue.create_database(DatabaseInput={"Name": s.athena_database,
                                                    "Description": "stockpipe: raw ticks for Athena"})
                self._note("glue database", s.athena_database, "created")
            try:
                current = glue.get_table(DatabaseName=s.athena_database, Name=s.athena_table)["Table"]
            except ClientError as error:
                if error_code(error) != "EntityNotFoundException":
                    raise
                glue.create_table(DatabaseName=s.athena_database, TableInput=table)
                self._note("glue table", s.athena_table, "created")
                return
            wanted = (table["StorageDescriptor"]["Columns"], table["StorageDescriptor"]["Location"],
                      table["PartitionKeys"])
            have = (current.get("StorageDescriptor", {}).get("Columns"),
                    current.get("StorageDescriptor", {}).get("Location"), current.get("PartitionKeys"))
            if _names_and_types(have) == _names_and_types(wanted):
                self._note("glue table", s.athena_table, "unchanged")
            else:
                glue.update_table(DatabaseName=s.athena_database, TableInput=table)
                self._note("glue table", s.athena_table, "updated")
        except ClientError as error:
            if not unsupported(error):
                raise
            # LocalStack community has no Glue/Athena; the pipeline does not need them.
            self.report(f"  ! glue catalog           skipped: this engine has no Glue ({error_code(error)})")

    def queue(self, name: str, kind: str, attributes: dict[str, str] | None = None) -> str:
        sqs = self._c("sqs")
        wanted = {"MessageRetentionPeriod": QUEUE_RETENTION_SECONDS, **(attributes or {})}
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            if error_code(error) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
            self._note(kind, name, "created")
            return url
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(wanted))["Attributes"]
        differing = {key: value for key, value in wanted.items() if _normal(current.get(key)) != _normal(value)}
        if differing:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=differing)
            self._note(kind, name, "updated")
        else:
            self._note(kind, name, "unchanged")
        return url

    def topic(self, where: Located) -> None:
        sns, name = self._c("sns"), self.settings.topic_name
        try:
            sns.get_topic_attributes(TopicArn=where.topic_arn)
            self._note("sns topic", name, "unchanged")
        except ClientError as error:
            if error_code(error) not in ("NotFound", "NotFoundException"):
                raise
            sns.create_topic(Name=name)
            self._note("sns topic", name, "created")

    def _subscriptions(self, topic_arn: str) -> list[dict[str, Any]]:
        pages = self._c("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
        return [sub for page in pages for sub in page.get("Subscriptions", [])]

    def alerts_queue(self, where: Located) -> None:
        name = self.settings.alerts_queue_name
        policy = json.dumps(policies.queue_policy_for_topic(where.alerts_queue_arn, where.topic_arn))
        self.queue(name, "sqs alerts inbox", {"Policy": policy})
        subscribed = [
            sub for sub in self._subscriptions(where.topic_arn)
            if sub["Protocol"] == "sqs" and sub["Endpoint"] == where.alerts_queue_arn
        ]
        if subscribed:
            self._note("sns->sqs subscription", name, "unchanged")
            return
        self._c("sns").subscribe(
            TopicArn=where.topic_arn,
            Protocol="sqs",
            Endpoint=where.alerts_queue_arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )
        self._note("sns->sqs subscription", name, "created")

    def email_subscription(self, where: Located) -> None:
        email = self.settings.alert_email
        if any(sub["Protocol"] == "email" and sub["Endpoint"] == email for sub in self._subscriptions(where.topic_arn)):
            self._note("sns email subscription", email, "unchanged")
            return
        self._c("sns").subscribe(TopicArn=where.topic_arn, Protocol="email", Endpoint=email)
        self._note("sns email subscription", f"{email} (confirm the e-mail AWS sends)", "created")

    def role(self, where: Located, function_name: str, policy: dict[str, Any]) -> str:
        iam, name = self._c("iam"), f"{function_name}-role"
        trust = json.dumps(policies.LAMBDA_TRUST)
        try:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust,
                                  Description=f"stockpipe: execution role of {function_name}")["Role"]["Arn"]
            state = "created"
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
            state = "unchanged"
        document = json.dumps(policy, sort_keys=True)
        try:
            current = iam.get_role_policy(RoleName=name, PolicyName="stockpipe")["PolicyDocument"]
            if isinstance(current, str):
                current = json.loads(current)
            same = json.dumps(current, sort_keys=True) == document
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            same = False
        if not same:
            iam.put_role_policy(RoleName=name, PolicyName="stockpipe", PolicyDocument=document)
            state = "created" if state == "created" else "updated"
        self._note("iam role", name, state)
        return arn

    def function(self, name: str, folder: str, role_arn: str, env: dict[str, str]) -> None:
        lam = self._c("lambda")
        package = packaging.build(folder)
        config = {
            "Runtime": self.settings.lambda_runtime,
            "Role": role_arn,
            "Handler": "handler.lambda_handler",
            "Timeout": FUNCTION_TIMEOUT,
            "MemorySize": FUNCTION_MEMORY,
            "Environment": {"Variables": env},
        }
        try:
            current = lam.get_function_configuration(FunctionName=name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            current = None
        if current is None:
            self._retry_role_propagation(
                lambda: lam.create_function(FunctionName=name, Code={"ZipFile": package.data},
                                            Description="stockpipe", **config)
            )
            state = "created"
        else:
            state = "unchanged"
            if current.get("CodeSha256") != package.sha256:
                lam.update_function_code(FunctionName=name, ZipFile=package.data)
                self._wait_function(name)
                state = "updated"
            differs = any(
                current.get(key) != value
                for key, value in config.items()
                if key != "Environment"
            ) or (current.get("Environment", {}).get("Variables", {}) != env)
            if differs:
                self._retry_role_propagation(lambda: lam.update_function_configuration(FunctionName=name, **config))
                state = "updated"
        self._wait_function(name)
        self._note("lambda function", name, state)

    def log_group(self, function_name: str) -> None:
        """The function's log group, made before Lambda makes one that keeps logs forever."""
        logs, name, days = self._c("logs"), f"/aws/lambda/{function_name}", self.settings.log_retention_days
        found = [group for group in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
                 if group["logGroupName"] == name]
        if not found:
            try:
                logs.create_log_group(logGroupName=name)
            except ClientError as error:
                if error_code(error) != "ResourceAlreadyExistsException":
                    raise
            state = "created"
        else:
            state = "unchanged" if found[0].get("retentionInDays") == days else "updated"
        if state != "unchanged":
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)
        self._note("log group", f"{name} ({days} days)", state)

    def _wait_function(self, name: str) -> None:
        lam = self._c("lambda")

        def ready() -> bool:
            config = lam.get_function_configuration(FunctionName=name)
            if config.get("State") == "Failed":
                raise ProvisionError(f"function {name} failed: {config.get('StateReason')}")
            return config.get("State", "Active") == "Active" and config.get("LastUpdateStatus", "Successful") != "InProgress"

        _wait(f"function {name}", ready)

    @staticmethod
    def _retry_role_propagation(call: Callable[[], Any], timeout: float = 60.0) -> Any:
        """A new IAM role takes seconds to be assumable by Lambda on AWS."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except ClientError as error:
                message = str(error)
                if error_code(error) != "InvalidParameterValueException" or "role" not in message.lower():
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def mapping(self, function_name: str, source_arn: str, batch_size: int, kind: str, window: int = 0) -> None:
        """``window``: seconds the trigger may wait to fill a batch (AWS and LocalStack honour it)."""
        lam = self._c("lambda")
        existing = lam.list_event_source_mappings(FunctionName=function_name, EventSourceArn=source_arn)
        mappings = existing.get("EventSourceMappings", [])
        label = f"{kind} -> {function_name}"
        if mappings:
            current = mappings[0]
            wanted = {"BatchSize": batch_size, "MaximumBatchingWindowInSeconds": window}
            # An engine that does not report a setting (MiniStack ignores the window) has nothing to update.
            differing = {key: value for key, value in wanted.items() if current.get(key, value) != value}
            if differing:
                lam.update_event_source_mapping(UUID=current["UUID"], **differing)
                self._note("event source mapping", label, "updated")
            else:
                self._note("event source mapping", label, "unchanged")
            uuid = current["UUID"]
        else:
            # TRIM_HORIZON: LATEST can miss the records put just after the mapping is created.
            uuid = lam.create_event_source_mapping(
                FunctionName=function_name,
                EventSourceArn=source_arn,
                StartingPosition="TRIM_HORIZON",
                BatchSize=batch_size,
                MaximumBatchingWindowInSeconds=window,
                Enabled=True,
            )["UUID"]
            self._note("event source mapping", label, "created")
        _wait(
            f"event source mapping {label}",
            lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled",
        )

    # -- teardown -------------------------------------------------------------------------

    def down(self) -> None:
        where = locate(self.settings, self.session)
        s = self.settings
        lam, iam = self._c("lambda"), self._c("iam")
        self.report(f"removing every resource in {where.region} (account {where.account_id})")
        for attribute in FUNCTIONS:
            name = getattr(s, attribute)
            for mapping in _ignore_missing(lambda: lam.list_event_source_mappings(FunctionName=name), {}).get(
                "EventSourceMappings", []
            ):
                _ignore_missing(lambda: lam.delete_event_source_mapping(UUID=mapping["UUID"]))
            self._gone("lambda function", name, lambda: lam.delete_function(FunctionName=name))
            self._gone("log group", f"/aws/lambda/{name}",
                       lambda: self._c("logs").delete_log_group(logGroupName=f"/aws/lambda/{name}"))
            role = f"{name}-role"
            _ignore_missing(lambda: iam.delete_role_policy(RoleName=role, PolicyName="stockpipe"))
            self._gone("iam role", role, lambda: iam.delete_role(RoleName=role))
        sns = self._c("sns")
        for sub in _ignore_missing(lambda: self._subscriptions(where.topic_arn), []):
            if sub["SubscriptionArn"].startswith("arn:"):
                _ignore_missing(lambda: sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"]))
        self._gone("sns topic", s.topic_name, lambda: sns.delete_topic(TopicArn=where.topic_arn))
        sqs = self._c("sqs")
        for queue in (s.alerts_queue_name, s.dlq_name):
            self._gone("sqs queue", queue, lambda: sqs.delete_queue(QueueUrl=where.queue_url(queue, sqs)))
        glue = self._c("glue")
        try:
            self._gone("glue table", s.athena_table,
                       lambda: glue.delete_table(DatabaseName=s.athena_database, Name=s.athena_table))
            if not _ignore_missing(lambda: glue.get_tables(DatabaseName=s.athena_database), {}).get("TableList"):
                self._gone("glue database", s.athena_database, lambda: glue.delete_database(Name=s.athena_database))
        except ClientError as error:
            if not unsupported(error):
                raise
        self._gone("s3 bucket", where.raw_bucket, lambda: self._delete_bucket(where.raw_bucket))
        dynamodb = self._c("dynamodb")
        for table in (s.table_name, s.alerts_ledger_table):
            self._gone("dynamodb table", table, lambda: dynamodb.delete_table(TableName=table))
        self._gone(
            "kinesis stream", s.stream_name,
            lambda: self._c("kinesis").delete_stream(StreamName=s.stream_name, EnforceConsumerDeletion=True),
        )

    def _delete_bucket(self, name: str) -> None:
        s3 = self._c("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=name)

    def _gone(self, kind: str, name: str, delete: Callable[[], Any]) -> None:
        deleted = _ignore_missing(lambda: (delete(), True)[1], False)
        self.report(f"  - {kind:<22} {name} ({'deleted' if deleted else 'absent'})")


_MISSING = {
    "ResourceNotFoundException",
    "NoSuchEntity",
    "EntityNotFoundException",
    "NoSuchBucket",
    "NotFound",
    "NotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "404",
}


def _ignore_missing(call: Callable[[], Any], default: Any = None) -> Any:
    try:
        return call()
    except ClientError as error:
        if error_code(error) in _MISSING:
            return default
        raise


def _names_and_types(value: Any) -> Any:
    """Only the names and types of columns and partition keys: Glue adds fields of its own (Comment)."""
    if isinstance(value, (list, tuple)):
        return [_names_and_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _names_and_types(v) for k, v in value.items() if k in ("Name", "Type")}
    return value


def _normal(value: Any) -> Any:
    """Queue attributes come back as strings; policies may come back re-serialised."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
