"""The two Lambda functions and what each needs: a log group with a retention, an execution role whose
policy is derived from the resource list, the function itself, and the trigger that feeds it (a
stream's, or the ingest queue's)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code
from stockpipe.provision import packaging, waits
from stockpipe.provision.messaging import Queue
from stockpipe.provision.model import TAG_KEY, Found, Grant, Need, ProvisionError, Resource, Run, Template
from stockpipe.provision.streams import Stream
from stockpipe.provision.tables import Table
from stockpipe.settings import FunctionEnvironment

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
POLICY_NAME = "stockpipe"
TIMEOUT_SECONDS = 60
# A queue that triggers a function hides a message this long once received: AWS requires at least
# the function's timeout and advises six times it, so that a batch throttled and retried is not
# received again while it is still being processed.
QUEUE_VISIBILITY_SECONDS = 6 * TIMEOUT_SECONDS


def _missing(error: ClientError) -> bool:
    return error_code(error) in ("ResourceNotFoundException", "NoSuchEntity")


class LogGroup(Resource):
    """Made before the function, so Lambda does not make one that keeps logs forever. An untagged
    group of this name holds only the logs of a function of that name: it may be adopted."""

    kind = "log group"
    deploy_actions = (
        "logs:ListTagsLogGroup",  # find
        "logs:CreateLogGroup", "logs:TagLogGroup", "logs:PutRetentionPolicy",  # create and update
        "logs:DeleteLogGroup",  # teardown
    )
    deploy_unscoped = ("logs:DescribeLogGroups",)  # find: a list of the account's groups by prefix

    def __init__(self, key: str, name: str, variable: str, *, retention_days: int) -> None:
        super().__init__(key, name, variable)
        self.retention_days = retention_days

    def arn(self, run: Run) -> str:
        return run.aws.where.log_group_arn(self.name)

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        """IAM checks some of its calls on the group's ARN with ":*" (its streams) after it."""
        return (self.arn(run), f"{self.arn(run)}:*")

    def settings(self, run: Run) -> dict[str, object]:
        return {"retention": f"{self.retention_days} days"}

    def find(self, run: Run) -> Found | None:
        logs = run.aws.client("logs")
        groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=self.name).get("logGroups", [])
                  if g["logGroupName"] == self.name]
        if not groups:
            return None
        owner = (logs.list_tags_log_group(logGroupName=self.name).get("tags") or {}).get(TAG_KEY)
        current = groups[0].get("retentionInDays")
        drift = () if current == self.retention_days else (
            f"retention: {current or 'forever'} -> {self.retention_days} days",)
        return Found(owner, drift=drift)

    def create(self, run: Run) -> None:
        logs = run.aws.client("logs")
        try:
            logs.create_log_group(logGroupName=self.name, tags=run.tags)
        except ClientError as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise
        logs.put_retention_policy(logGroupName=self.name, retentionInDays=self.retention_days)

    def update(self, run: Run, found: Found) -> None:
        logs = run.aws.client("logs")
        logs.tag_log_group(logGroupName=self.name, tags=run.tags)
        if found.drift:
            logs.put_retention_policy(logGroupName=self.name, retentionInDays=self.retention_days)

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("logs").delete_log_group(logGroupName=self.name)
        return "deleted"

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": self.name, "RetentionInDays": self.retention_days, "Tags": run.tag_list}}}


