"""Queues and topics: the dead-letter queue (bad records with their reason), the on-failure queue
(stream batches AWS gave up on), the ingest queue (INGEST=sqs: the ticks, redriven to the
dead-letter queue after too many receives), the alerts' SNS topic and the SQS inboxes subscribed to
it, and the operations topic the alarms notify."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code
from stockpipe.provision import waits
from stockpipe.provision.model import TAG_KEY, Found, Resource, Run, Template

RETENTION_SECONDS = str(14 * 24 * 3600)
NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_NO_TOPIC = {"NotFound", "NotFoundException"}
SNS_KMS_KEY = "alias/aws/sns"


def _normal(value: Any) -> Any:
    """Queue attributes come back as strings; policies may come back re-serialised (a redrive
    policy's maxReceiveCount as a number or as a string)."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            loaded = json.loads(value)
        except ValueError:
            return value
        if isinstance(loaded, dict) and "maxReceiveCount" in loaded:
            loaded["maxReceiveCount"] = str(loaded["maxReceiveCount"])
        return loaded
    return value


class Queue(Resource):
    """``policy``: a resource policy computed from the ARNs (the inbox lets the topic send to it).
    ``redrive_to``: the queue that takes a message received ``max_receives`` times and never
    deleted (the ingest queue's poison messages); ``visibility_timeout``: seconds a received message
    stays hidden (a function's trigger: at least its timeout, as AWS requires)."""

    kind = "sqs queue"
    deploy_actions = (
        "sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:GetQueueAttributes",  # find
        "sqs:CreateQueue", "sqs:TagQueue",  # create (tagged on creation) and update
        "sqs:SetQueueAttributes",  # update
        "sqs:DeleteQueue",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, purpose: str,
                 policy: Callable[[Run], dict[str, Any]] | None = None,
                 redrive_to: Callable[[Run], str] | None = None, max_receives: int = 10,
                 visibility_timeout: int | None = None) -> None:
        super().__init__(key, name, variable)
        self.purpose, self.policy = purpose, policy
        self.redrive_to, self.max_receives, self.visibility_timeout = redrive_to, max_receives, visibility_timeout

    def arn(self, run: Run) -> str:
        return run.aws.where.queue_arn(self.name)

    def attributes(self, run: Run) -> dict[str, str]:
        wanted = {"MessageRetentionPeriod": RETENTION_SECONDS, "SqsManagedSseEnabled": "true"}
        if self.policy is not None:
            wanted["Policy"] = json.dumps(self.policy(run), sort_keys=True)
        if self.redrive_to is not None:
            wanted["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": self.redrive_to(run),
                                                  "maxReceiveCount": self.max_receives})
        if self.visibility_timeout is not None:
            wanted["VisibilityTimeout"] = str(self.visibility_timeout)
        return wanted

    def settings(self, run: Run) -> dict[str, object]:
        shape: dict[str, object] = {"for": self.purpose, "retention": "14 days", "encryption": "SSE-SQS"}
        if self.policy is not None:
            shape["policy"] = "the topic may send"
        if self.visibility_timeout is not None:
            shape["visibility timeout"] = f"{self.visibility_timeout} s"
        if self.redrive_to is not None:
            shape["redrive"] = f"after {self.max_receives} receives, to {self.redrive_to(run)}"
        return shape

    def url(self, run: Run) -> str | None:
        """Its URL, or None when it does not exist."""
        try:
            return str(run.aws.client("sqs").get_queue_url(QueueName=self.name)["QueueUrl"])
        except ClientError as error:
            if error_code(error) in NO_QUEUE:
                return None
            raise

    def find(self, run: Run) -> Found | None:
        url = self.url(run)
        if url is None:
            return None
        sqs = run.aws.client("sqs")
        owner = (sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}).get(TAG_KEY)
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        waiting = sum(int(current.get(k, 0)) for k in ("ApproximateNumberOfMessages",
                                                         "ApproximateNumberOfMessagesNotVisible",
                                                         "ApproximateNumberOfMessagesDelayed"))
        drift = tuple(
            f"{key}: {'differs' if key in current else 'unset'} -> ours"
            for key, value in self.attributes(run).items()
            # An engine that does not report SSE has none to set; a missing policy is drift.
            if (key in current or key == "Policy") and _normal(current.get(key)) != _normal(value)
        )
        return Found(owner, empty=waiting == 0, drift=drift, detail=url)

    def create(self, run: Run) -> None:
        sqs = run.aws.client("sqs")
        # A queue deleted less than 60 s ago cannot be created again yet (teardown, then init at once).
        waits.retry_while(f"{self.label}", lambda: sqs.create_queue(
            QueueName=self.name, Attributes=self.attributes(run), tags=run.tags),
            lambda error: error_code(error) in ("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"),
            timeout=75, interval=5)

    def update(self, run: Run, found: Found) -> None:
        sqs, url = run.aws.client("sqs"), found.detail
        sqs.tag_queue(QueueUrl=url, Tags=run.tags)
        wanted = self.attributes(run)
        changed = {change.split(":")[0] for change in found.drift if not change.startswith("adopt")}
        if changed:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={k: wanted[k] for k in changed if k in wanted})

    def wait_ready(self, run: Run) -> None:
        waits.wait_until(self.label, lambda: self.url(run) is not None, timeout=60)

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("sqs").delete_queue(QueueUrl=found.detail)
        return "deleted"

    def wait_gone(self, run: Run) -> None:
        waits.wait_until(f"deletion of {self.label}", lambda: self.url(run) is None, timeout=90, interval=1)

    def template(self, run: Run) -> Template:
        """The queue from the same attributes init sets; its policy is a resource of its own."""
        attributes = self.attributes(run)
        policy = attributes.pop("Policy", None)
        shape: dict[str, Any] = {"QueueName": self.name, **{key: _typed(value) for key, value in attributes.items()},
                                 "Tags": run.tag_list}
        made = {self.logical_id: {"Type": "AWS::SQS::Queue", "Properties": shape}}
        if policy is not None:
            made[f"{self.logical_id}Policy"] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {
                "Queues": [f"${{{self.logical_id}}}"], "PolicyDocument": json.loads(policy)}}
        return made


class Topic(Resource):
    """``kms_key``: the key SNS encrypts messages with at rest; None for a topic CloudWatch alarms
    publish to (AWS's own SNS key does not let CloudWatch use it, so their notifications would be lost)."""

    kind = "sns topic"
    deploy_actions = (
        "sns:GetTopicAttributes", "sns:ListTagsForResource",  # find
        "sns:CreateTopic", "sns:TagResource",  # create (tagged on creation) and update
        "sns:SetTopicAttributes",  # update: its encryption
        "sns:DeleteTopic",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, kms_key: str | None = SNS_KMS_KEY,
                 purpose: str = "") -> None:
        super().__init__(key, name, variable)
        self.kms_key, self.purpose = kms_key, purpose

    def arn(self, run: Run) -> str:
        return run.aws.where.arn("sns", self.name)

    @property
    def encryption(self) -> str:
        return f"KMS {self.kms_key}" if self.kms_key else "none"

    def settings(self, run: Run) -> dict[str, object]:
        shape: dict[str, object] = {"for": self.purpose} if self.purpose else {}
        return {**shape, "encryption": self.encryption}

    def find(self, run: Run) -> Found | None:
        sns = run.aws.client("sns")
        try:
            attributes = sns.get_topic_attributes(TopicArn=self.arn(run))["Attributes"]
        except ClientError as error:
            if error_code(error) in _NO_TOPIC:
                return None
            raise
        owner = {t["Key"]: t["Value"] for t in
                 sns.list_tags_for_resource(ResourceArn=self.arn(run)).get("Tags", [])}.get(TAG_KEY)
        current = attributes.get("KmsMasterKeyId") or None
        drift = () if current == self.kms_key else (f"encryption: {current or 'none'} -> {self.encryption}",)
        empty = True if owner else not int(attributes.get("SubscriptionsConfirmed", 0) or 0) \
            + int(attributes.get("SubscriptionsPending", 0) or 0)
        return Found(owner, empty=empty, drift=drift)

    def create(self, run: Run) -> None:
        run.aws.client("sns").create_topic(Name=self.name,
                                           Attributes={"KmsMasterKeyId": self.kms_key} if self.kms_key else {},
                                           Tags=run.tag_list)

    def update(self, run: Run, found: Found) -> None:
        sns = run.aws.client("sns")
        sns.tag_resource(ResourceArn=self.arn(run), Tags=run.tag_list)
        if found.drift and any(c.startswith("encryption") for c in found.drift):
            sns.set_topic_attributes(TopicArn=self.arn(run), AttributeName="KmsMasterKeyId",
                                     AttributeValue=self.kms_key or "")

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("sns").delete_topic(TopicArn=self.arn(run))  # its subscriptions go with it
        return "deleted"

    def wait_gone(self, run: Run) -> None:
        waits.wait_until(f"deletion of {self.label}", lambda: self.find(run) is None, timeout=60)

    def template(self, run: Run) -> Template:
        encrypted = {"KmsMasterKeyId": self.kms_key} if self.kms_key else {}
        return {self.logical_id: {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": self.name, **encrypted, "Tags": run.tag_list}}}


class Subscription(Resource):
    """A subscription of the topic; ours when the topic is ours (subscriptions carry no tags)."""

    kind = "sns subscription"
    # Its topic's reads (find asks the topic first) are the topic's.
    deploy_actions = ("sns:ListSubscriptionsByTopic", "sns:Subscribe")
    # IAM scopes none of these to a resource (a subscription has no resource type): on "*".
    deploy_unscoped = ("sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:Unsubscribe")

    def __init__(self, key: str, name: str, variable: str, *, topic: Topic, protocol: str,
                 endpoint: Callable[[Run], str], attributes: dict[str, str] | None = None,
                 redrive_to: Callable[[Run], str] | None = None) -> None:
        """``redrive_to``: the queue that takes what SNS cannot deliver (the inbox deleted, say)."""
        super().__init__(key, name, variable, depends_on=(topic.key,))
        self.topic, self.protocol, self.endpoint = topic, protocol, endpoint
        self._attributes, self.redrive_to = attributes or {}, redrive_to

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        return (self.topic.arn(run),)

    def attributes(self, run: Run) -> dict[str, str]:
        wanted = dict(self._attributes)
        if self.redrive_to is not None:
            wanted["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": self.redrive_to(run)})
        return wanted

    def settings(self, run: Run) -> dict[str, object]:
        shape: dict[str, object] = {"protocol": self.protocol, "endpoint": self.endpoint(run)}
        if self._attributes.get("RawMessageDelivery") == "true":
            shape["delivery"] = "raw"
        if self.redrive_to is not None:
            shape["undeliverable"] = f"to {self.redrive_to(run)}"
        if self.protocol == "email":
            shape["note"] = "AWS e-mails the address a link to confirm"
        return shape

    def find(self, run: Run) -> Found | None:
        topic = self.topic.find(run)
        if topic is None:
            return None
        pages = run.aws.client("sns").get_paginator("list_subscriptions_by_topic").paginate(
            TopicArn=self.topic.arn(run))
        endpoint = self.endpoint(run)
        for page in pages:
            for sub in page.get("Subscriptions", []):
                if sub["Protocol"] == self.protocol and sub["Endpoint"] == endpoint:
                    arn = str(sub["SubscriptionArn"])  # "PendingConfirmation" until the address confirms
                    if not arn.startswith("arn:"):
                        return Found(topic.owner, detail=None)
                    current = run.aws.client("sns").get_subscription_attributes(
                        SubscriptionArn=arn).get("Attributes", {})
                    drift = tuple(f"{key}: {'differs' if key in current else 'unset'} -> ours"
                                  for key, value in self.attributes(run).items()
                                  if _normal(current.get(key)) != _normal(value))
                    return Found(topic.owner, drift=drift, detail=arn)
        return None

    def create(self, run: Run) -> None:
        run.aws.client("sns").subscribe(TopicArn=self.topic.arn(run), Protocol=self.protocol,
                                        Endpoint=self.endpoint(run), Attributes=self.attributes(run),
                                        ReturnSubscriptionArn=True)

    def update(self, run: Run, found: Found) -> None:
        wanted = self.attributes(run)
        for change in found.drift:
            name = change.split(":")[0]
            if found.detail and name in wanted:
                run.aws.client("sns").set_subscription_attributes(
                    SubscriptionArn=found.detail, AttributeName=name, AttributeValue=wanted[name])

    def delete(self, run: Run, found: Found) -> str:
        if not found.detail:
            return "left pending (AWS removes unconfirmed subscriptions itself)"
        run.aws.client("sns").unsubscribe(SubscriptionArn=found.detail)
        return "deleted"

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": self.topic.arn(run), "Protocol": self.protocol, "Endpoint": self.endpoint(run),
            **{key: _typed(value) for key, value in self.attributes(run).items()}}}}


def _typed(value: str) -> Any:
    """An attribute as the API takes it (a string) to its CloudFormation property's type: numbers,
    booleans and JSON documents (a redrive policy) are written as such."""
    if value in ("true", "false"):
        return value == "true"
    if value.isdigit():
        return int(value)
    return json.loads(value) if value.startswith("{") else value
