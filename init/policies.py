"""IAM documents, derived from the resource list: each role grants exactly the calls its function's
code makes (the function's ``needs``), what its trigger needs (read the source, send to the
on-failure queue) and writing to its own log group. Nothing else; nothing listed by hand twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stockpipe.provision.functions import Function, LogGroup, Mapping
from stockpipe.provision.model import Need, Resource, Run
from stockpipe.provision.storage import Bucket, GlueTable

Statement = dict[str, Any]


def resource_arns(resource: Resource, run: Run, within: str = "") -> list[str]:
    """The ARNs a grant on ``resource`` names."""
    where = run.aws.where
    if isinstance(resource, Bucket):
        return [where.bucket_arn(f"/{within}" if within else "")]
    if isinstance(resource, GlueTable):
        return [where.arn("glue", "catalog"), where.arn("glue", f"database/{resource.database}"),
                where.arn("glue", f"table/{resource.database}/{resource.name}")]
    arn = getattr(resource, "arn", None)
    if arn is None:
        raise TypeError(f"{resource!r} cannot be named in a policy")
    return [str(arn(run))]


def role_policy(function: Function, resources: Sequence[Resource], run: Run) -> dict[str, Any]:
    by_key = {r.key: r for r in resources}
    statements: list[Statement] = [
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{r.arn(run)}:*"}
        for r in resources if isinstance(r, LogGroup) and r.name == f"/aws/lambda/{function.name}"
    ]
    statements += [_grant(need, by_key[need.key], run) for need in function.needs]
    for resource in resources:
        if isinstance(resource, Mapping) and resource.function is function:
            statements += resource.grants(run)
    return {"Version": "2012-10-17", "Statement": statements}


def _grant(need: Need, resource: Resource, run: Run) -> Statement:
    arns = resource_arns(resource, run, need.within)
    return {"Effect": "Allow", "Action": list(need.actions), "Resource": arns[0] if len(arns) == 1 else arns}


def queue_policy_for_topic(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """The alerts inbox accepts messages from the topic, and only from it."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    }