class Role(Resource):
    """The execution role of one function. ``policy`` is derived from the whole resource list
    (policies.py): exactly the calls the function makes, plus what its trigger needs."""

    kind = "iam role"
    adoptable = False  # someone's role is never ours to rewrite
    deploy_actions = (
        "iam:GetRole", "iam:ListRoleTags", "iam:GetRolePolicy",  # find (ListRoleTags: when GetRole has no tags)
        "iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy",  # create (tagged on creation) and update
        "iam:ListRolePolicies", "iam:DeleteRolePolicy", "iam:DeleteRole",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, function: str,
                 policy: Callable[[Run], dict[str, Any]]) -> None:
        super().__init__(key, name, variable)
        self.function, self.policy = function, policy

    def arn(self, run: Run) -> str:
        return run.aws.where.role_arn(self.name)

    def settings(self, run: Run) -> dict[str, object]:
        statements = self.policy(run)["Statement"]
        return {"trusts": "lambda.amazonaws.com", "grants": [
            f"{', '.join(_as_list(s['Action']))} on {', '.join(_short(r) for r in _as_list(s['Resource']))}"
            for s in statements]}

    def find(self, run: Run) -> Found | None:
        iam = run.aws.client("iam")
        try:
            role = iam.get_role(RoleName=self.name)["Role"]
        except ClientError as error:
            if _missing(error):
                return None
            raise
        tags = role.get("Tags")
        if tags is None:
            tags = iam.list_role_tags(RoleName=self.name).get("Tags", [])
        owner = {t["Key"]: t["Value"] for t in tags}.get(TAG_KEY)
        try:
            current = iam.get_role_policy(RoleName=self.name, PolicyName=POLICY_NAME)["PolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
        except ClientError as error:
            if not _missing(error):
                raise
            current = None
        drift = () if current == self.policy(run) else ("policy: differs -> derived from the resources",)
        return Found(owner, empty=False, drift=drift)

    def create(self, run: Run) -> None:
        iam = run.aws.client("iam")
        iam.create_role(RoleName=self.name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                        Description=self.description,
                        Tags=run.tag_list)
        self._put_policy(run)

    def _put_policy(self, run: Run) -> None:
        run.aws.client("iam").put_role_policy(RoleName=self.name, PolicyName=POLICY_NAME,
                                              PolicyDocument=json.dumps(self.policy(run), sort_keys=True))

    def update(self, run: Run, found: Found) -> None:
        if found.drift:
            self._put_policy(run)

    def delete(self, run: Run, found: Found) -> str:
        iam = run.aws.client("iam")
        for name in iam.list_role_policies(RoleName=self.name).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=self.name, PolicyName=name)
        iam.delete_role(RoleName=self.name)
        return "deleted"

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": self.name, "AssumeRolePolicyDocument": LAMBDA_TRUST, "Description": self.description,
            "Policies": [{"PolicyName": POLICY_NAME, "PolicyDocument": self.policy(run)}], "Tags": run.tag_list}}}

    @property
    def description(self) -> str:
        return f"stockpipe: execution role of {self.function}"


