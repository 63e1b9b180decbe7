"""Every AWS call made through a boto3 session, recorded at botocore's request layer and validated
against botocore's service models; and a real-AWS target answered in-process, as AWS answers.

``Recorder.attach(session)`` sees each call before botocore builds the request: service, operation
and parameters, checked by botocore's own ParamValidator against the operation's input shape.
``aws_target()`` is an ``AwsContext`` for real AWS (no endpoint, a real region and account) whose
clients are stubbed with botocore's Stubber, so nothing leaves the machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.model import OperationModel
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from stockpipe.aws.context import AwsContext, Identity
from stockpipe.settings import Settings

ACCOUNT = "123456789012"
# IAM authorises a few operations under another action's name.
IAM_ACTION = {"sqs:SendMessageBatch": "sqs:SendMessage", "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
              "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility", "s3:HeadObject": "s3:GetObject",
              "sns:PublishBatch": "sns:Publish"}
# A transaction is authorised as each of its items: a Put as PutItem, an Update as UpdateItem, ...
TRANSACTION_ITEM_ACTION = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                           "ConditionCheck": "dynamodb:ConditionCheckItem"}


@dataclass(frozen=True)
class Call:
    service: str  # the IAM prefix (dynamodb for DynamoDB Streams too)
    operation: str
    params: dict[str, Any]

    @property
    def action(self) -> str:
        name = f"{self.service}:{self.operation}"
        return IAM_ACTION.get(name, name)

    @property
    def actions(self) -> set[str]:
        """The IAM actions the call needs (a transaction: those of its items)."""
        if self.operation == "TransactWriteItems":
            return {TRANSACTION_ITEM_ACTION[kind] for item in self.params.get("TransactItems", []) for kind in item}
        return {self.action}


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def attach(self, session: boto3.Session) -> Recorder:
        session.events.register("before-parameter-build", self._record)
        return self

    def _record(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        report = ParamValidator().validate(params, model.input_shape)
        if report.has_errors():
            self.invalid.append(f"{service}:{model.name}: {report.generate_report()}")
        self.calls.append(Call(service, model.name, dict(params)))

    @property
    def operations(self) -> list[str]:
        return [f"{c.service}:{c.operation}" for c in self.calls]

    @property
    def actions(self) -> set[str]:
        return {action for c in self.calls for action in c.actions}

    def mutating(self) -> list[str]:
        """Calls that change something (anything not a read by AWS's naming)."""
        reads = ("Get", "Describe", "List", "Head", "Query", "Scan", "BatchGet")
        return [op for op in self.operations if not op.split(":", 1)[1].startswith(reads)]


def aws_target(env: dict[str, str] | None = None, region: str = "eu-west-1", *,
               account: str | None = ACCOUNT) -> tuple[AwsContext, Recorder]:
    """An AwsContext for real AWS in ``region`` of account 123456789012, recording every call.
    Stub its clients with ``stub(aws, service)`` before use: an unstubbed call fails.
    ``account=None``: whoever answers STS is the account (``PlayedBy``)."""
    settings = Settings.from_env({"AWS_REGION": region, **(env or {})})
    assert settings.endpoint_url is None
    session = boto3.Session(region_name=region, aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
                            aws_secret_access_key="example")
    recorder = Recorder().attach(session)
    aws = AwsContext(settings, session=session)
    if account:
        aws.__dict__["identity"] = Identity(account, "aws", f"arn:aws:iam::{account}:user/deployer")
    return aws, recorder


class PlayedBy:
    """Real AWS played by an engine: each request botocore signed for AWS's own endpoint (the region's
    host, virtual-host S3 addresses) is sent to the engine instead, with the same method, path,
    headers and body. What init and teardown do on AWS then runs whole, every call recorded."""

    def __init__(self, aws: AwsContext, engine_url: str) -> None:
        import urllib3

        self.engine = urlsplit(engine_url)
        self.http = urllib3.PoolManager()
        aws.session.events.register("before-send", self._send)

    def _send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        url = urlsplit(request.url)
        path = url.path or "/"
        virtual = re.match(r"^(?P<bucket>[a-z0-9.-]+)\.s3[.-]", url.netloc)
        if virtual:  # bucket.s3.eu-west-1.amazonaws.com/key -> engine/bucket/key
            path = f"/{virtual['bucket']}{'' if path == '/' else path}"
        target = urlunsplit((self.engine.scheme, self.engine.netloc, path, url.query, ""))
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        answer = self.http.request(request.method, target, body=body, headers=headers, retries=False,
                                   redirect=False, preload_content=True)
        return AWSResponse(target, answer.status, dict(answer.headers), _Raw(answer.data))


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def stub(aws: AwsContext, service: str) -> Stubber:
    stubber = Stubber(aws.client(service))
    stubber.activate()
    return stubber


# What AWS answers for each read of something that does not exist (an account with nothing in it).
_ABSENT: dict[str, tuple[int, str] | dict[str, Any]] = {
    "kinesis:DescribeStreamSummary": (400, "ResourceNotFoundException"),
    "dynamodb:DescribeTable": (400, "ResourceNotFoundException"),
    "s3:HeadBucket": (404, "404"),
    "glue:GetDatabase": (400, "EntityNotFoundException"),
    "glue:GetTable": (400, "EntityNotFoundException"),
    "sqs:GetQueueUrl": (400, "AWS.SimpleQueueService.NonExistentQueue"),
    "sns:GetTopicAttributes": (404, "NotFound"),
    "logs:DescribeLogGroups": {"logGroups": []},
    "iam:GetRole": (404, "NoSuchEntity"),
    "lambda:GetFunction": (404, "ResourceNotFoundException"),
    "lambda:ListEventSourceMappings": (404, "ResourceNotFoundException"),
    "monitoring:DescribeAlarms": {"MetricAlarms": [], "CompositeAlarms": []},
    "monitoring:GetDashboard": (404, "ResourceNotFound"),  # DashboardNotFoundError, by its Query code
}


class EmptyAccount:
    """Answers every read as AWS does for an account holding none of the pipeline's resources, and
    fails the test on any call that would change something."""

    def __init__(self, aws: AwsContext) -> None:
        from botocore.awsrequest import AWSResponse

        self._response = AWSResponse
        aws.session.events.register("before-call", self._answer)

    def _answer(self, model: OperationModel, **_: Any) -> tuple[Any, dict[str, Any]]:
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        key = f"{service}:{model.name}"
        if key not in _ABSENT:
            raise AssertionError(f"{key} was called on an empty account (plan must only read)")
        answer = _ABSENT[key]
        if isinstance(answer, dict):
            return self._response(None, 200, {}, None), {**answer, "ResponseMetadata": {"HTTPStatusCode": 200}}
        status, code = answer
        return self._response(None, status, {}, None), {
            "Error": {"Code": code, "Message": f"{key}: not found"}, "ResponseMetadata": {"HTTPStatusCode": status}}


def granted(policy: dict[str, Any]) -> set[str]:
    """Every action a policy allows."""
    actions: set[str] = set()
    for statement in policy["Statement"]:
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions
