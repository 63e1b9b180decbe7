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
from stockpipe.domain.retention import EXPIRY_ATTRIBUTE
from stockpipe.metrics import PROCESS_TICKS_METRICS, TREND_ALERTS_METRICS
from stockpipe.provision import monitoring, policies
from stockpipe.provision.functions import QUEUE_VISIBILITY_SECONDS, Function, LogGroup, Mapping, Role
from stockpipe.provision.messaging import NO_QUEUE, Queue, Subscription, Topic
from stockpipe.provision.model import TAG_KEY, Action, Need, ProvisionError, Resource, Run, Step, decide
from stockpipe.provision.monitoring import Alarm, Dashboard
from stockpipe.provision.storage import RULE_PREFIX, Bucket, GlueDatabase, GlueTable, Lifecycle
from stockpipe.provision.streams import Stream
from stockpipe.provision.tables import Table
from stockpipe.settings import (
    ATHENA_RESULTS_EXPIRE_DAYS,
    ATHENA_RESULTS_PREFIX,
    QUARANTINE_PREFIX,
    READER_QUEUES,
    FunctionEnvironment,
    Settings,
)

Report = Callable[[str], None]
# What each function's metric line carries (its EMF metrics), by the function's key.
EMITTED = {"process": PROCESS_TICKS_METRICS, "trends": TREND_ALERTS_METRICS}


def resources(aws: AwsContext) -> list[Resource]:
    """Every resource of the pipeline, in the order init creates them (teardown: reversed). INGEST
    chooses how ticks come in: the Kinesis stream, or the ingest queue with its per-symbol locks.
    Last the watching: the operations topic, the alarms on what the list holds, and the dashboard."""
    core = Core.of(aws)
    queued = core.settings.ingest == "sqs"
    listed: list[Resource] = [
        *([] if queued else [core.stream]), core.ticks, core.ledger, core.heads, *([core.locks] if queued else []),
        core.bucket, core.database, core.glue_table, core.dlq, *([core.ingest] if queued else []), core.on_failure,
        core.topic, *core.readers()]
    made, functions = core.functions(listed)  # their roles' policies read the whole list, completed here
    listed += functions
    triggers = core.triggers(made)
    alarms = core.alarms(made, triggers)
    listed += [*triggers, *core.operators(), *alarms, core.dashboard(made, alarms)]
    return listed


@dataclass(frozen=True)
class Core:
    """The resources the others refer to, named from the settings."""

    settings: Settings
    stream: Stream
    ticks: Table
    ledger: Table
    heads: Table
    locks: Table
    bucket: Bucket
    database: GlueDatabase
    glue_table: GlueTable
    dlq: Queue
    ingest: Queue
    on_failure: Queue
    topic: Topic
    ops_topic: Topic

    @classmethod
    def of(cls, aws: AwsContext) -> Core:
        s, ticks_keys = aws.settings, (("symbol", "S", "HASH"), ("timestamp", "S", "RANGE"))
        # TICK_TTL_DAYS: the ticks expire, and the ledger with them (its items are alerts at ticks); a
        # head is one item per symbol and must outlive any silence, the locks are held for seconds.
        ttl = EXPIRY_ATTRIBUTE if s.tick_ttl_days else None
        topic = Topic("topic", s.topic_name, "TOPIC_NAME")
        # It also takes alerts SNS could not deliver to the inbox (the subscription's redrive policy).
        dlq: Queue = Queue("dlq", s.dlq_name, "DLQ_NAME", purpose="records that cannot be stored, with the reason; "
                           "alerts SNS could not deliver", policy=lambda run: policies.queue_policy_for_topic(
                               dlq.arn(run), topic.arn(run)))
        return cls(
            settings=s,
            stream=Stream("stream", s.stream_name, "STREAM_NAME", mode=s.stream_mode, shards=s.stream_shards),
            ticks=Table("ticks", s.table_name, "TABLE_NAME", keys=ticks_keys, stream_view="NEW_IMAGE", ttl=ttl),
            ledger=Table("ledger", s.alerts_ledger_table, "ALERTS_LEDGER_TABLE", keys=(("alert_id", "S", "HASH"),),
                         ttl=ttl),
            heads=Table("heads", s.heads_table, "HEADS_TABLE", keys=(("symbol", "S", "HASH"),)),
            locks=Table("locks", s.locks_table, "LOCKS_TABLE", keys=(("symbol", "S", "HASH"),)),
            bucket=Bucket("bucket", aws.where.raw_bucket, "RAW_BUCKET",
                          prefixes=(s.raw_prefix, ATHENA_RESULTS_PREFIX, QUARANTINE_PREFIX), lifecycle=lifecycle(s)),
            database=GlueDatabase("catalog", s.athena_database, "ATHENA_DATABASE"),
            glue_table=GlueTable("glue-table", s.athena_table, "ATHENA_TABLE", database=s.athena_database,
                                 location=s.raw_location(aws.where.raw_bucket)),
            dlq=dlq,
            # The ticks (seed 004's StockQueue). A message received too often without being deleted (it
            # failed every time) goes to the dead-letter queue, payload and all.
            ingest=Queue("ingest-queue", s.ingest_queue_name, "INGEST_QUEUE_NAME", purpose="ticks from the producer",
                         redrive_to=dlq.arn, max_receives=s.queue_max_receives,
                         visibility_timeout=QUEUE_VISIBILITY_SECONDS),
            on_failure=Queue("on-failure", s.onfailure_queue_name, "ONFAILURE_QUEUE_NAME",
                             purpose="stream batches AWS gave up on (stockpipe replay-failed)"),
            topic=topic,
            # Not encrypted with AWS's SNS key: its key policy does not let CloudWatch use it, so an
            # alarm could not publish to the topic (the notifications name alarms, not data).
            ops_topic=Topic("ops-topic", s.ops_topic_name, "OPS_TOPIC_NAME", kms_key=None,
                            purpose="the alarms' notifications"),
        )

    def readers(self) -> list[Resource]:
        """Per reader of the alerts a queue subscribed to the topic (raw delivery): each reader gets
        every alert, and none takes messages away from another; and the e-mail subscription when set."""
        s, listed = self.settings, list[Resource]()
        for key, variable, who in READER_QUEUES:
            listed += self._reader(key, s.queue_of(variable), variable, who)
        if s.alert_email:
            listed.append(Subscription("email-subscription", f"{s.topic_name} -> {s.alert_email}", "ALERT_EMAIL",
                                       topic=self.topic, protocol="email", endpoint=lambda run: s.alert_email))
        return listed

    def operators(self) -> list[Resource]:
        """The topic the alarms notify, and its e-mail subscription when OPS_EMAIL is set."""
        s, listed = self.settings, list[Resource]([self.ops_topic])
        if s.ops_email:
            listed.append(Subscription("ops-email-subscription", f"{s.ops_topic_name} -> {s.ops_email}", "OPS_EMAIL",
                                       topic=self.ops_topic, protocol="email", endpoint=lambda run: s.ops_email))
        return listed

    def alarms(self, made: dict[str, Function], triggers: list[Mapping]) -> list[Alarm]:
        """What going wrong looks like, each an alarm notifying the operations topic: a queue that
        fills only when something failed holds a message (dead letters, batches given up on); the
        ticks wait longer than ALARM_LAG_SECONDS for process-ticks (its trigger's iterator age, or
        the ingest queue's oldest message); a function fails or is throttled."""
        notify = (self.ops_topic.arn,)
        ticks_in = next(m for m in triggers if m.function is made["process"])
        return [*(monitoring.not_empty(queue, notify) for queue in (self.dlq, self.on_failure)),
                monitoring.lagging(ticks_in, self.settings.alarm_lag_seconds, notify),
                *(alarm for function in made.values() for alarm in monitoring.failing(function, notify))]

    def dashboard(self, made: dict[str, Function], alarms: list[Alarm]) -> Dashboard:
        """The alarms' states, each function's own metrics, and the metrics the alarms watch."""
        s = self.settings
        return Dashboard("dashboard", s.cloudwatch_dashboard_name, "CLOUDWATCH_DASHBOARD_NAME", widgets=lambda run: [
            monitoring.alarm_widget(alarms, run),
            *(widget for key, function in made.items()
              for widget in monitoring.function_widgets(s.metrics_namespace, function.name, EMITTED[key], run)),
            *monitoring.watched_widgets(alarms, run)])

    def _reader(self, key: str, name: str, variable: str, who: str) -> list[Resource]:
        queue = Queue(key, name, variable, purpose=f"alerts for {who}",
                      policy=lambda run: policies.queue_policy_for_topic(queue.arn(run), self.topic.arn(run)))
        return [queue, Subscription(f"{key}-subscription", f"{self.settings.topic_name} -> {name}", variable,
                                    topic=self.topic, protocol="sqs", endpoint=queue.arn,
                                    attributes={"RawMessageDelivery": "true"}, redrive_to=self.dlq.arn)]

    def environment(self, function_name: str) -> Callable[[Run], FunctionEnvironment]:
        """What the function's handler parses at its cold start: the settings it reads, and what init
        resolves (URLs, ARNs, whether the engine honours partial batch responses)."""
        queued = self.settings.ingest == "sqs"
        return lambda run: FunctionEnvironment.of(
            self.settings, function_name=function_name, raw_bucket=self.bucket.name, dlq_url=_url_of(run, self.dlq),
            topic_arn=self.topic.arn(run), partial_batch_response=run.aws.engine.honours_stream_failures,
            ingest_queue_url=_url_of(run, self.ingest) if queued else None)

    def functions(self, listed: list[Resource]) -> tuple[dict[str, Function], list[Resource]]:
        """Both functions, each after its log group and its role, whose policy is derived from what the
        function needs of the whole list once it is complete."""
        s, made, resources = self.settings, dict[str, Function](), list[Resource]()
        for key, name, variable, folder, needs in (
                ("process", s.process_function_name, "PROCESS_FUNCTION_NAME", "process_ticks", _process_needs(s)),
                ("trends", s.trends_function_name, "TRENDS_FUNCTION_NAME", "trend_alerts", _trends_needs())):
            role = Role(f"{key}-role", s.role_name(name), variable, function=name, policy=_policy_of(made, key, listed))
            logs = LogGroup(f"{key}-logs", f"/aws/lambda/{name}", variable, retention_days=s.log_retention_days)
            made[key] = Function(key, name, variable, folder=folder, role=role, runtime=s.lambda_runtime,
                                 environment=self.environment(name), needs=needs, memory_mb=s.lambda_memory_mb,
                                 logs=logs)
            resources += [logs, role, made[key]]
        return made, resources

    def triggers(self, made: dict[str, Function]) -> list[Mapping]:
        s, process, trends = self.settings, made["process"], made["trends"]
        if s.ingest == "sqs":
            ticks_in = Mapping("process-trigger", f"{self.ingest.name} -> {process.name}", "PROCESS_FUNCTION_NAME",
                               function=process, source=self.ingest, batch_size=s.queue_batch_size,
                               window=s.kinesis_batch_window_seconds)
        else:
            ticks_in = Mapping("process-trigger", f"{self.stream.name} -> {process.name}", "PROCESS_FUNCTION_NAME",
                               function=process, source=self.stream, batch_size=s.kinesis_batch_size,
                               window=s.kinesis_batch_window_seconds, retries=s.stream_max_retry_attempts,
                               max_age=s.stream_max_record_age_seconds, on_failure=self.on_failure,
                               parallelization=s.parallelization_factor)
        return [ticks_in, Mapping(
            "trends-trigger", f"{self.ticks.name} -> {trends.name}", "TRENDS_FUNCTION_NAME", function=trends,
            source=self.ticks, batch_size=s.streams_batch_size, window=0, retries=s.stream_max_retry_attempts,
            max_age=s.stream_max_record_age_seconds, on_failure=self.on_failure,
            parallelization=s.parallelization_factor)]