class Function(Resource):
    kind = "lambda function"
    adoptable = False
    deploy_actions = (
        "lambda:GetFunction", "lambda:ListTags",  # find (GetFunction shows the tags only with ListTags)
        "lambda:CreateFunction", "lambda:TagResource",  # create (tagged on creation)
        "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",  # update
        "lambda:GetFunctionConfiguration",  # wait_ready
        "lambda:DeleteFunction",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, folder: str, role: Role, runtime: str,
                 environment: Callable[[Run], FunctionEnvironment],
                 needs: tuple[Need, ...], memory_mb: int = 1024, logs: LogGroup | None = None) -> None:
        """``needs``: each call the handler makes, on which resource: its role's policy. ``logs``: its
        log group, made first so that Lambda does not make one that keeps logs forever."""
        super().__init__(key, name, variable, depends_on=(role.key,) + ((logs.key,) if logs is not None else ()))
        self.folder, self.role, self.runtime, self.environment, self.needs = folder, role, runtime, environment, needs
        self.memory_mb = memory_mb
        self._package: packaging.Package | None = None

    @property
    def package(self) -> packaging.Package:
        if self._package is None:
            self._package = packaging.build(self.folder)
        return self._package

    def arn(self, run: Run) -> str:
        return run.aws.where.function_arn(self.name)

    def deploy_grants(self, run: Run) -> list[Grant]:
        """CreateFunction and UpdateFunctionConfiguration hand Lambda its role: iam:PassRole on that
        role, to Lambda only."""
        return [*super().deploy_grants(run), Grant(("iam:PassRole",), (self.role.arn(run),), part="PassRole",
                                                   when=("StringEquals", "iam:PassedToService",
                                                         ("lambda.amazonaws.com",)))]

    def config(self, run: Run) -> dict[str, Any]:
        return {"Runtime": self.runtime, "Role": self.role.arn(run), "Handler": "handler.lambda_handler",
                "Timeout": TIMEOUT_SECONDS, "MemorySize": self.memory_mb,
                "Environment": {"Variables": self.environment(run).environ()}}

    def settings(self, run: Run) -> dict[str, object]:
        return {"runtime": self.runtime, "code": f"lambdas/{self.folder} ({len(self.package.data) // 1024} KiB zip)",
                "memory": f"{self.memory_mb} MB", "timeout": f"{TIMEOUT_SECONDS} s", "role": self.role.name}

    def find(self, run: Run) -> Found | None:
        lam = run.aws.client("lambda")
        try:
            answer = lam.get_function(FunctionName=self.name)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        current = answer["Configuration"]
        tags = answer.get("Tags")
        if tags is None:
            tags = lam.list_tags(Resource=current["FunctionArn"]).get("Tags", {})
        drift: list[str] = []
        if current.get("CodeSha256") != self.package.sha256:
            drift.append("code: differs -> this build")
        for key, value in self.config(run).items():
            if key == "Environment":
                have = (current.get("Environment") or {}).get("Variables", {})
                names = sorted(k for k in set(have) | set(value["Variables"])
                               if not _same(have.get(k), value["Variables"].get(k)))
                if names:
                    drift.append(f"environment: {', '.join(names)}")
            elif current.get(key) != value:
                drift.append(f"{key}: {current.get(key)} -> {value}")
        if current.get("State") == "Failed" or current.get("LastUpdateStatus") == "Failed":
            drift.append(f"state: failed ({current.get('StateReason') or current.get('LastUpdateStatusReason')})")
        return Found((tags or {}).get(TAG_KEY), empty=False, drift=tuple(drift))

    def create(self, run: Run) -> None:
        lam = run.aws.client("lambda")
        waits.retry_while(f"{self.label} (its new role is not assumable yet)", lambda: lam.create_function(
            FunctionName=self.name, Code={"ZipFile": self.package.data}, Description="stockpipe",
            Tags=run.tags, **self.config(run)), waits.role_not_ready)

    def update(self, run: Run, found: Found) -> None:
        lam = run.aws.client("lambda")
        if any(change.startswith(("code:", "state:")) for change in found.drift):
            lam.update_function_code(FunctionName=self.name, ZipFile=self.package.data)
            self.wait_ready(run)
        if any(not change.startswith(("code:", "adopt")) for change in found.drift):
            waits.retry_while(f"{self.label} (its role is not assumable yet)", lambda: lam.update_function_configuration(
                FunctionName=self.name, **self.config(run)), waits.role_not_ready)

    def wait_ready(self, run: Run) -> None:
        lam = run.aws.client("lambda")

        def ready() -> bool:
            config = lam.get_function_configuration(FunctionName=self.name)
            if config.get("State") == "Failed":
                raise ProvisionError(f"{self.label} failed: {config.get('StateReason')}")
            if config.get("LastUpdateStatus") == "Failed":
                raise ProvisionError(f"{self.label}: the last update failed: {config.get('LastUpdateStatusReason')}")
            return bool(config.get("State", "Active") == "Active"
                        and config.get("LastUpdateStatus", "Successful") == "Successful")

        waits.wait_until(self.label, ready)

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("lambda").delete_function(FunctionName=self.name)
        return "deleted"

    @property
    def zip_name(self) -> str:
        """Its code's file beside a template (``stockpipe template``)."""
        return f"{self.folder}.zip"

    def template(self, run: Run) -> Template:
        """Its code as a local path, which ``aws cloudformation package`` uploads and replaces (cfn-lint's
        W3002 says just that: the template is meant for package)."""
        return {self.logical_id: {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": self.name, "Code": self.zip_name, "Description": "stockpipe", **self.config(run),
            "Tags": run.tag_list}, "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W3002"]}}}}}

    def wait_gone(self, run: Run) -> None:
        waits.wait_until(f"deletion of {self.label}", lambda: self.find(run) is None, timeout=60)


