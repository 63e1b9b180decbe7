"""What IAM asks of each recorded AWS call, written apart from init's declarations (``deploy_actions``
in init/) so that the test of the deployer's policy checks them instead of repeating them: the
action an operation is authorised as, the actions it needs besides (the Service Authorization
Reference's dependent actions), the ARNs it touches (from its parameters) and the condition keys
IAM sets for it; and a small evaluator of Allow statements (wildcards as IAM matches them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.model import OperationModel

from tests.recording import Call

# Operations IAM authorises under another action's name.
IRREGULAR = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:DeleteObjects": "s3:DeleteObject",
    "s3:HeadObject": "s3:GetObject",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
}
# Actions a call needs besides its own when it carries tags (creating it tagged is tagging it).
TAGGED_ON_CREATE = {
    "dynamodb:CreateTable": "dynamodb:TagResource",
    "sqs:CreateQueue": "sqs:TagQueue",
    "sns:CreateTopic": "sns:TagResource",
    "lambda:CreateFunction": "lambda:TagResource",
    "iam:CreateRole": "iam:TagRole",
    "logs:CreateLogGroup": "logs:TagLogGroup",  # or logs:TagResource: either lets it tag
    "cloudwatch:PutMetricAlarm": "cloudwatch:TagResource",
}
# Services whose IAM prefix is not their endpoint's (botocore names CloudWatch's "monitoring").
PREFIXES = {"monitoring": "cloudwatch"}
# Calls that need no permission at all.
FREE = {"sts:GetCallerIdentity"}
LAMBDA = "lambda.amazonaws.com"


@dataclass(frozen=True)
class Need:
    """``action`` on ``arn`` (None: not derived from the call, the action alone is checked), with the
    condition keys IAM sets for the request (None: unknown, conditions not checked)."""

    call: str
    action: str
    arn: str | None
    context: dict[str, str] | None = None


@dataclass
class MappingOwners:
    """Which function each event source mapping feeds (from the answers): IAM sets lambda:FunctionArn
    for a call that names a mapping only by its UUID."""

    functions: dict[str, str] = field(default_factory=dict)

    def attach(self, session: boto3.Session) -> MappingOwners:
        session.events.register("after-call.lambda", self._learn)
        return self

    def _learn(self, parsed: dict[str, Any], model: OperationModel, **_: Any) -> None:
        for mapping in [parsed, *parsed.get("EventSourceMappings", [])]:
            if "UUID" in mapping and "FunctionArn" in mapping:
                self.functions[mapping["UUID"]] = mapping["FunctionArn"]


@dataclass(frozen=True)
class Account:
    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if regional else ''}:"
                f"{self.account if account else ''}:{resource}")

    def needs(self, call: Call, owners: MappingOwners) -> list[Need]:
        """Every permission the call needs."""
        name = f"{PREFIXES.get(call.service, call.service)}:{call.operation}"
        if name in FREE:
            return []
        action, context = IRREGULAR.get(name, name), None
        arns = self.touched(call)
        if call.service == "lambda" and "EventSourceMapping" in call.operation:
            function = call.params.get("FunctionName") or owners.functions.get(call.params.get("UUID", ""))
            context = {"lambda:FunctionArn": self._function(function)} if function else None
        needs = [Need(name, action, arn, context) for arn in arns or [None]]
        if name in TAGGED_ON_CREATE and (call.params.get("Tags") or call.params.get("tags")):
            needs += [Need(name, TAGGED_ON_CREATE[name], arn) for arn in arns or [None]]
        if name == "lambda:GetFunction":  # it shows a tagged function's tags only to who may list them
            needs += [Need(name, "lambda:ListTags", arn) for arn in arns or [None]]
        if name in ("lambda:CreateFunction", "lambda:UpdateFunctionConfiguration") and "Role" in call.params:
            needs.append(Need(name, "iam:PassRole", call.params["Role"], {"iam:PassedToService": LAMBDA}))
        return needs

    def _function(self, name: str) -> str:
        return name if name.startswith("arn:") else self.arn("lambda", f"function:{name}")

    def touched(self, call: Call) -> list[str] | None:
        """The ARNs the call acts on, from its parameters; None where they do not say."""
        p, service, operation = call.params, call.service, call.operation
        if service == "dynamodb":
            return [p.get("ResourceArn") or self.arn("dynamodb", f"table/{p['TableName']}")]
        if service == "kinesis":
            if "ShardIterator" in p:
                return None  # GetRecords: the iterator, from GetShardIterator on the stream
            return [p.get("StreamARN") or self.arn("kinesis", f"stream/{p['StreamName']}")]
        if service == "s3":
            bucket = f"arn:{self.partition}:s3:::{p['Bucket']}"
            if operation == "DeleteObjects":
                return [f"{bucket}/{o['Key']}" for o in p["Delete"]["Objects"]]
            return [f"{bucket}/{p['Key']}"] if "Key" in p else [bucket]
        if service == "sqs":
            name = p.get("QueueName") or urlsplit(p["QueueUrl"]).path.rsplit("/", 1)[-1]
            return [self.arn("sqs", name)]
        if service == "sns":
            if operation == "CreateTopic":
                return [self.arn("sns", p["Name"])]
            return [p.get("TopicArn") or p.get("ResourceArn") or p["SubscriptionArn"]]
        if service == "lambda":
            if "EventSourceMapping" in operation:
                return [self.arn("lambda", f"event-source-mapping:{p.get('UUID', 'new')}")] \
                    if operation != "ListEventSourceMappings" else None
            return [p.get("Resource") or self._function(p["FunctionName"])]
        if service == "iam":
            return [self.arn("iam", f"role/{p['RoleName']}", regional=False)]
        if service == "logs":
            if "logGroupName" not in p:
                return None  # DescribeLogGroups: a prefix
            group = self.arn("logs", f"log-group:{p['logGroupName']}")
            return [group, f"{group}:log-stream:"]  # IAM checks some calls on the one, some on the other
        if service == "glue":
            database = p.get("DatabaseName") or p.get("Name") or p["DatabaseInput"]["Name"]
            arns = [self.arn("glue", "catalog"), self.arn("glue", f"database/{database}")]
            if operation in ("GetTables", "DeleteDatabase"):
                return [*arns, self.arn("glue", f"table/{database}/*")]
            if "DatabaseName" in p:
                return [*arns, self.arn("glue", f"table/{database}/{p.get('Name') or p['TableInput']['Name']}")]
            return arns
        if service == "monitoring":
            if "ResourceARN" in p:
                return [p["ResourceARN"]]
            alarms = p.get("AlarmNames") or ([p["AlarmName"]] if "AlarmName" in p else [])
            dashboards = p.get("DashboardNames") or ([p["DashboardName"]] if "DashboardName" in p else [])
            return [self.arn("cloudwatch", f"alarm:{name}") for name in alarms] + [
                self.arn("cloudwatch", f"dashboard/{name}", regional=False) for name in dashboards]
        raise AssertionError(f"{service}:{operation}: which ARN it touches is not known to tests/permissions.py")


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(policy: dict[str, Any], need: Need) -> bool:
    """Some Allow statement grants the action on the ARN with its conditions met (a condition whose
    key the request does not set fails, as in IAM; unknown context: conditions not checked)."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatchcase(need.action.lower(), a.lower()) for a in _listed(statement["Action"])):
            continue
        if need.arn is not None and not any(fnmatchcase(need.arn, r) for r in _listed(statement["Resource"])):
            continue
        if need.context is not None and not _met(statement.get("Condition", {}), need.context):
            continue
        return True
    return False


def _met(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        for key, values in keys.items():
            if key not in context:
                return False
            have = context[key]
            if operator in ("StringEquals", "ArnEquals"):
                ok = have in _listed(values)
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatchcase(have, v) for v in _listed(values))
            else:
                raise AssertionError(f"condition operator {operator} is not evaluated here")
            if not ok:
                return False
    return True


def granted(policy: dict[str, Any]) -> set[str]:
    return {action for s in policy["Statement"] for action in _listed(s["Action"])}