def lifecycle(s: Settings) -> tuple[Lifecycle, ...]:
    """The raw bucket's lifecycle rules, each on one of our prefixes only: the raw ticks as
    RAW_GLACIER_DAYS and RAW_EXPIRE_DAYS say (none when both are off), Athena's results deleted after
    ATHENA_RESULTS_EXPIRE_DAYS (a query run again writes them again); the quarantine has none, as it
    holds the only copy of the records that could not be stored."""
    raw = Lifecycle(f"{RULE_PREFIX}raw", f"{s.raw_prefix}/", s.raw_glacier_days, s.raw_expire_days)
    results = Lifecycle(f"{RULE_PREFIX}athena-results", f"{ATHENA_RESULTS_PREFIX}/",
                        expire_days=ATHENA_RESULTS_EXPIRE_DAYS)
    return (*([raw] if s.raw_glacier_days or s.raw_expire_days else []), results)


def _process_needs(s: Settings) -> tuple[Need, ...]:
    return (
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
           Need("ingest-queue", ("sqs:ChangeMessageVisibility",))) if s.ingest == "sqs" else ()),
    )


def _trends_needs() -> tuple[Need, ...]:
    return (
        Need("ticks", ("dynamodb:Query",)),
        # Claims in one transaction (conditional puts), marks in batches; one by one after a conflict.
        Need("ledger", ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")),
        Need("topic", ("sns:Publish",)),  # PublishBatch is authorised by sns:Publish
        Need("dlq", ("sqs:SendMessage",)),
        Need("bucket", ("s3:PutObject",), within=f"{QUARANTINE_PREFIX}/*"),
    )


def _policy_of(made: dict[str, Function], key: str, listed: list[Resource]) -> Callable[[Run], dict[str, Any]]:
    """A function's role policy, derived from the whole list once it is complete."""
    return lambda run: policies.role_policy(made[key], listed, run)


def _url_of(run: Run, queue: Queue) -> str:
    try:
        return run.aws.queue_url(queue.name)
    except ClientError as error:
        if error_code(error) not in NO_QUEUE:
            raise
        return "(created by init)"


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