class Mapping(Resource):
    """A trigger: Kinesis or the ingest queue -> process-ticks, the table's stream -> trend-alerts.

    A stream trigger is safe on AWS: a failing batch is retried ``retries`` times, bisected to
    isolate what fails, records older than ``max_age`` are not retried, and the position of what
    is given up lands in the on-failure queue (``stockpipe replay-failed`` puts it back). Engines
    that ignore these settings (MiniStack) retry a failing batch forever instead: nothing is lost
    there either. A queue trigger needs none of these: the function names the messages that
    failed (ReportBatchItemFailures, which every engine honours for SQS), only those come back,
    and the queue's redrive policy moves one received too often to the dead-letter queue.
    """

    kind = "event source mapping"
    # On "*", scoped by the function they feed (lambda:FunctionArn): a mapping's ARN holds an id AWS
    # gives it, and CreateEventSourceMapping has none yet. ListEventSourceMappings cannot be scoped.
    deploy_actions = ("lambda:CreateEventSourceMapping", "lambda:UpdateEventSourceMapping",
                      "lambda:DeleteEventSourceMapping")
    deploy_unscoped = ("lambda:ListEventSourceMappings",)

    def __init__(self, key: str, name: str, variable: str, *, function: Function, source: Stream | Table | Queue,
                 batch_size: int, window: int = 0, retries: int = 0, max_age: int = -1,
                 on_failure: Queue | None = None, parallelization: int = 1) -> None:
        after = (function.key, source.key) + ((on_failure.key,) if on_failure is not None else ())
        super().__init__(key, name, variable, depends_on=after)
        if on_failure is None and not isinstance(source, Queue):
            raise ValueError(f"{name}: a stream trigger needs an on-failure queue")
        self.function, self.source, self.on_failure = function, source, on_failure
        self.batch_size, self.window, self.retries, self.max_age = batch_size, window, retries, max_age
        self.parallelization = parallelization

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        return ("*",)

    def deploy_grants(self, run: Run) -> list[Grant]:
        scoped, *unscoped = super().deploy_grants(run)
        return [Grant(scoped.actions, scoped.resources, ("ArnLike", "lambda:FunctionArn", (self.function.arn(run),))),
                *unscoped]

    @property
    def from_queue(self) -> bool:
        return isinstance(self.source, Queue)

    def source_arn(self, run: Run) -> str:
        """The stream's or queue's ARN; for a table, its stream's (empty until the table exists)."""
        return self.source.stream_arn(run) if isinstance(self.source, Table) else self.source.arn(run)

    def grants(self, run: Run) -> list[dict[str, Any]]:
        """What the function's role needs for this trigger: read the source (Lambda's poller does,
        with the function's role), send to the on-failure queue (streams)."""
        if isinstance(self.source, Queue):
            return [{"Effect": "Allow", "Resource": self.source.arn(run),
                     "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]}]
        assert self.on_failure is not None
        if isinstance(self.source, Table):
            read = [{"Effect": "Allow", "Resource": f"{self.source.arn(run)}/stream/*",
                     "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]},
                    # ListStreams cannot be scoped to a table: it is granted on "*" or not at all.
                    {"Effect": "Allow", "Action": ["dynamodb:ListStreams"], "Resource": "*"}]
        else:
            read = [{"Effect": "Allow", "Resource": self.source.arn(run),
                     "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                                "kinesis:GetShardIterator", "kinesis:ListShards"]}]
        return [*read, {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": self.on_failure.arn(run)}]

    def wanted(self, run: Run) -> dict[str, Any]:
        if self.from_queue:
            return {"BatchSize": self.batch_size, "MaximumBatchingWindowInSeconds": self.window,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"]}
        assert self.on_failure is not None
        return {
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.window,
            "ParallelizationFactor": self.parallelization,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": self.retries,
            "MaximumRecordAgeInSeconds": self.max_age,
            "DestinationConfig": {"OnFailure": {"Destination": self.on_failure.arn(run)}},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }

    def settings(self, run: Run) -> dict[str, object]:
        source = self.source_arn(run) or f"(the stream of {self.source.name}, once created)"
        if isinstance(self.source, Queue):
            return {"source": source, "batch size": self.batch_size, "window": f"{self.window} s",
                    "partial batch response": "ReportBatchItemFailures (a failed message alone comes back)",
                    "retries": f"the queue's redrive policy: {self.source.max_receives} receives, then "
                               f"{self.source.redrive_to(run) if self.source.redrive_to else 'kept'}"}
        assert self.on_failure is not None
        engine = run.aws.engine
        ignored = "" if engine.honours_stream_failures else f" (ignored by {engine.name}: it retries forever)"
        unused = "" if engine.honours_stream_failures else f" (never used by {engine.name})"
        return {"source": source, "batch size": self.batch_size, "window": f"{self.window} s",
                "parallel batches per shard": self.parallelization,
                "start": "TRIM_HORIZON", "retries": f"{self.retries}, bisecting on error{ignored}",
                "max record age": f"{self.max_age} s", "on failure": self.on_failure.arn(run) + unused,
                "partial batch response": "ReportBatchItemFailures"}

    def _current(self, run: Run) -> dict[str, Any] | None:
        source = self.source_arn(run)
        if not source:
            return None
        try:
            mappings = run.aws.client("lambda").list_event_source_mappings(
                FunctionName=self.function.name, EventSourceArn=source).get("EventSourceMappings", [])
        except ClientError as error:
            if _missing(error):
                return None
            raise
        live = [m for m in mappings if m.get("State") != "Deleting"]
        return dict(live[0]) if live else None

    def find(self, run: Run) -> Found | None:
        current = self._current(run)
        if current is None:
            return None
        function = self.function.find(run)
        drift = [f"{key}: {current.get(key)} -> {value}" for key, value in self.wanted(run).items()
                 # An engine that does not report a setting has nothing to update.
                 if key in current and current[key] != value]
        if current.get("State") in ("Disabled", "Disabling"):
            drift.append("state: disabled -> enabled")
        return Found(function.owner if function else None, empty=False, drift=tuple(drift), detail=current)

    def stale(self, run: Run) -> list[str]:
        """Triggers of this function on an earlier stream of the same table (the table was made
        again: its stream has a new label, the old trigger reads a stream that is gone)."""
        if not isinstance(self.source, Table):
            return []
        prefix, current = f"{self.source.arn(run)}/stream/", self.source_arn(run)
        try:
            mappings = run.aws.client("lambda").list_event_source_mappings(
                FunctionName=self.function.name).get("EventSourceMappings", [])
        except ClientError as error:
            if _missing(error):
                return []
            raise
        return [str(m["UUID"]) for m in mappings
                if str(m.get("EventSourceArn", "")).startswith(prefix) and m["EventSourceArn"] != current]

    def _drop_stale(self, run: Run) -> None:
        for uuid in self.stale(run):
            run.aws.client("lambda").delete_event_source_mapping(UUID=uuid)
            run.note(f"{self.label}: removed the trigger on an earlier stream of {self.source.name}")

    def create(self, run: Run) -> None:
        self._drop_stale(run)
        lam = run.aws.client("lambda")
        # The role was just given the source's permissions: retry until Lambda sees them.
        waits.retry_while(f"{self.label} (its role cannot read the source yet)", lambda: lam.create_event_source_mapping(
            FunctionName=self.function.name, EventSourceArn=self.source_arn(run), Enabled=True, **self._start,
            **self.wanted(run)), waits.role_not_ready)

    def update(self, run: Run, found: Found) -> None:
        if not found.drift:
            return
        wanted = self.wanted(run)
        changed = {change.split(":")[0] for change in found.drift}
        request = {key: wanted[key] for key in changed if key in wanted}
        if "state" in changed:
            request["Enabled"] = True
        lam = run.aws.client("lambda")
        waits.retry_while(self.label, lambda: lam.update_event_source_mapping(UUID=found.detail["UUID"], **request),
                          waits.role_not_ready)

    def wait_ready(self, run: Run) -> None:
        waits.wait_until(self.label, lambda: (self._current(run) or {}).get("State") == "Enabled")

    def delete(self, run: Run, found: Found) -> str:
        self._drop_stale(run)
        run.aws.client("lambda").delete_event_source_mapping(UUID=found.detail["UUID"])
        return "deleted"

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "FunctionName": f"${{{self.function.logical_id}}}", "EventSourceArn": self.source_arn(run),
            "Enabled": True, **self._start, **self.wanted(run)}}}

    @property
    def _start(self) -> dict[str, str]:
        """TRIM_HORIZON: LATEST can miss the records put just after the mapping is created. A queue has
        no position to start from."""
        return {} if self.from_queue else {"StartingPosition": "TRIM_HORIZON"}

    def wait_gone(self, run: Run) -> None:
        waits.wait_until(f"deletion of {self.label}", lambda: self._current(run) is None, timeout=120)


def _same(have: str | None, want: str | None) -> bool:
    """A variable's value as deployed and as wanted. A queue's URL names the same queue whatever host
    the engine put in it (an engine's CloudFormation Ref may name one host, GetQueueUrl the host the
    request went to): the account and the queue's name decide."""
    if have == want or have is None or want is None:
        return have == want
    if have.startswith(("http://", "https://")) and want.startswith(("http://", "https://")):
        return urlsplit(have).path.rstrip("/") == urlsplit(want).path.rstrip("/")
    return False


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _short(arn: str) -> str:
    """The resource part of an ARN, for people."""
    return arn.split(":", 5)[-1] if arn.startswith("arn:") else arn
