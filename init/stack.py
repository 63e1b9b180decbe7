"""The pipeline as one ordered list of resources, and the three things done with it: ``plan`` (what
init would do, changing nothing), ``init`` (do it, in order, each step waiting until the next can
use it) and teardown (the same list backwards, deleting only what carries our tag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws.context import AwsContext
from stockpipe.aws.errors import error_code, unsupported
from stockpipe.provision import policies
from stockpipe.provision.functions import QUEUE_VISIBILITY_SECONDS, Function, LogGroup, Mapping, Role
from stockpipe.provision.messaging import NO_QUEUE, Queue, Subscription, Topic
from stockpipe.provision.model import TAG_KEY, Action, Need, ProvisionError, Resource, Run, Step, decide
from stockpipe.provision.storage import Bucket, GlueDatabase, GlueTable
from stockpipe.provision.streams import Stream
from stockpipe.provision.tables import Table
from stockpipe.settings import ATHENA_RESULTS_PREFIX, QUARANTINE_PREFIX, READER_QUEUES, FunctionEnvironment

Report = Callable[[str], None]


def resources(aws: AwsContext) -> list[Resource]:
    """Every resource of the pipeline, in the order init creates them (teardown: reversed). INGEST
    chooses how ticks come in: the Kinesis stream, or the ingest queue with its per-symbol locks."""
    s = aws.settings
    queued = s.ingest == "sqs"
    ticks_keys = (("symbol", "S", "HASH"), ("timestamp", "S", "RANGE"))
    stream = Stream("stream", s.stream_name, "STREAM_NAME", mode=s.stream_mode, shards=s.stream_shards)
    ticks = Table("ticks", s.table_name, "TABLE_NAME", keys=ticks_keys, stream_view="NEW_IMAGE")
    ledger = Table("ledger", s.alerts_ledger_table, "ALERTS_LEDGER_TABLE", keys=(("alert_id", "S", "HASH"),))
    heads = Table("heads", s.heads_table, "HEADS_TABLE", keys=(("symbol", "S", "HASH"),))
    locks = Table("locks", s.locks_table, "LOCKS_TABLE", keys=(("symbol", "S", "HASH"),))
    bucket = Bucket("bucket", aws.where.raw_bucket, "RAW_BUCKET",
                    prefixes=(s.raw_prefix, ATHENA_RESULTS_PREFIX, QUARANTINE_PREFIX))
    database = GlueDatabase("catalog", s.athena_database, "ATHENA_DATABASE")
    glue_table = GlueTable("glue-table", s.athena_table, "ATHENA_TABLE", database=s.athena_database,
                           location=s.raw_location(aws.where.raw_bucket))
    # It also takes alerts SNS could not deliver to the inbox (the subscription's redrive policy).
    dlq = Queue("dlq", s.dlq_name, "DLQ_NAME", purpose="records that cannot be stored, with the reason; "
                "alerts SNS could not deliver", policy=lambda run: policies.queue_policy_for_topic(
                    dlq.arn(run), topic.arn(run)))
    # The ticks (seed 004's StockQueue). A message received too often without being deleted (it
    # failed every time) goes to the dead-letter queue, payload and all.
    ingest = Queue("ingest-queue", s.ingest_queue_name, "INGEST_QUEUE_NAME", purpose="ticks from the producer",
                   redrive_to=dlq.arn, max_receives=s.queue_max_receives, visibility_timeout=QUEUE_VISIBILITY_SECONDS)
    on_failure = Queue("on-failure", s.onfailure_queue_name, "ONFAILURE_QUEUE_NAME",
                       purpose="stream batches AWS gave up on (stockpipe replay-failed)")
    topic = Topic("topic", s.topic_name, "TOPIC_NAME")

    def reader(key: str, name: str, variable: str, purpose: str) -> list[Resource]:
        """A queue of one reader of the alerts, subscribed to the topic (raw delivery): each reader
        gets every alert, and none takes messages away from another."""
        queue = Queue(key, name, variable, purpose=purpose,
                      policy=lambda run: policies.queue_policy_for_topic(queue.arn(run), topic.arn(run)))
        return [queue, Subscription(f"{key}-subscription", f"{s.topic_name} -> {name}", variable, topic=topic,
                                    protocol="sqs", endpoint=queue.arn, attributes={"RawMessageDelivery": "true"},
                                    redrive_to=dlq.arn)]

    listed: list[Resource] = [*([] if queued else [stream]), ticks, ledger, heads, *([locks] if queued else []),
                              bucket, database, glue_table, dlq, *([ingest] if queued else []), on_failure, topic]
    for key, variable, who in READER_QUEUES:
        listed += reader(key, s.queue_of(variable), variable, f"alerts for {who}")
    if s.alert_email:
        listed.append(Subscription("email-subscription", f"{s.topic_name} -> {s.alert_email}", "ALERT_EMAIL",
                                   topic=topic, protocol="email", endpoint=lambda run: s.alert_email))

    def url_of(run: Run, queue: Queue) -> str:
        try:
            return run.aws.queue_url(queue.name)
        except ClientError as error:
            if error_code(error) not in NO_QUEUE:
                raise
            return "(created by init)"

    def environment(function_name: str) -> Callable[[Run], FunctionEnvironment]:
        """What the function's handler parses at its cold start: the settings it reads, and what init
        resolves (URLs, ARNs, whether the engine honours partial batch responses)."""
        return lambda run: FunctionEnvironment.of(
            s, function_name=function_name, raw_bucket=bucket.name, dlq_url=url_of(run, dlq),
            topic_arn=topic.arn(run), partial_batch_response=run.aws.engine.honours_stream_failures,
            ingest_queue_url=url_of(run, ingest) if queued else None)

    functions = (
        ("process", s.process_function_name, "PROCESS_FUNCTION_NAME", "process_ticks", (
            Need("ticks", ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query")),
            Need("heads", ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")),
            # GetObject: HeadObject, to tell a resend (its object exists) from an orphan (it does not).
            Need("bucket", ("s3:PutObject", "s3:GetObject"), within=f"{s.raw_prefix}/*"),
            Need("dlq", ("sqs:SendMessage",)),
            Need("bucket", ("s3:PutObject",), within=f"{QUARANTINE_PREFIX}/*"),  # dead letters too large for SQS
            Need("glue-table", ("glue:BatchCreatePartition",)),
            # INGEST=sqs: the symbols' locks (read together, queued for, taken and given up in
            # transactions of updates), and a failed message's visibility (its retry comes sooner).
            *((Need("locks", ("dynamodb:BatchGetItem", "dynamodb:UpdateItem")),
               Need("ingest-queue", ("sqs:ChangeMessageVisibility",))) if queued else ()),
        )),
        ("trends", s.trends_function_name, "TRENDS_FUNCTION_NAME", "trend_alerts", (
            Need("ticks", ("dynamodb:Query",)),
            # Claims in one transaction (conditional puts), marks in batches; one by one after a conflict.
            Need("ledger", ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")),
            Need("topic", ("sns:Publish",)),  # PublishBatch is authorised by sns:Publish
            Need("dlq", ("sqs:SendMessage",)),
            Need("bucket", ("s3:PutObject",), within=f"{QUARANTINE_PREFIX}/*"),
        )),
    )
    made: dict[str, Function] = {}

    def policy_of(key: str) -> Callable[[Run], dict[str, Any]]:
        """The role's policy, derived from the whole list once it is complete."""
        return lambda run: policies.role_policy(made[key], listed, run)

    for key, name, variable, folder, needs in functions:
        listed.append(LogGroup(f"{key}-logs", f"/aws/lambda/{name}", variable, retention_days=s.log_retention_days))
        role = Role(f"{key}-role", s.role_name(name), variable, function=name,
                    policy=policy_of(key))
        made[key] = Function(key, name, variable, folder=folder, role=role, runtime=s.lambda_runtime,
                             environment=environment(name), needs=needs, memory_mb=s.lambda_memory_mb)
        listed += [role, made[key]]
    listed += [
        Mapping("process-trigger", f"{ingest.name} -> {made['process'].name}", "PROCESS_FUNCTION_NAME",
                function=made["process"], source=ingest, batch_size=s.queue_batch_size,
                window=s.kinesis_batch_window_seconds) if queued else
        Mapping("process-trigger", f"{stream.name} -> {made['process'].name}", "PROCESS_FUNCTION_NAME",
                function=made["process"], source=stream, batch_size=s.kinesis_batch_size,
                window=s.kinesis_batch_window_seconds, retries=s.stream_max_retry_attempts,
                max_age=s.stream_max_record_age_seconds, on_failure=on_failure,
                parallelization=s.parallelization_factor),
        Mapping("trends-trigger", f"{ticks.name} -> {made['trends'].name}", "TRENDS_FUNCTION_NAME",
                function=made["trends"], source=ticks, batch_size=s.streams_batch_size, window=0,
                retries=s.stream_max_retry_attempts, max_age=s.stream_max_record_age_seconds,
                on_failure=on_failure, parallelization=s.parallelization_factor),
    ]
    return listed


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.UNCHANGED: "=", Action.REFUSE: "✗", Action.SKIP: "-"}


class Stack:
    def __init__(self, aws: AwsContext, report: Report = print) -> None:
        self.aws = aws
        self.run = Run(aws, aws.settings.stack_name, report)
        self.resources = resources(aws)

    @property
    def report(self) -> Report:
        return self.run.report

    def plan(self) -> list[Step]:
        """What init would do to each resource. Reads only."""
        steps = []
        for resource in self.resources:
            try:
                found = resource.find(self.run)
            except ClientError as error:
                if not unsupported(error):
                    raise
                steps.append(Step(resource, Action.SKIP, reason=f"this engine has no {resource.kind.split()[0]} API"))
                continue
            steps.append(decide(resource, found, self.run.stack))
        return steps

    def describe_plan(self, steps: list[Step]) -> None:
        self.report(self.aws.describe())
        self.report(f"stack {self.run.stack!r} (every resource tagged {TAG_KEY}={self.run.stack}), "
                    f"{len(steps)} resources:")
        for step in steps:
            self.report(f"  {SYMBOLS[step.action]} {step.action.value:<9} {step.resource.kind:<21} {step.resource.name}")
            for key, value in step.resource.settings(self.run).items():
                if isinstance(value, list):
                    self.report(f"      {key}:")
                    for line in value:
                        self.report(f"        {line}")
                else:
                    self.report(f"      {key}: {value}")
            for change in step.changes:
                self.report(f"      ~ {change}")
            if step.reason:
                self.report(f"      {'✗' if step.action is Action.REFUSE else '-'} {step.reason}")
        counts = {action: sum(step.action is action for step in steps) for action in Action}
        self.report("plan: " + ", ".join(f"{n} to {a.value}" if a in (Action.CREATE, Action.UPDATE, Action.REFUSE)
                                         else f"{n} {a.value}" for a, n in counts.items() if n))

    def up(self) -> Outcome:
        """Create what is missing, update what differs, in order; refuse before touching anything
        when one resource is not ours to use."""
        self.report(self.aws.describe())
        steps = self.plan()
        refused = [step for step in steps if step.action is Action.REFUSE]
        if refused:
            for step in refused:
                self.report(f"  ✗ {step.resource.label}: {step.reason}")
            raise ProvisionError(f"{len(refused)} resource(s) are not ours to use, nothing was changed: "
                                 + refused[0].reason)
        outcome = Outcome()
        created: set[str] = set()
        for planned in steps:
            resource = planned.resource
            # Find again: an earlier step may have changed what this one sees (a role's policy, a stream ARN).
            step = planned if planned.action in (Action.SKIP, Action.CREATE) else decide(
                resource, resource.find(self.run), self.run.stack)
            if isinstance(resource, Mapping) and resource.source.key in created and step.found is not None:
                # Its stream was deleted and made again: the old trigger reads a stream that is gone.
                resource.delete(self.run, step.found)
                resource.wait_gone(self.run)
                step = Step(resource, Action.CREATE, ("its source was made again",))
            if step.action is Action.SKIP:
                outcome.skipped.append(resource.label)
                self.report(f"  - {resource.kind:<21} {resource.name} (skipped: {step.reason})")
                continue
            if step.action is Action.CREATE:
                resource.create(self.run)
                created.add(resource.key)
                outcome.created.append(resource.label)
            elif step.action is Action.UPDATE:
                assert step.found is not None
                resource.update(self.run, step.found)
                outcome.updated.append(resource.label)
            elif step.action is Action.REFUSE:
                raise ProvisionError(step.reason)
            else:
                outcome.unchanged.append(resource.label)
            resource.wait_ready(self.run)
            detail = f": {'; '.join(step.changes)}" if step.changes else ""
            self.report(f"  {SYMBOLS[step.action]} {resource.kind:<21} {resource.name} ({_past(step.action)}{detail})")
        return outcome

    def down(self) -> dict[str, str]:
        """Delete what init created, newest first, waiting for each to be gone; anything of the
        same name that is not tagged as ours stays, with its contents."""
        self.report(f"{self.aws.describe()}\nremoving stack {self.run.stack!r} (only what is tagged {TAG_KEY}="
                    f"{self.run.stack})")
        results: dict[str, str] = {}
        for resource in reversed(self.resources):
            try:
                found = resource.find(self.run)
            except ClientError as error:
                if not unsupported(error):
                    raise
                results[resource.label] = "skipped (this engine has no such API)"
                continue
            if found is None:
                result = "absent"
            elif found.owner != self.run.stack:
                result = f"kept: not ours ({TAG_KEY}={found.owner or 'unset'})"
            else:
                result = resource.delete(self.run, found)
                if result.startswith("deleted"):
                    resource.wait_gone(self.run)
            results[resource.label] = result
            self.report(f"  - {resource.kind:<21} {resource.name} ({result})")
        return results


def _past(action: Action) -> str:
    return {Action.CREATE: "created", Action.UPDATE: "updated"}.get(action, action.value)
